// The native WebSocket transport (`/ws`): JSON text frames, the token as the first message.

import type {
  ResyncNotice,
  WsAuthenticated,
  WsPresenceState,
  WsRequestError,
  WsSubscribed,
} from "../generated/schemas.js";
import { ConnectionClosedError, RequestError, TimeoutError } from "../errors.js";
import { ACTIVITY_FEED } from "../events.js";
import type {
  CloseReason,
  PresenceMessage,
  PresenceState,
  Transport,
  TransportEvents,
  TransportFactory,
} from "./types.js";

/** The close code of a refused or expired token. */
export const AUTH_CLOSE_CODE = 4401;
const PING_EVERY_MS = 20_000;

/** The part of the standard `WebSocket` class this transport uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketTransportOptions {
  /** The `WebSocket` class (default: the global one; Node 20 needs --experimental-websocket). */
  WebSocket?: WebSocketConstructor;
  /** The path of the endpoint (default `/ws`). */
  path?: string;
  /** How often to ping, in ms, so proxies keep an idle connection open (default 20000). */
  pingIntervalMs?: number;
}

/** `http(s)://host/base` → `ws(s)://host/base/ws`. */
export function websocketUrl(url: string, path = "/ws"): string {
  const target = new URL(url);
  if (target.protocol === "http:") target.protocol = "ws:";
  else if (target.protocol === "https:") target.protocol = "wss:";
  target.pathname = target.pathname.replace(/\/+$/, "") + path;
  target.search = "";
  target.hash = "";
  return target.href;
}

type Answer = { resolve(state: PresenceState | null): void; reject(error: Error): void };
/** A request awaiting its reply; `answer` settles a `presence_update` (cleared on timeout). */
type Pending = { type: string; room?: string; answer?: Answer };

/** The native WebSocket transport. */
export function websocketTransport(options: WebSocketTransportOptions = {}): TransportFactory {
  return (url, events) => new WebSocketTransport(url, events, options);
}

class WebSocketTransport implements Transport {
  #socket: WebSocketLike | null = null;
  #done = false;
  #ready = false;
  #pinger: ReturnType<typeof setInterval> | null = null;
  // Requests awaiting their reply: the bridge answers a connection's requests one by one, in
  // order (replies are queued with the events), so the oldest pending request owns each reply.
  #pending: Pending[] = [];
  #authRefusal: { code: string; message: string } | null = null;

  constructor(
    private readonly url: string,
    private readonly events: TransportEvents,
    private readonly options: WebSocketTransportOptions,
  ) {}

