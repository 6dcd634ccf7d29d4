// The Socket.IO transport (`/socket.io/`), on the official socket.io-client v4 (an optional peer
// dependency): requests are events answered through acknowledgements, the token goes in the
// handshake's `auth` payload. socket.io-client's own reconnection is off: the client reconnects
// with its backoff, a fresh token and every room's offset, the same way on both transports.

import type {
  ResyncNotice,
  SioBridgeDisconnect,
  SioClientEventAck,
  SioErrorAck,
  SioJoinAck,
  SioPresenceUpdateAck,
} from "../generated/schemas.js";
import { ACTIVITY_FEED } from "../events.js";
import { ConnectionClosedError, RequestError, TimeoutError } from "../errors.js";
import type {
  ClientEventAck,
  CloseReason,
  PresenceMessage,
  PresenceState,
  Transport,
  TransportEvents,
  TransportFactory,
} from "./types.js";

/** The part of a socket.io-client `Socket` this transport uses. */
export interface SocketLike {
  on(event: string, listener: (...args: any[]) => void): unknown;
  onAny(listener: (event: string, ...args: any[]) => void): unknown;
  timeout(ms: number): { emit(event: string, ...args: any[]): unknown };
  connect(): unknown;
  disconnect(): unknown;
}

/** socket.io-client's `io` function (its default export, or the browser bundle's global). */
export type IoFunction = (url: string, options: Record<string, unknown>) => SocketLike;

export interface SocketIOTransportOptions {
  /**
   * socket.io-client's `io`. Default: the global `io` of its browser bundle if there is one,
   * else `import("socket.io-client")`.
   */
  io?: IoFunction;
  /** socket.io-client transports (default: long-polling, then the upgrade to WebSocket). */
  transports?: ("polling" | "websocket")[];
  /** How long to wait for a join's acknowledgement, in ms (default 10000). */
  ackTimeoutMs?: number;
  /** More socket.io-client options (path, extraHeaders, ...). */
  options?: Record<string, unknown>;
}

const AUTH_CODES = new Set(["auth_required", "invalid_token", "token_expired"]);

async function findIo(given?: IoFunction): Promise<IoFunction> {
  if (given) return given;
  const global = (globalThis as { io?: IoFunction }).io;
  if (typeof global === "function") return global;
  const specifier = "socket.io-client"; // a variable, so bundlers leave the optional peer out
  const module = (await import(/* @vite-ignore */ specifier)) as { io?: IoFunction; default?: IoFunction };
  const io = module.io ?? module.default;
  if (!io) throw new Error("socket.io-client has no `io` export");
  return io;
}

/** The Socket.IO transport. */
export function socketioTransport(options: SocketIOTransportOptions = {}): TransportFactory {
  let io: Promise<IoFunction> | null = null;
  return (url, events) => {
    io ??= findIo(options.io);
    return new SocketIOTransport(url, events, options, io);
  };
}

function isErrorAck(ack: unknown): ack is SioErrorAck {
  return !!ack && typeof ack === "object" && (ack as { ok?: unknown }).ok === false;
}

class SocketIOTransport implements Transport {
  #socket: SocketLike | null = null;
  #done = false;
  #ready = false;
  #disconnectReason: string | null = null;
  #failures = new Set<(error: Error) => void>();

  constructor(
    private readonly url: string,
    private readonly events: TransportEvents,
    private readonly options: SocketIOTransportOptions,
    private readonly io: Promise<IoFunction>,
  ) {}

  open(token: string | null): void {
    this.io.then(
      (io) => this.#open(io, token),
      (error: unknown) =>
        this.#end({ kind: "retry", code: null, message: `socket.io-client unavailable: ${error}` }),
    );
  }

