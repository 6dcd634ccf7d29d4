// The application's handlers: its listeners (status, joins, resyncs, authentication, errors) and
// its event handlers by type. A handler that throws is reported and the others still run.

import type { AuthError } from "./errors.js";
import type { BridgeEvent, DeliveryMeta, EventOf, EventType } from "./events.js";
import type { ClientOptions, ConnectionStatus, JoinInfo, ResyncInfo, StatusDetail } from "./options.js";
import type { PresenceMember } from "./generated/schemas.js";
import type { Grant } from "./transports/types.js";

type Listener<A extends unknown[]> = (...args: A) => void;
export type AnyHandler = (event: BridgeEvent, meta: DeliveryMeta) => void;

/** The listeners of one kind, called in the order they were added. */
export class Listeners<A extends unknown[]> {
  readonly #set = new Set<Listener<A>>();
  constructor(private readonly report: (error: unknown) => void) {}
  add(listener: Listener<A>): () => void {
    this.#set.add(listener);
    return () => this.#set.delete(listener);
  }
  call(...args: A): void {
    for (const listener of [...this.#set]) {
      try {
        listener(...args);
      } catch (error) {
        this.report(error);
      }
    }
  }
}

/** The event handlers: those of one type each, then those of every event. */
export class EventHandlers {
  #typed = new Map<string, Set<(event: never, meta: DeliveryMeta) => void>>();
  #any = new Set<AnyHandler>();
  constructor(private readonly report: (error: unknown) => void) {}

  on<T extends EventType>(type: T, handler: (event: EventOf<T>, meta: DeliveryMeta) => void): () => void {
    let set = this.#typed.get(type);
    if (!set) this.#typed.set(type, (set = new Set()));
    const entry = handler as (event: never, meta: DeliveryMeta) => void;
    set.add(entry);
    return () => set.delete(entry);
  }

  onEvent(handler: AnyHandler): () => void {
    this.#any.add(handler);
    return () => this.#any.delete(handler);
  }

  /** Call the handlers of the event's type, then those of every event. */
  deliver(event: BridgeEvent, meta: DeliveryMeta): void {
    for (const handler of [...(this.#typed.get(event.type) ?? [])]) {
      try {
        (handler as (event: BridgeEvent, meta: DeliveryMeta) => void)(event, meta);
      } catch (error) {
        this.report(error);
      }
    }
    for (const handler of [...this.#any]) {
      try {
        handler(event, meta);
      } catch (error) {
        this.report(error);
      }
    }
  }
}

/** The application's listeners of each kind, those given as options first. */
export class ClientListeners {
  readonly status: Listeners<[ConnectionStatus, StatusDetail]>;
  readonly joined: Listeners<[JoinInfo]>;
  readonly resync: Listeners<[ResyncInfo]>;
  readonly presence: Listeners<[string, PresenceMember[]]>;
  readonly authenticated: Listeners<[Grant | null]>;
  readonly authError: Listeners<[AuthError]>;
  readonly error: Listeners<[Error]>;

  constructor(options: ClientOptions, report: (error: unknown) => void) {
    this.status = new Listeners(report);
    this.joined = new Listeners(report);
    this.resync = new Listeners(report);
    this.presence = new Listeners(report);
    this.authenticated = new Listeners(report);
    this.authError = new Listeners(report);
    this.error = new Listeners((error) => console.error("eventbridge: onError threw", error));
    if (options.onStatus) this.status.add(options.onStatus);
    if (options.onJoined) this.joined.add(options.onJoined);
    if (options.onResync) this.resync.add(options.onResync);
    if (options.onPresence) this.presence.add(options.onPresence);
    if (options.onAuthenticated) this.authenticated.add(options.onAuthenticated);
    if (options.onAuthError) this.authError.add(options.onAuthError);
    if (options.onError) this.error.add(options.onError);
  }
}
