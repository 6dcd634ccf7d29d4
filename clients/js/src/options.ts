// What the application configures and what it is told: the client's options and the shapes
// of its status, join and resync reports (docs/client-library.md).

import type { BackoffOptions } from "./backoff.js";
import type { AuthError } from "./errors.js";
import type { ResumeStore } from "./store.js";
import type { SocketIOTransportOptions } from "./transports/socketio.js";
import type { PresenceMember } from "./generated/schemas.js";
import type { Grant, TransportFactory } from "./transports/types.js";
import type { WebSocketTransportOptions } from "./transports/websocket.js";

/**
 * What the UI can show:
 * - `connecting`: opening the connection, authenticating, or waiting for the joins' replies;
 * - `catching_up`: joined; a room is receiving what it missed (or its current state after a
 *   fresh join);
 * - `resyncing`: a room could not be resumed and is receiving its current state (`onResync`);
 * - `live`: every room joined and up to date;
 * - `offline`: not connected: waiting to reconnect (`retryAt`), stopped by `close()`, or stopped
 *   because the bridge refused the token (`onAuthError`).
 */
export type ConnectionStatus = "connecting" | "live" | "catching_up" | "resyncing" | "offline";

export interface StatusDetail {
  /** Reconnect attempts since the client was last live. */
  attempt: number;
  /** When the next attempt starts (ms since the Unix epoch), while `offline` and waiting. */
  retryAt: number | null;
}

/** Why the token provider is asked for a token. */
export interface TokenRequest {
  /** `connect`: the first connection; `reconnect`: after a drop; `token_expired`: the last
   * token expired on a live connection. */
  reason: "connect" | "reconnect" | "token_expired";
}

/**
 * Gives the token (a JWT) for the next connection; called before every connection. Return null
 * for none (an anonymous bridge). Throw an `AuthError` to say there is no token to give (the
 * client then stops, as for a refused token); any other error is reported and retried.
 */
export type TokenProvider = (request: TokenRequest) => Promise<string | null> | string | null;

/** A room joined on the current connection. */
export interface JoinInfo {
  room: string;
  /** The `since` the join carried (null: a fresh join, which sends the room's state first). */
  since: number | null;
  epoch: string;
  /** The bridge's newest offset when it joined. */
  offset: number;
}

/** A room the bridge could not resume (docs/delivery-guarantees.md). */
export interface ResyncInfo {
  room: string;
  reason: string;
  epoch: string;
  /** Where live delivery of the room resumes: the snapshot that follows is at or below it. */
  offset: number;
  /** The `since` of the join the bridge could not serve (null when it came later). */
  since: number | null;
}

export interface ClientOptions {
  /** The bridge's base URL, e.g. `https://bridge.example.com` or `http://127.0.0.1:8000`. */
  url: string;
  /** `websocket` (default: `/ws`, no dependency), `socketio` (needs socket.io-client), or a
   * factory of your own. */
  transport?: "websocket" | "socketio" | TransportFactory;
  /** For `transport: "websocket"`. */
  websocket?: WebSocketTransportOptions;
  /** For `transport: "socketio"`. */
  socketio?: SocketIOTransportOptions;
  /** The token provider (leave it out for an anonymous bridge). */
  token?: TokenProvider;
  /** Where the epoch and the per-room offsets are kept (default: `defaultStore(url)`). */
  store?: ResumeStore;
  /** Reconnect delays (default 500 ms doubling up to 15 s, full jitter). */
  backoff?: BackoffOptions;
  /** A room's catch-up or snapshot counts as finished after this long without one of its
   * events (ms, default 1000): the bridge does not mark the end of a catch-up. */
  settleMs?: number;
  onStatus?: (status: ConnectionStatus, detail: StatusDetail) => void;
  onJoined?: (join: JoinInfo) => void;
  onResync?: (resync: ResyncInfo) => void;
  /** Who is in a joined project room changed (or its list arrived): all its members now. */
  onPresence?: (project: string, members: PresenceMember[]) => void;
  onAuthenticated?: (grant: Grant | null) => void;
  onAuthError?: (error: AuthError) => void;
  onError?: (error: Error) => void;
}
