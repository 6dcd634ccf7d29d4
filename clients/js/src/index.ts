// @eventbridge/client: typed events from eventbridge rooms over the native WebSocket or
// Socket.IO, resumed by offset across reconnects and page reloads (docs/client-library.md).

export { EventBridgeClient, connect, createClient } from "./client.js";
export type {
  ClientOptions,
  ConnectionStatus,
  JoinInfo,
  ResyncInfo,
  StatusDetail,
  TokenProvider,
  TokenRequest,
} from "./options.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export {
  AuthError,
  ConnectionClosedError,
  EventBridgeError,
  RequestError,
  TimeoutError,
  UnsupportedError,
} from "./errors.js";
export {
  ACTIVITY_FEED,
  EVENT_TYPES,
  countingRoom,
  joinOrder,
  projectRoom,
  roomName,
  type BridgeEvent,
  type ClientEventName,
  type ClientEvents,
  type DeliveryMeta,
  type EventData,
  type EventEnvelopes,
  type EventOf,
  type EventType,
  type RoomTarget,
} from "./events.js";
export {
  defaultStore,
  localStorageStore,
  memoryStore,
  parseResumeState,
  type ResumeState,
  type ResumeStore,
  type StorageLike,
} from "./store.js";
export {
  socketioTransport,
  type IoFunction,
  type SocketIOTransportOptions,
  type SocketLike,
} from "./transports/socketio.js";
export type {
  ClientEventAck,
  CloseReason,
  Grant,
  JoinReply,
  PresenceMessage,
  PresenceState,
  Transport,
  TransportEvents,
  TransportFactory,
} from "./transports/types.js";
export {
  AUTH_CLOSE_CODE,
  websocketTransport,
  websocketUrl,
  type WebSocketConstructor,
  type WebSocketLike,
  type WebSocketTransportOptions,
} from "./transports/websocket.js";
export type * from "./generated/schemas.js";
