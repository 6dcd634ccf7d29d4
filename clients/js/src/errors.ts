// The errors the library raises or reports: one root, a small flat tree.

/** Base class of every error this library raises or reports. */
export class EventBridgeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The bridge refused a request (a join, a leave, a client event); the connection stays open. */
export class RequestError extends EventBridgeError {
  /** The bridge's code, e.g. `forbidden`, `invalid_data`, `rate_limited` (docs/clients.md). */
  readonly code: string;
  /** What was asked: `subscribe`, `join-project`, `new-activity`, ... (null when unknown). */
  readonly request: string | null;

  constructor(code: string, message: string, request: string | null = null) {
    super(`${request ?? "request"} refused: ${code}: ${message}`);
    this.code = code;
    this.request = request;
  }
}

/**
 * The bridge refused the token (`auth_required`, `invalid_token`, `token_expired`), or the token
 * provider threw one to say it has no token to give. The client stops reconnecting until
 * `connect()` is called again: the same token would be refused again.
 */
export class AuthError extends EventBridgeError {
  readonly code: string;
  /** The bridge's sentence (or the provider's), without the code. */
  readonly reason: string;

  constructor(code: string, reason: string) {
    super(`${code}: ${reason}`);
    this.code = code;
    this.reason = reason;
  }
}

/** No answer in time (an acknowledgement, a connection). */
export class TimeoutError extends EventBridgeError {}

/** The connection ended before the request was answered, or the client was closed. */
export class ConnectionClosedError extends EventBridgeError {}

/** The transport in use cannot do this (client events exist on Socket.IO only). */
export class UnsupportedError extends EventBridgeError {}