  open(token: string | null): void {
    const Socket =
      this.options.WebSocket ??
      (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Socket) {
      throw new Error(
        "no WebSocket class: use Node 22+, Node 20 with --experimental-websocket, or pass one",
      );
    }
    const socket = new Socket(websocketUrl(this.url, this.options.path));
    this.#socket = socket;
    socket.addEventListener("open", () => {
      if (this.#done) return;
      if (token) {
        this.#send({ type: "auth", token }); // the FIRST message; never in the URL
      } else {
        this.#becomeReady(null); // anonymous; a bridge that wants a token closes with 4401
      }
      const every = this.options.pingIntervalMs ?? PING_EVERY_MS;
      this.#pinger = setInterval(() => this.#send({ type: "ping" }), every);
    });
    socket.addEventListener("message", (message: { data: unknown }) => {
      if (this.#done || typeof message.data !== "string") return;
      let frame: unknown;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return; // the bridge sends JSON only
      }
      if (frame && typeof frame === "object") this.#handle(frame as Record<string, unknown>);
    });
    // Browsers fire `error` then `close`; Node 20 may fire only `error` for a failed connect.
    socket.addEventListener("close", (close: { code?: number; reason?: string }) =>
      this.#end(close.code ?? null, close.reason ?? ""),
    );
    socket.addEventListener("error", () => this.#end(null, "connection failed"));
  }

  join(room: string, since: number | null, epoch: string | null): void {
    const target = room === ACTIVITY_FEED ? { room } : { project_id: room.slice("project:".length) };
    const resume = since === null ? {} : { since, ...(epoch ? { epoch } : {}) };
    this.#send({ type: "subscribe", ...target, ...resume }, room);
  }

  leave(room: string): void {
    const target = room === ACTIVITY_FEED ? { room } : { project_id: room.slice("project:".length) };
    this.#send({ type: "unsubscribe", ...target }, room);
  }

  setPresence(project: string, state: PresenceState | null, timeoutMs: number): Promise<PresenceState | null> {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      if (this.#done || !this.#ready || !socket || socket.readyState !== 1) {
        reject(new ConnectionClosedError("presence_update not sent: not connected"));
        return;
      }
      const request: Pending = { type: "presence_update" };
      const timer = setTimeout(() => {
        request.answer = undefined; // the reply may still come: it stays this request's
        reject(new TimeoutError(`presence_update not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      request.answer = {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      };
      this.#pending.push(request);
      socket.send(JSON.stringify({ type: "presence_update", project_id: project, state }));
    });
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#stopPinging();
    this.#failPending();
    try {
      this.#socket?.close(1000, "client closed");
    } catch {
      // already closing
    }
  }

  /** Reject the presence requests still waiting: their connection is gone. */
  #failPending(): void {
    const error = new ConnectionClosedError("the connection closed before presence_update was answered");
    for (const request of this.#pending.splice(0)) request.answer?.reject(error);
  }

  #send(message: { type: string } & Record<string, unknown>, room?: string): void {
    const socket = this.#socket;
    if (this.#done || !socket || socket.readyState !== 1) return;
    if (message.type !== "auth") this.#pending.push({ type: message.type, room });
    socket.send(JSON.stringify(message));
  }

  #becomeReady(grant: WsAuthenticated | null): void {
    if (this.#ready) return;
    this.#ready = true;
    if (grant === null) {
      this.events.ready(null);
    } else {
      const { type: _type, ...rest } = grant;
      this.events.ready(rest);
    }
  }

  #handle(frame: Record<string, unknown>): void {
    // An event carries `id` and `offset`; its `type` is the event type (an event of type `error`
    // is an event, not a reply), so look for those first.
    if ("id" in frame && "offset" in frame) {
      this.events.event(frame as never);
      return;
    }
    switch (frame.type) {
      case "authenticated":
        this.#becomeReady(frame as unknown as WsAuthenticated);
        return;
      case "resync_required": {
        const { type: _type, ...notice } = frame;
        this.events.resync(notice as unknown as ResyncNotice);
        return;
      }
      case "subscribed": {
        const reply = frame as unknown as WsSubscribed;
        this.#pending.shift();
        this.events.joined({ room: reply.room, epoch: reply.epoch, offset: reply.offset });
        return;
      }
      case "presence":
      case "presence_joined":
      case "presence_updated":
      case "presence_left": {
        const { type, ...rest } = frame;
        this.events.presence?.({ kind: type, ...rest } as unknown as PresenceMessage);
        return;
      }
      case "pong":
      case "unsubscribed":
        this.#pending.shift();
        return;
      case "presence_state":
        this.#pending.shift()?.answer?.resolve((frame as unknown as WsPresenceState).state ?? null);
        return;
      case "request_error": {
        const error = frame as unknown as WsRequestError;
        if (error.request === "auth") {
          // The bridge closes with 4401 next; this frame has the whole message.
          this.#authRefusal = { code: error.code, message: error.message };
          return;
        }
        const request = this.#pending.shift();
        if (request?.type === "presence_update") {
          const refused = new RequestError(error.code, error.message, "presence_update");
          if (request.answer) request.answer.reject(refused);
          else this.events.requestError(error.code, error.message, "presence_update"); // timed out
        } else if (request?.type === "subscribe" && request.room) {
          this.events.joinRefused(request.room, error.code, error.message);
        } else {
          this.events.requestError(error.code, error.message, error.request ?? request?.type ?? null);
        }
        return;
      }
      default:
        return; // a frame of a newer protocol version
    }
  }

  #stopPinging(): void {
    if (this.#pinger !== null) clearInterval(this.#pinger);
    this.#pinger = null;
  }

  #end(code: number | null, text: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#stopPinging();
    this.#failPending();
    let reason: CloseReason;
    if (code === AUTH_CLOSE_CODE) {
      const [head = "auth_required", ...rest] = text.split(": ");
      const refusal = this.#authRefusal ?? { code: head, message: rest.join(": ") };
      reason =
        this.#ready && refusal.code === "token_expired"
          ? { kind: "token_expired", message: refusal.message }
          : { kind: "auth", code: refusal.code, message: refusal.message };
    } else if (this.#authRefusal) {
      reason = { kind: "auth", ...this.#authRefusal };
    } else {
      reason = { kind: "retry", code, message: text };
    }
    try {
      this.#socket?.close();
    } catch {
      // already closed
    }
    this.events.closed(reason);
  }
}
