// What the application asks of the bridge besides rooms: client events (Socket.IO) and the
// presence state it shows in each project room (docs/clients.md, "Client events", "Presence").
// A presence state is set through the connection in use, and set again by every new connection
// once the room is joined, since the bridge keeps a state only while its connection lasts.

import type { Connection } from "./connection.js";
import { RequestError, UnsupportedError } from "./errors.js";
import type { ClientEventName, ClientEvents } from "./events.js";
import type { ClientEventAck, PresenceState, Transport } from "./transports/types.js";
import { type ConnectedWaiters, within } from "./waiters.js";

/** Send a client event on the connection in use, once there is one (`EventBridgeClient.emit`). */
export async function emitOn<N extends ClientEventName>(
  current: () => Connection | null,
  connected: ConnectedWaiters,
  name: N,
  payload: ClientEvents[N],
  timeoutMs: number,
): Promise<ClientEventAck> {
  const started = Date.now();
  await (current()?.ready ? Promise.resolve() : connected.wait(timeoutMs));
  const transport = current()?.transport;
  if (!transport?.emit) {
    throw new UnsupportedError(
      `${name} is a Socket.IO event: the native WebSocket protocol has no client events; ` +
        'use transport: "socketio"',
    );
  }
  return transport.emit(name, payload, Math.max(1, timeoutMs - (Date.now() - started)));
}

/** What the presence states need of the client. */
export interface PresenceHost {
  /** Whether the application subscribed to the room. */
  subscribed(room: string): boolean;
  /** The transport of the current connection, if the room is joined on it. */
  joinedOn(room: string): Transport | null;
  /** The room's next join. */
  nextJoin(room: string): Promise<unknown>;
  /** Report an error through `onError`. */
  report(error: unknown): void;
}

export class PresenceStates {
  readonly #wanted = new Map<string, PresenceState>();
  readonly #waiting = new Map<string, number>(); // project → `set` calls waiting for its join

  constructor(private readonly host: PresenceHost) {}

  /**
   * Set (null: clear) the state in `project` and keep it for later connections. Waits for the
   * room's join first, within `timeoutMs`; resolves with the state the bridge set. Rejects with
   * `RequestError` when refused (`not_joined`, `too_large`, `rate_limited`: the state is then
   * not kept), `TimeoutError` or `ConnectionClosedError` (kept: set once joined again).
   */
  async set(project: string, state: PresenceState | null, timeoutMs: number): Promise<PresenceState | null> {
    const room = `project:${project}`;
    if (!this.host.subscribed(room)) {
      throw new RequestError("not_joined", `subscribe to ${room} before setting a state in it`, "presence_update");
    }
    if (state !== null && (typeof state !== "object" || Array.isArray(state))) {
      throw new TypeError("a presence state is a plain JSON object, or null to clear it");
    }
    if (state === null) this.#wanted.delete(project);
    else this.#wanted.set(project, state);
    const started = Date.now();
    if (!this.host.joinedOn(room)) {
      // Counted while waiting, so that the join does not set the state too (`rejoined`).
      this.#waiting.set(project, (this.#waiting.get(project) ?? 0) + 1);
      try {
        await within(this.host.nextJoin(room), timeoutMs, `${room} not joined within ${timeoutMs} ms`);
      } finally {
        const left = (this.#waiting.get(project) ?? 1) - 1;
        if (left > 0) this.#waiting.set(project, left);
        else this.#waiting.delete(project);
      }
    }
    const transport = this.host.joinedOn(room);
    if (!transport?.setPresence) throw new UnsupportedError("this transport cannot set a presence state");
    try {
      return await transport.setPresence(project, state, Math.max(1, timeoutMs - (Date.now() - started)));
    } catch (error) {
      this.#refused(project, state, error);
      throw error;
    }
  }

  /** A connection joined `room`: set the state wanted there again (unless a waiting `set` is
   * about to); a refusal is reported while `current()` says the connection is still in use. */
  rejoined(transport: Transport, room: string, current: () => boolean): void {
    const project = room.startsWith("project:") ? room.slice("project:".length) : null;
    const state = project === null ? undefined : this.#wanted.get(project);
    if (project === null || state === undefined || this.#waiting.has(project)) return;
    transport.setPresence?.(project, state, 10_000).catch((error: unknown) => {
      this.#refused(project, state, error);
      if (current()) this.host.report(error);
    });
  }

  /** The application left `room`: its state is not set again. */
  forget(room: string): void {
    if (room.startsWith("project:")) this.#wanted.delete(room.slice("project:".length));
  }

  /** A refused state (too large, rate limited, ...) is not set again after a reconnect. */
  #refused(project: string, state: PresenceState | null, error: unknown): void {
    if (error instanceof RequestError && state !== null && this.#wanted.get(project) === state) {
      this.#wanted.delete(project);
    }
  }
}
