// What an application registers on a client: handlers of events by type and listeners of the
// connection (status, joins, resyncs, presence, authentication, errors). `EventBridgeClient`
// (client.ts) extends it and calls them; a handler that throws is reported through `report`.

import type { AuthError } from "./errors.js";
import type { DeliveryMeta, EventOf, EventType } from "./events.js";
import type { PresenceMember } from "./generated/schemas.js";
import { ClientListeners, EventHandlers, type AnyHandler } from "./listeners.js";
import type { ClientOptions, ConnectionStatus, JoinInfo, ResyncInfo, StatusDetail } from "./options.js";
import type { Grant } from "./transports/types.js";

export abstract class ClientSurface {
  protected readonly handlers: EventHandlers;
  protected readonly listeners: ClientListeners;

  constructor(options: ClientOptions) {
    const report = (error: unknown): void => this.report(error);
    this.handlers = new EventHandlers(report);
    this.listeners = new ClientListeners(options, report);
  }

  /** Tell the application about a failure (its `onError` listeners). */
  protected abstract report(error: unknown): void;

  /** Handle every event of one type; returns a function that removes the handler. */
  on<T extends EventType>(type: T, handler: (event: EventOf<T>, meta: DeliveryMeta) => void): () => void {
    return this.handlers.on(type, handler);
  }

  /** Handle every event, whatever its type (newer types too, typed loosely as `BridgeEvent`). */
  onEvent(handler: AnyHandler): () => void {
    return this.handlers.onEvent(handler);
  }

  onStatus(listener: (status: ConnectionStatus, detail: StatusDetail) => void): () => void {
    return this.listeners.status.add(listener);
  }
  onJoined(listener: (join: JoinInfo) => void): () => void {
    return this.listeners.joined.add(listener);
  }
  onResync(listener: (resync: ResyncInfo) => void): () => void {
    return this.listeners.resync.add(listener);
  }
  /** Who is in a joined project room, over every replica (docs/clients.md, "Presence"): called
   * with all its members when its list arrives (after each join) and at each change. */
  onPresence(listener: (project: string, members: PresenceMember[]) => void): () => void {
    return this.listeners.presence.add(listener);
  }
  /** After the bridge accepted the connection (with the WebSocket `authenticated` grant, or
   * null), before the rooms are joined: the listener may still subscribe or unsubscribe. */
  onAuthenticated(listener: (grant: Grant | null) => void): () => void {
    return this.listeners.authenticated.add(listener);
  }
  onAuthError(listener: (error: AuthError) => void): () => void {
    return this.listeners.authError.add(listener);
  }
  onError(listener: (error: Error) => void): () => void {
    return this.listeners.error.add(listener);
  }
}
