// The seam between the client (rooms, offsets, status) and the two wire protocols. A transport
// only reads and writes frames; it keeps no resume state.

import type { PresenceMember, PresenceUpdate, ResyncNotice, WsAuthenticated } from "../generated/schemas.js";

/** A presence message of a project room (docs/clients.md, "Presence"), by its WebSocket name. */
export type PresenceMessage =
  | { kind: "presence"; project_id: string; members: PresenceMember[] }
  | { kind: "presence_joined" | "presence_updated"; project_id: string; member: PresenceMember }
  | { kind: "presence_left"; project_id: string; user_id: string };

/** What a token grants, as the native WebSocket's `authenticated` reply says. */
export type Grant = Omit<WsAuthenticated, "type">;

/** A join's reply: the room, the log's epoch and the bridge's newest offset (its head). */
export interface JoinReply {
  room: string;
  epoch: string;
  offset: number;
}

/** Why a connection ended, as far as the client must act on it. */
export type CloseReason =
  /** The token was refused (at connect): reconnecting with it is pointless. */
  | { kind: "auth"; code: string; message: string }
  /** The token expired on a live connection: get a fresh one and resume. */
  | { kind: "token_expired"; message: string }
  /** Anything else (network, restart, slow consumer, ...): reconnect with backoff. */
  | { kind: "retry"; code: number | string | null; message: string };

/** What a transport reports to the client. */
export interface TransportEvents {
  /** The connection is accepted (and authenticated, if a token was sent): join the rooms. */
  ready(grant: Grant | null): void;
  joined(reply: JoinReply): void;
  joinRefused(room: string, code: string, message: string): void;
  /** An event frame: the envelope plus `offset`. */
  event(event: { id: string; type: string; offset: number; project_id?: string | null }): void;
  resync(notice: ResyncNotice): void;
  /** Who is in a project room, and changes of it (optional for transports of your own). */
  presence?(message: PresenceMessage): void;
  /** A refused request that is no join (the connection stays open). */
  requestError(code: string, message: string, request: string | null): void;
  closed(reason: CloseReason): void;
}

/** A member's presence state in a project room: a JSON object, or null for none. */
export type PresenceState = NonNullable<PresenceUpdate["state"]>;

/** A client-event acknowledgement that succeeded. */
export interface ClientEventAck {
  ok: true;
  /** The id of the event the bridge published. */
  id: string;
}

export interface Transport {
  /** Open the connection, sending `token` (when not null) the transport's way. */
  open(token: string | null): void;
  join(room: string, since: number | null, epoch: string | null): void;
  leave(room: string): void;
  /** Socket.IO only: a client-originated event, resolved with its ack. */
  emit?(name: string, payload: unknown, timeoutMs: number): Promise<ClientEventAck>;
  /**
   * Set (null: clear) this connection's presence state in a joined project room; resolves with
   * the state the bridge set, rejects with `RequestError` (refused), `TimeoutError` or
   * `ConnectionClosedError` (optional for transports of your own).
   */
  setPresence?(project: string, state: PresenceState | null, timeoutMs: number): Promise<PresenceState | null>;
  /** Close for good; no `closed` report follows. */
  close(): void;
}

export type TransportFactory = (url: string, events: TransportEvents) => Transport;
