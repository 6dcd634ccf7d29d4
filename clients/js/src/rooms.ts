// Where each joined room is on the current connection: joining, catching up, resyncing or live.
// The bridge does not mark the end of a catch-up or a snapshot: it is inferred from offsets and
// from a quiet period (`settleMs`).

import { ACTIVITY_FEED } from "./events.js";
import type { ResyncNotice } from "./generated/schemas.js";
import type { ConnectionStatus, JoinInfo, ResyncInfo } from "./options.js";
import type { ResumeBook } from "./resume.js";
import type { JoinReply } from "./transports/types.js";

export type Phase = "joining" | "catching_up" | "resyncing" | "live";

export interface RoomState {
  phase: Phase;
  since: number | null;
  join?: JoinInfo;
  /** Events at or below this offset are the room's snapshot (after a fresh join or a resync). */
  snapshotUpTo?: number;
  /** The reply's offset of a resumed join: its catch-up ends there. */
  catchUpTo?: number;
  settle?: ReturnType<typeof setTimeout>;
}

/** Move the room to `phase`; a catch-up or resync counts as finished after `settleMs` without
 * one of its events, and `changed` is then called. */
export function enterPhase(state: RoomState, phase: Phase, settleMs: number, changed: () => void): void {
  clearTimeout(state.settle);
  state.settle = undefined;
  state.phase = phase;
  if (phase === "catching_up" || phase === "resyncing") {
    state.settle = setTimeout(() => {
      state.settle = undefined;
      if (state.phase === phase) {
        state.phase = "live";
        changed();
      }
    }, settleMs);
  }
}

/** An event at `offset` arrived in the room: end its catch-up or snapshot once it is reached
 * (calling `changed`), else restart the quiet timer. */
export function progress(state: RoomState, offset: number, settleMs: number, changed: () => void): void {
  if (state.phase === "catching_up" || state.phase === "resyncing") {
    const end = state.catchUpTo ?? state.snapshotUpTo ?? -1;
    if (state.catchUpTo !== undefined ? offset >= end : offset > end) {
      enterPhase(state, "live", settleMs, changed);
      changed();
    } else {
      enterPhase(state, state.phase, settleMs, changed); // restart the quiet timer
    }
  }
}

/** The status of a ready connection with these rooms: the least advanced room decides. */
export function statusOfRooms(rooms: Iterable<RoomState>): ConnectionStatus {
  const phases = new Set([...rooms].map((state) => state.phase));
  if (phases.has("joining")) return "connecting";
  if (phases.has("resyncing")) return "resyncing";
  if (phases.has("catching_up")) return "catching_up";
  return "live";
}

/** A join reply for the room: note the epoch, store the resume point of a fresh join (its state
 * follows, then live events newer than the reply's offset); return the join and the phase the
 * room enters. */
export function applyJoin(state: RoomState, reply: JoinReply, resume: ResumeBook): { join: JoinInfo; phase: Phase } {
  resume.noteEpoch(reply.epoch, reply.room);
  const join: JoinInfo = { room: reply.room, since: state.since, epoch: reply.epoch, offset: reply.offset };
  state.join = join;
  if (state.since === null) {
    // A fresh join: the room's state follows (offsets up to reply.offset), then live events
    // newer than reply.offset, which is therefore the room's resume point.
    resume.setOffset(reply.room, reply.offset);
    state.snapshotUpTo = reply.offset;
    return { join, phase: reply.room === ACTIVITY_FEED ? "live" : "catching_up" };
  }
  if (state.since < reply.offset) {
    state.catchUpTo = reply.offset;
    return { join, phase: "catching_up" };
  }
  return { join, phase: "live" };
}

/** The bridge could not resume the room: store where it is complete from; return the report. */
export function applyResync(state: RoomState, notice: ResyncNotice, resume: ResumeBook): ResyncInfo {
  const info: ResyncInfo = { ...notice, since: state.join ? state.since : null };
  // The missed events will not come. The room's state follows (offsets up to notice.offset),
  // then live events: like a fresh join, notice.offset is the point from which the room is
  // complete, so it is stored at once (a reload now resumes from there rather than losing the
  // events published meanwhile).
  resume.noteEpoch(notice.epoch, notice.room);
  resume.setOffset(notice.room, notice.offset);
  state.snapshotUpTo = notice.offset;
  state.catchUpTo = undefined;
  return info;
}
