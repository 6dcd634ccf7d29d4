// The transport a client's options choose: the native WebSocket (the default), Socket.IO, or a
// factory of the application's own.

import type { ClientOptions } from "../options.js";
import { socketioTransport } from "./socketio.js";
import type { TransportFactory } from "./types.js";
import { websocketTransport } from "./websocket.js";

export function transportFactory(options: ClientOptions): TransportFactory {
  const transport = options.transport ?? "websocket";
  if (typeof transport === "function") return transport;
  return transport === "socketio" ? socketioTransport(options.socketio) : websocketTransport(options.websocket);
}