  #open(io: IoFunction, token: string | null): void {
    if (this.#done) return;
    const socket = io(this.url, {
      ...this.options.options,
      ...(this.options.transports ? { transports: this.options.transports } : {}),
      auth: token ? { token } : {},
      reconnection: false,
      forceNew: true,
      autoConnect: false,
    });
    this.#socket = socket;
    socket.on("connect", () => {
      if (this.#done) return;
      this.#ready = true;
      this.events.ready(null); // Socket.IO has no `authenticated` reply
    });
    socket.on("connect_error", (error: Error & { data?: { code?: string } }) => {
      const code = error.data?.code;
      if (code && AUTH_CODES.has(code)) {
        this.#end({ kind: "auth", code, message: error.message });
      } else {
        this.#end({ kind: "retry", code: null, message: error.message });
      }
    });
    socket.on("bridge-disconnect", (notice: SioBridgeDisconnect) => {
      this.#disconnectReason = notice?.reason ?? null;
    });
    socket.on("disconnect", (why: string) => {
      if (this.#disconnectReason === "token_expired") {
        this.#end({ kind: "token_expired", message: "the token has expired" });
      } else {
        this.#end({ kind: "retry", code: this.#disconnectReason ?? why, message: why });
      }
    });
    socket.on("resync-required", (notice: ResyncNotice) => {
      if (!this.#done) this.events.resync(notice);
    });
    for (const name of ["presence", "presence-joined", "presence-updated", "presence-left"]) {
      socket.on(name, (payload: object) => {
        const kind = name.replace("-", "_");
        if (!this.#done) this.events.presence?.({ kind, ...payload } as unknown as PresenceMessage);
      });
    }
    socket.onAny((_name: string, payload: unknown) => {
      if (this.#done || !payload || typeof payload !== "object") return;
      if ("id" in payload && "offset" in payload) this.events.event(payload as never);
    });
    socket.connect();
  }

  join(room: string, since: number | null, epoch: string | null): void {
    const resume = since === null ? {} : { since, ...(epoch ? { epoch } : {}) };
    const [name, payload] =
      room === ACTIVITY_FEED
        ? ["join-activity-feed", resume]
        : ["join-project", { project_id: room.slice("project:".length), ...resume }];
    // The callback form (not emitWithAck): it runs as soon as the ack arrives, before the room's
    // events that follow it.
    this.#request(name, payload, (ack) => {
      if (isErrorAck(ack)) {
        this.events.joinRefused(room, ack.error.code, ack.error.message);
      } else {
        const reply = ack as SioJoinAck;
        this.events.joined({ room: reply.room, epoch: reply.epoch, offset: reply.offset });
      }
    });
  }

  leave(room: string): void {
    const [name, payload] =
      room === ACTIVITY_FEED
        ? ["leave-activity-feed", undefined]
        : ["leave-project", { project_id: room.slice("project:".length) }];
    this.#request(name, payload, (ack) => {
      if (isErrorAck(ack)) this.events.requestError(ack.error.code, ack.error.message, name);
    });
  }

  emit(name: string, payload: unknown, timeoutMs: number): Promise<ClientEventAck> {
    return this.#ask(name, payload, timeoutMs) as Promise<SioClientEventAck>;
  }

  async setPresence(project: string, state: PresenceState | null, timeoutMs: number): Promise<PresenceState | null> {
    const ack = (await this.#ask("presence-update", { project_id: project, state }, timeoutMs)) as SioPresenceUpdateAck;
    return ack.state ?? null;
  }

  /** Emit a request and resolve with its successful acknowledgement. */
  #ask(name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      if (this.#done || !socket || !this.#ready) {
        reject(new ConnectionClosedError(`${name} not sent: not connected`));
        return;
      }
      const fail = (error: Error): void => {
        this.#failures.delete(fail);
        reject(error);
      };
      this.#failures.add(fail);
      socket.timeout(timeoutMs).emit(name, payload, (error: Error | null, ack: unknown) => {
        if (!this.#failures.has(fail)) return;
        this.#failures.delete(fail);
        if (error) {
          reject(new TimeoutError(`${name} not acknowledged within ${timeoutMs} ms`));
        } else if (isErrorAck(ack)) {
          reject(new RequestError(ack.error.code, ack.error.message, name));
        } else {
          resolve(ack);
        }
      });
    });
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#failAll();
    this.#socket?.disconnect();
  }

  #request(name: string, payload: unknown, answered: (ack: unknown) => void): void {
    const socket = this.#socket;
    if (this.#done || !socket) return;
    const args = payload === undefined ? [] : [payload];
    const timeoutMs = this.options.ackTimeoutMs ?? 10_000;
    socket.timeout(timeoutMs).emit(name, ...args, (error: Error | null, ack: unknown) => {
      if (this.#done) return;
      if (error) {
        // No answer in time: the connection is gone without saying so. Start over.
        this.#end({ kind: "retry", code: null, message: `${name} not acknowledged` });
        return;
      }
      answered(ack);
    });
  }

  #failAll(): void {
    const error = new ConnectionClosedError("the connection closed before the acknowledgement");
    for (const fail of [...this.#failures]) fail(error);
  }

  #end(reason: CloseReason): void {
    if (this.#done) return;
    this.#done = true;
    this.#failAll();
    this.#socket?.disconnect();
    this.events.closed(reason);
  }
}
