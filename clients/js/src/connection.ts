// One connection to the bridge: its transport, whether the bridge accepted it, and the rooms
// joined (or being joined) on it. A reconnect makes a new one.

import { AuthError } from "./errors.js";
import type { ConnectionStatus } from "./options.js";
import { statusOfRooms, type RoomState } from "./rooms.js";
import type { CloseReason, Grant, Transport } from "./transports/types.js";

export class Connection {
  /** The bridge accepted the connection (and its token). */
  ready = false;
  /** The WebSocket `authenticated` grant, or null. */
  grant: Grant | null = null;
  readonly rooms = new Map<string, RoomState>();
  constructor(readonly transport: Transport) {}

  /** Ask to join the room; it is `joining` until the bridge answers. */
  join(room: string, since: number | null, epoch: string | null): void {
    this.rooms.set(room, { phase: "joining", since });
    this.transport.join(room, since, epoch);
  }

  /** Leave the room if it is joined (or being joined); whether it was. */
  leave(room: string): boolean {
    const state = this.rooms.get(room);
    if (!state) return false;
    clearTimeout(state.settle);
    this.rooms.delete(room);
    if (this.ready) this.transport.leave(room);
    return true;
  }

  /** Whether it has rooms and the bridge answered every join. */
  get allJoined(): boolean {
    return this.rooms.size > 0 && [...this.rooms.values()].every((room) => room.phase !== "joining");
  }

  get status(): ConnectionStatus {
    return this.ready ? statusOfRooms(this.rooms.values()) : "connecting";
  }

  /** Stop every timer and close the transport. */
  close(): void {
    for (const state of this.rooms.values()) clearTimeout(state.settle);
    this.transport.close();
  }
}

/**
 * What follows a connection's close: `refresh` (the token expired, on a live connection or
 * already when presented: ask the provider for a fresh one, at once, once, and every room
 * resumes), the `AuthError` that stops the client (a refused token, or an expiry again right
 * after a refresh), or `retry` (reconnect after the backoff).
 */
export function afterClose(reason: CloseReason, refreshed: boolean): "refresh" | "retry" | AuthError {
  const expired = reason.kind === "token_expired" || (reason.kind === "auth" && reason.code === "token_expired");
  if (expired && !refreshed) return "refresh";
  if (reason.kind === "auth" || reason.kind === "token_expired") {
    return new AuthError(reason.kind === "auth" ? reason.code : "token_expired", reason.message);
  }
  return "retry";
}
