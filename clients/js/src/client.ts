// The client: one connection at a time, the rooms the application wants, and the one owner of
// the resume state (epoch and per-room offsets). Transports only read and write frames.

import { RetryTimer } from "./backoff.js";
import { afterClose, Connection } from "./connection.js";
import { AuthError, ConnectionClosedError, EventBridgeError, RequestError } from "./errors.js";
import {
  ACTIVITY_FEED,
  countingRoom,
  joinOrder,
  roomName,
  type BridgeEvent,
  type ClientEventName,
  type ClientEvents,
  type RoomTarget,
} from "./events.js";
import type { PresenceMember, ResyncNotice } from "./generated/schemas.js";
import type { ClientOptions, ConnectionStatus, JoinInfo, TokenRequest } from "./options.js";
import { PresenceBook } from "./presence.js";
import { emitOn, PresenceStates } from "./requests.js";
import { ResumeBook } from "./resume.js";
import { applyJoin, applyResync, enterPhase, progress, type Phase, type RoomState } from "./rooms.js";
import { defaultStore, type ResumeState } from "./store.js";
import { ClientSurface } from "./surface.js";
import { transportFactory } from "./transports/choose.js";
import type {
  ClientEventAck,
  CloseReason,
  Grant,
  JoinReply,
  PresenceMessage,
  PresenceState,
  TransportFactory,
} from "./transports/types.js";
import { ConnectedWaiters, JoinWaiters } from "./waiters.js";

