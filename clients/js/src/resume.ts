// The resume point of one client: the log's epoch and one offset per room, kept in its store.
// The client is its only writer (docs/delivery-guarantees.md).

import type { ResumeState, ResumeStore } from "./store.js";

/** The client's `ResumeState`: loaded once, changed by joins, resyncs and events, saved after
 * every change. */
export class ResumeBook {
  #state: ResumeState = { epoch: null, offsets: {} };
  #loaded: Promise<void> | null = null;
  constructor(
    private readonly store: ResumeStore,
    private readonly report: (error: unknown) => void,
  ) {}

  /** A copy of the state. */
  get state(): ResumeState {
    return cloneState(this.#state);
  }

  /** Load the stored state, once (later calls wait for the first). */
  load(): Promise<void> {
    this.#loaded ??= this.#load();
    return this.#loaded;
  }

  async #load(): Promise<void> {
    try {
      const stored = await this.store.load();
      if (stored) this.#state = cloneState(stored);
    } catch (error) {
      this.report(error);
    }
  }

  /** The offset of the last event processed in `room`, if any. */
  offset(room: string): number | undefined {
    return this.#state.offsets[room];
  }

  /** What a join of `room` carries: the stored offset and the epoch it belongs to, or nulls. */
  resumePoint(room: string): { since: number | null; epoch: string | null } {
    const since = this.#state.offsets[room] ?? null;
    const epoch = since === null ? null : (this.#state.epochs?.[room] ?? this.#state.epoch);
    return { since, epoch };
  }

  /** Forget the room's offset (its next join is fresh) and save. */
  forget(room: string): void {
    delete this.#state.offsets[room];
    if (this.#state.epochs) delete this.#state.epochs[room];
    this.save();
  }

  /** The bridge named the log's epoch in a reply about `room`. */
  noteEpoch(epoch: string, room: string): void {
    const resume = this.#state;
    if (resume.epoch === epoch) return;
    if (resume.epoch !== null) {
      // Offsets of the other rooms belong to the old epoch: resume them with it, so the bridge
      // says epoch_mismatch for them too rather than serving them from the wrong log.
      for (const other of Object.keys(resume.offsets)) {
        if (other !== room && !resume.epochs?.[other]) (resume.epochs ??= {})[other] = resume.epoch;
      }
    }
    resume.epoch = epoch;
    if (resume.epochs) {
      for (const [other, old] of Object.entries(resume.epochs)) if (old === epoch) delete resume.epochs[other];
    }
  }

  /** The room is complete up to `offset` (in the current epoch). */
  setOffset(room: string, offset: number): void {
    this.#state.offsets[room] = offset;
    if (this.#state.epochs?.[room] !== undefined) {
      delete this.#state.epochs[room];
      if (!Object.keys(this.#state.epochs).length) delete this.#state.epochs;
    }
  }

  /** Hand a copy to the store; a failure is reported, never thrown. */
  save(): void {
    try {
      const pending = this.store.save(cloneState(this.#state));
      if (pending && typeof (pending as Promise<void>).catch === "function") {
        (pending as Promise<void>).catch((error: unknown) => this.report(error));
      }
    } catch (error) {
      this.report(error);
    }
  }
}

function cloneState(state: ResumeState): ResumeState {
  const copy: ResumeState = { epoch: state.epoch, offsets: { ...state.offsets } };
  if (state.epochs && Object.keys(state.epochs).length) copy.epochs = { ...state.epochs };
  return copy;
}