/** A connection to the bridge that keeps a set of rooms joined and resumes them by offset. */
export class EventBridgeClient extends ClientSurface {
  readonly #url: string;
  readonly #options: ClientOptions;
  readonly #transportFactory: TransportFactory;
  readonly #resume: ResumeBook;
  #rooms: string[] = []; // wanted, in join order
  #conn: Connection | null = null;
  #generation = 0;
  #running = false;
  readonly #retry: RetryTimer;
  #status: ConnectionStatus = "offline";
  #tokenReason: TokenRequest["reason"] = "connect";
  #refreshed = false; // a fresh token was asked for after an expiry, and not yet accepted
  readonly #waiters = new JoinWaiters();
  readonly #connectedWaiters = new ConnectedWaiters();
  readonly #presence = new PresenceBook();
  readonly #presenceStates = new PresenceStates({
    subscribed: (room) => this.#rooms.includes(room),
    joinedOn: (room) => (this.#conn?.rooms.get(room)?.join ? this.#conn.transport : null),
    nextJoin: (room) => this.#waiters.wait(room),
    report: (error) => this.report(error),
  });

  constructor(options: ClientOptions) {
    super(options);
    this.#options = options;
    this.#url = options.url;
    this.#retry = new RetryTimer(options.backoff);
    this.#transportFactory = transportFactory(options);
    this.#resume = new ResumeBook(options.store ?? defaultStore(options.url), (error) => this.report(error));
  }

  // ---- what the application sees ---------------------------------------------------------------

  /** The current connection status. */
  get status(): ConnectionStatus {
    return this.#status;
  }

  /** The rooms the client keeps joined, in join order. */
  get rooms(): readonly string[] {
    return [...this.#rooms];
  }

  /** The resume state: epoch and per-room offsets (a copy). */
  get resumeState(): ResumeState {
    return this.#resume.state;
  }

  /** The current connection's grant (WebSocket with a token), or null. */
  get grant(): Grant | null {
    return this.#conn?.grant ?? null;
  }

  /** The members of a project as last heard (empty before its room's list arrived). */
  presence(project: string): PresenceMember[] {
    return this.#presence.members(project);
  }

  /**
   * Set (with null clear) this client's presence state in a subscribed project, kept and set
   * again on every reconnect (docs/client-library.md, "Presence"); resolves with the state set.
   */
  setPresence(
    project: string,
    state: PresenceState | null,
    { timeoutMs = 10_000 }: { timeoutMs?: number } = {},
  ): Promise<PresenceState | null> {
    return this.#presenceStates.set(project, state, timeoutMs);
  }

  // ---- rooms ------------------------------------------------------------------------------------

  /**
   * Keep `target` joined (now and after every reconnect), resuming after its stored offset.
   * Resolves with the join once the bridge answered; rejects with a `RequestError` when the
   * bridge refuses it (the room is then dropped) or `ConnectionClosedError` after `close()`.
   */
  subscribe(target: RoomTarget): Promise<JoinInfo> {
    const room = roomName(target);
    const joined = this.#waiters.wait(room);
    const current = this.#conn?.rooms.get(room);
    if (current?.join) {
      this.#waiters.resolve(room, current.join);
      return joined;
    }
    if (!this.#rooms.includes(room)) {
      this.#rooms = joinOrder([...this.#rooms, room]);
      const conn = this.#conn;
      if (conn?.ready) {
        if (room !== ACTIVITY_FEED && conn.rooms.has(ACTIVITY_FEED)) {
          // The feed must be joined after every project room (the bridge delivers an event of two
          // rooms through the one joined first, and the counting depends on it): start over.
          this.#restart("reconnect");
        } else {
          this.#join(conn, room);
        }
      }
    }
    return joined;
  }

  /** Stop following `target`. Its stored offset is kept: subscribing again resumes it. */
  unsubscribe(target: RoomTarget): void {
    const room = roomName(target);
    this.#rooms = this.#rooms.filter((item) => item !== room);
    this.#presenceStates.forget(room);
    this.#waiters.reject(room, new ConnectionClosedError(`unsubscribed from ${room}`));
    this.#conn?.leave(room);
    this.#updateStatus();
  }

  /** Forget the stored offset of `target` (its next join is fresh: state first, then live). */
  forget(target: RoomTarget): void {
    this.#resume.forget(roomName(target));
  }

  // ---- the connection ---------------------------------------------------------------------------

  /** Start (or restart, after `close()` or a refused token) connecting; asks for a new token. */
  connect(): this {
    this.#running = true;
    this.#retry.attempt = 0;
    this.#refreshed = false;
    this.#restart(this.#conn ? "reconnect" : "connect");
    return this;
  }

  /** Close the connection and stop reconnecting. Stored offsets stay. */
  close(): void {
    this.#running = false;
    this.#generation += 1;
    this.#retry.clear();
    this.#drop();
    this.#waiters.rejectAll(new ConnectionClosedError("the client was closed"));
    this.#updateStatus();
  }

  /**
   * Send a client-originated event (`new-activity`, `step-updated`, `step-completed`) and wait
   * for its acknowledgement: `{ok: true, id}` with the id of the event the bridge published.
   * Socket.IO only: the native WebSocket protocol has no client events (`UnsupportedError`).
   * Waits for a connection first, within `timeoutMs`. Rejects with `RequestError` when refused,
   * `TimeoutError` without an acknowledgement in time (send it again: it may or may not have
   * been published).
   */
  emit<N extends ClientEventName>(
    name: N,
    payload: ClientEvents[N],
    { timeoutMs = 10_000 }: { timeoutMs?: number } = {},
  ): Promise<ClientEventAck> {
    return emitOn(() => this.#conn, this.#connectedWaiters, name, payload, timeoutMs);
  }

  // ---- internals: connecting ------------------------------------------------------------------

  #restart(reason: TokenRequest["reason"]): void {
    this.#generation += 1;
    this.#retry.clear();
    this.#drop();
    this.#tokenReason = reason;
    void this.#open(this.#generation);
  }

  async #open(generation: number): Promise<void> {
    this.#setStatus("connecting");
    await this.#resume.load();
    let token: string | null = null;
    if (this.#options.token) {
      try {
        token = (await this.#options.token({ reason: this.#tokenReason })) ?? null;
      } catch (error) {
        if (generation !== this.#generation) return;
        if (error instanceof AuthError) {
          this.#refused(error);
        } else {
          this.report(error);
          this.#scheduleRetry();
        }
        return;
      }
    }
    if (generation !== this.#generation || !this.#running) return;
    let conn: Connection | null = null;
    const guard =
      <A extends unknown[]>(fn: (conn: Connection, ...args: A) => void) =>
      (...args: A): void => {
        if (conn !== null && this.#conn === conn && generation === this.#generation) fn(conn, ...args);
      };
    const transport = this.#transportFactory(this.#url, {
      ready: guard((c, grant) => this.#ready(c, grant)),
      joined: guard((c, reply) => this.#joined(c, reply)),
      joinRefused: guard((c, room, code, message) => this.#joinRefused(c, room, code, message)),
      event: guard((c, event) => this.#event(c, event as unknown as BridgeEvent)),
      resync: guard((c, notice) => this.#resynced(c, notice)),
      presence: guard((_c, message) => this.#presenceChanged(message)),
      requestError: guard((_c, code, message, request) =>
        this.report(new RequestError(code, message, request)),
      ),
      closed: guard((_c, reason) => this.#closed(reason)),
    });
    conn = new Connection(transport);
    this.#conn = conn;
    try {
      transport.open(token);
    } catch (error) {
      this.#conn = null;
      this.report(error);
      this.#scheduleRetry();
    }
  }

  #ready(conn: Connection, grant: Grant | null): void {
    conn.ready = true;
    conn.grant = grant;
    this.#refreshed = false;
    this.#tokenReason = "reconnect";
    this.listeners.authenticated.call(grant); // may subscribe or unsubscribe before the joins go out
    if (this.#conn !== conn) return;
    for (const room of this.#rooms) this.#join(conn, room);
    if (this.#rooms.length === 0) this.#retry.attempt = 0;
    this.#connectedWaiters.wake();
    this.#updateStatus();
  }

  #join(conn: Connection, room: string): void {
    const { since, epoch } = this.#resume.resumePoint(room);
    conn.join(room, since, epoch);
    this.#updateStatus();
  }

  #closed(reason: CloseReason): void {
    this.#drop();
    if (!this.#running) return;
    const next = afterClose(reason, this.#refreshed);
    if (next === "refresh") {
      this.#refreshed = true;
      this.#restart("token_expired");
    } else if (next === "retry") {
      this.#scheduleRetry();
    } else {
      this.#refused(next);
    }
  }

  #refused(error: AuthError): void {
    this.#running = false;
    this.#retry.clear();
    this.#drop();
    this.listeners.authError.call(error); // first, so the status change below finds it handled
    this.#updateStatus();
  }

  #scheduleRetry(): void {
    this.#retry.clear();
    if (!this.#running) return;
    this.#retry.schedule(() => this.#restart("reconnect"));
    this.#updateStatus();
  }

  /** Forget the current connection (closing it). */
  #drop(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (!conn) return;
    conn.close();
  }

  // ---- internals: rooms, events, offsets ------------------------------------------------------

  #joined(conn: Connection, reply: JoinReply): void {
    const state = conn.rooms.get(reply.room);
    if (!state) return; // unsubscribed meanwhile
    const { join, phase } = applyJoin(state, reply, this.#resume);
    this.#enter(state, phase);
    this.#resume.save();
    this.listeners.joined.call(join);
    this.#waiters.resolve(reply.room, join);
    this.#presenceStates.rejoined(conn.transport, reply.room, () => this.#conn === conn);
    if (conn.allJoined) this.#retry.attempt = 0;
    this.#updateStatus();
  }

  #presenceChanged(message: PresenceMessage): void {
    const project = this.#presence.apply(message);
    this.listeners.presence.call(project, this.#presence.members(project));
  }

  #joinRefused(conn: Connection, room: string, code: string, message: string): void {
    const error = new RequestError(code, message, "subscribe");
    conn.rooms.delete(room);
    if (code === "rate_limited") {
      // Dropped by the bridge's rate limit: ask again a little later.
      setTimeout(() => {
        if (this.#conn === conn && this.#rooms.includes(room) && !conn.rooms.has(room)) this.#join(conn, room);
      }, 1000);
    } else {
      this.#rooms = this.#rooms.filter((item) => item !== room);
      this.#waiters.reject(room, error);
    }
    this.report(error);
    this.#updateStatus();
  }

  #resynced(conn: Connection, notice: ResyncNotice): void {
    const state = conn.rooms.get(notice.room);
    if (!state) return;
    const info = applyResync(state, notice, this.#resume);
    this.#resume.save();
    this.listeners.resync.call(info);
    this.#enter(state, "resyncing");
    this.#updateStatus();
  }

  #event(conn: Connection, event: BridgeEvent): void {
    const room = countingRoom(event, new Set(conn.rooms.keys()));
    const state = room === null ? undefined : conn.rooms.get(room);
    if (room === null || !state || typeof event.offset !== "number") return; // not (or no longer) ours
    const snapshot = state.snapshotUpTo !== undefined && event.offset <= state.snapshotUpTo;
    const last = this.#resume.offset(room);
    if (!snapshot && last !== undefined && event.offset <= last) {
      // Already processed: the feed's catch-up repeats a project's activity that was counted in
      // the project room (docs/delivery-guarantees.md, "Duplicates").
      return;
    }
    this.handlers.deliver(event, { room, snapshot });
    if (this.#conn !== conn) return; // a handler closed or restarted the client
    if (!snapshot) {
      // Only now, after the handlers ran, in the same task: the event is processed.
      this.#resume.setOffset(room, event.offset);
      this.#resume.save();
    }
    this.#progress(state, event.offset);
  }

  #progress(state: RoomState, offset: number): void {
    progress(state, offset, this.#options.settleMs ?? 1000, () => this.#updateStatus());
  }

  #enter(state: RoomState, phase: Phase): void {
    enterPhase(state, phase, this.#options.settleMs ?? 1000, () => this.#updateStatus());
  }

  // ---- internals: status and errors -----------------------------------------------------------

  #updateStatus(): void {
    const conn = this.#conn;
    let status: ConnectionStatus;
    if (!conn) {
      status = this.#running && !this.#retry.pending ? "connecting" : "offline";
    } else {
      status = conn.status;
    }
    this.#setStatus(status);
  }

  #setStatus(status: ConnectionStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    this.listeners.status.call(status, { attempt: this.#retry.attempt, retryAt: this.#retry.at });
  }

  protected report(error: unknown): void {
    const value =
      error instanceof Error ? error : new EventBridgeError(`unexpected failure: ${String(error)}`);
    this.listeners.error.call(value);
  }
}

/** Create a client without connecting: add handlers and rooms, then call `connect()`. */
export function createClient(options: ClientOptions): EventBridgeClient {
  return new EventBridgeClient(options);
}

/** Create a client and start connecting (handlers added right after still see every event). */
export function connect(options: ClientOptions): EventBridgeClient {
  return new EventBridgeClient(options).connect();
}
