// @eventbridge/client 0.1.0: the browser bundle, built from clients/js by `npm run build`.
// Do not edit; see docs/client-library.md. A test fails while it is stale.

// src/backoff.ts
var DEFAULT_BACKOFF = { minMs: 500, maxMs: 15e3 };
function backoffDelay(attempt, options = {}, random = Math.random) {
  const minMs = options.minMs ?? DEFAULT_BACKOFF.minMs;
  const maxMs = Math.max(minMs, options.maxMs ?? DEFAULT_BACKOFF.maxMs);
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}
var RetryTimer = class {
  constructor(options) {
    this.options = options;
  }
  options;
  /** Reconnect attempts since the client was last live (reset by the client). */
  attempt = 0;
  #timer = null;
  #at = null;
  /** Whether a reconnect is waiting. */
  get pending() {
    return this.#timer !== null;
  }
  /** When the waiting reconnect starts (ms since the Unix epoch), or null. */
  get at() {
    return this.#at;
  }
  /** Call `retry` after the next delay, instead of any reconnect already waiting. */
  schedule(retry) {
    this.clear();
    const delay = backoffDelay(this.attempt, this.options);
    this.attempt += 1;
    this.#at = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#at = null;
      retry();
    }, delay);
  }
  clear() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#at = null;
  }
};

// src/errors.ts
var EventBridgeError = class extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
};
var RequestError = class extends EventBridgeError {
  /** The bridge's code, e.g. `forbidden`, `invalid_data`, `rate_limited` (docs/clients.md). */
  code;
  /** What was asked: `subscribe`, `join-project`, `new-activity`, ... (null when unknown). */
  request;
  constructor(code, message, request = null) {
    super(`${request ?? "request"} refused: ${code}: ${message}`);
    this.code = code;
    this.request = request;
  }
};
var AuthError = class extends EventBridgeError {
  code;
  /** The bridge's sentence (or the provider's), without the code. */
  reason;
  constructor(code, reason) {
    super(`${code}: ${reason}`);
    this.code = code;
    this.reason = reason;
  }
};
var TimeoutError = class extends EventBridgeError {
};
var ConnectionClosedError = class extends EventBridgeError {
};
var UnsupportedError = class extends EventBridgeError {
};

// src/events.ts
var EVENT_TYPES = [
  "agent_status",
  "progress_update",
  "generation_complete",
  "error",
  "activity_created",
  "step_updated",
  "step_completed",
  "deployment_status",
  "deployment_log"
];
var ACTIVITY_FEED = "activity-feed";
var PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;
function projectRoom(projectId) {
  if (!PROJECT_ID.test(projectId)) {
    throw new TypeError(
      `project id ${JSON.stringify(projectId)} must be 1-64 letters, digits, '_' or '-'`
    );
  }
  return `project:${projectId}`;
}
function roomName(target) {
  if (typeof target === "object" && target !== null) return projectRoom(target.project);
  if (target === ACTIVITY_FEED) return target;
  if (typeof target === "string" && target.startsWith("project:")) {
    return projectRoom(target.slice("project:".length));
  }
  throw new TypeError(
    `unknown room ${JSON.stringify(target)}: use "activity-feed", "project:<id>" or {project}`
  );
}
function countingRoom(event, rooms) {
  if (typeof event.project_id === "string") {
    const room = `project:${event.project_id}`;
    if (rooms.has(room)) return room;
  }
  if (event.type === "activity_created" && rooms.has(ACTIVITY_FEED)) return ACTIVITY_FEED;
  return null;
}
function joinOrder(rooms) {
  const list = [...rooms];
  return [...list.filter((room) => room !== ACTIVITY_FEED), ...list.filter((r) => r === ACTIVITY_FEED)];
}

// src/rooms.ts
function enterPhase(state, phase, settleMs, changed) {
  clearTimeout(state.settle);
  state.settle = void 0;
  state.phase = phase;
  if (phase === "catching_up" || phase === "resyncing") {
    state.settle = setTimeout(() => {
      state.settle = void 0;
      if (state.phase === phase) {
        state.phase = "live";
        changed();
      }
    }, settleMs);
  }
}
function progress(state, offset, settleMs, changed) {
  if (state.phase === "catching_up" || state.phase === "resyncing") {
    const end = state.catchUpTo ?? state.snapshotUpTo ?? -1;
    if (state.catchUpTo !== void 0 ? offset >= end : offset > end) {
      enterPhase(state, "live", settleMs, changed);
      changed();
    } else {
      enterPhase(state, state.phase, settleMs, changed);
    }
  }
}
function statusOfRooms(rooms) {
  const phases = new Set([...rooms].map((state) => state.phase));
  if (phases.has("joining")) return "connecting";
  if (phases.has("resyncing")) return "resyncing";
  if (phases.has("catching_up")) return "catching_up";
  return "live";
}
function applyJoin(state, reply, resume) {
  resume.noteEpoch(reply.epoch, reply.room);
  const join = { room: reply.room, since: state.since, epoch: reply.epoch, offset: reply.offset };
  state.join = join;
  if (state.since === null) {
    resume.setOffset(reply.room, reply.offset);
    state.snapshotUpTo = reply.offset;
    return { join, phase: reply.room === ACTIVITY_FEED ? "live" : "catching_up" };
  }
  if (state.since < reply.offset) {
    state.catchUpTo = reply.offset;
    return { join, phase: "catching_up" };
  }
  return { join, phase: "live" };
}
function applyResync(state, notice, resume) {
  const info = { ...notice, since: state.join ? state.since : null };
  resume.noteEpoch(notice.epoch, notice.room);
  resume.setOffset(notice.room, notice.offset);
  state.snapshotUpTo = notice.offset;
  state.catchUpTo = void 0;
  return info;
}

// src/connection.ts
var Connection = class {
  constructor(transport) {
    this.transport = transport;
  }
  transport;
  /** The bridge accepted the connection (and its token). */
  ready = false;
  /** The WebSocket `authenticated` grant, or null. */
  grant = null;
  rooms = /* @__PURE__ */ new Map();
  /** Ask to join the room; it is `joining` until the bridge answers. */
  join(room, since, epoch) {
    this.rooms.set(room, { phase: "joining", since });
    this.transport.join(room, since, epoch);
  }
  /** Leave the room if it is joined (or being joined); whether it was. */
  leave(room) {
    const state = this.rooms.get(room);
    if (!state) return false;
    clearTimeout(state.settle);
    this.rooms.delete(room);
    if (this.ready) this.transport.leave(room);
    return true;
  }
  /** Whether it has rooms and the bridge answered every join. */
  get allJoined() {
    return this.rooms.size > 0 && [...this.rooms.values()].every((room) => room.phase !== "joining");
  }
  get status() {
    return this.ready ? statusOfRooms(this.rooms.values()) : "connecting";
  }
  /** Stop every timer and close the transport. */
  close() {
    for (const state of this.rooms.values()) clearTimeout(state.settle);
    this.transport.close();
  }
};
function afterClose(reason, refreshed) {
  const expired = reason.kind === "token_expired" || reason.kind === "auth" && reason.code === "token_expired";
  if (expired && !refreshed) return "refresh";
  if (reason.kind === "auth" || reason.kind === "token_expired") {
    return new AuthError(reason.kind === "auth" ? reason.code : "token_expired", reason.message);
  }
  return "retry";
}

// src/presence.ts
var PresenceBook = class {
  #projects = /* @__PURE__ */ new Map();
  /** Take in a list or a change; returns the project it is about. */
  apply(message) {
    const project = message.project_id;
    let members = this.#projects.get(project);
    if (message.kind === "presence" || !members) {
      members = new Map(message.kind === "presence" ? message.members.map((m) => [m.user_id, m]) : []);
      this.#projects.set(project, members);
    }
    if (message.kind === "presence_left") members.delete(message.user_id);
    else if (message.kind !== "presence") members.set(message.member.user_id, message.member);
    return project;
  }
  /** The members of a project by user id (empty before its room's list arrived). */
  members(project) {
    const members = this.#projects.get(project);
    return members ? [...members.values()].sort((a, b) => a.user_id < b.user_id ? -1 : 1) : [];
  }
};

// src/waiters.ts
var JoinWaiters = class {
  #waiters = /* @__PURE__ */ new Map();
  /** A promise of the room's next join (never an unhandled rejection if ignored). */
  wait(room) {
    const joined = new Promise((resolve, reject) => {
      const list = this.#waiters.get(room) ?? [];
      list.push({ resolve, reject });
      this.#waiters.set(room, list);
    });
    joined.catch(() => void 0);
    return joined;
  }
  resolve(room, join) {
    const list = this.#waiters.get(room);
    this.#waiters.delete(room);
    for (const waiter of list ?? []) waiter.resolve(join);
  }
  reject(room, error) {
    const list = this.#waiters.get(room);
    this.#waiters.delete(room);
    for (const waiter of list ?? []) waiter.reject(error);
  }
  /** Reject every pending join with `error`. */
  rejectAll(error) {
    for (const room of [...this.#waiters.keys()]) this.reject(room, error);
  }
};
var ConnectedWaiters = class {
  #wakers = /* @__PURE__ */ new Set();
  /** Resolves at the next `wake()`, or rejects with `ConnectionClosedError` after `timeoutMs`. */
  wait(timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wakers.delete(wake);
        reject(new ConnectionClosedError(`not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      this.#wakers.add(wake);
    });
  }
  wake() {
    for (const wake of [...this.#wakers]) wake();
  }
};
function within(promise, timeoutMs, message) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(message)), timeoutMs);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error) => (clearTimeout(timer), reject(error))
    );
  });
}

// src/requests.ts
async function emitOn(current, connected, name, payload, timeoutMs) {
  const started = Date.now();
  await (current()?.ready ? Promise.resolve() : connected.wait(timeoutMs));
  const transport = current()?.transport;
  if (!transport?.emit) {
    throw new UnsupportedError(
      `${name} is a Socket.IO event: the native WebSocket protocol has no client events; use transport: "socketio"`
    );
  }
  return transport.emit(name, payload, Math.max(1, timeoutMs - (Date.now() - started)));
}
var PresenceStates = class {
  // project → `set` calls waiting for its join
  constructor(host) {
    this.host = host;
  }
  host;
  #wanted = /* @__PURE__ */ new Map();
  #waiting = /* @__PURE__ */ new Map();
  /**
   * Set (null: clear) the state in `project` and keep it for later connections. Waits for the
   * room's join first, within `timeoutMs`; resolves with the state the bridge set. Rejects with
   * `RequestError` when refused (`not_joined`, `too_large`, `rate_limited`: the state is then
   * not kept), `TimeoutError` or `ConnectionClosedError` (kept: set once joined again).
   */
  async set(project, state, timeoutMs) {
    const room = `project:${project}`;
    if (!this.host.subscribed(room)) {
      throw new RequestError("not_joined", `subscribe to ${room} before setting a state in it`, "presence_update");
    }
    if (state !== null && (typeof state !== "object" || Array.isArray(state))) {
      throw new TypeError("a presence state is a plain JSON object, or null to clear it");
    }
    if (state === null) this.#wanted.delete(project);
    else this.#wanted.set(project, state);
    const started = Date.now();
    if (!this.host.joinedOn(room)) {
      this.#waiting.set(project, (this.#waiting.get(project) ?? 0) + 1);
      try {
        await within(this.host.nextJoin(room), timeoutMs, `${room} not joined within ${timeoutMs} ms`);
      } finally {
        const left = (this.#waiting.get(project) ?? 1) - 1;
        if (left > 0) this.#waiting.set(project, left);
        else this.#waiting.delete(project);
      }
    }
    const transport = this.host.joinedOn(room);
    if (!transport?.setPresence) throw new UnsupportedError("this transport cannot set a presence state");
    try {
      return await transport.setPresence(project, state, Math.max(1, timeoutMs - (Date.now() - started)));
    } catch (error) {
      this.#refused(project, state, error);
      throw error;
    }
  }
  /** A connection joined `room`: set the state wanted there again (unless a waiting `set` is
   * about to); a refusal is reported while `current()` says the connection is still in use. */
  rejoined(transport, room, current) {
    const project = room.startsWith("project:") ? room.slice("project:".length) : null;
    const state = project === null ? void 0 : this.#wanted.get(project);
    if (project === null || state === void 0 || this.#waiting.has(project)) return;
    transport.setPresence?.(project, state, 1e4).catch((error) => {
      this.#refused(project, state, error);
      if (current()) this.host.report(error);
    });
  }
  /** The application left `room`: its state is not set again. */
  forget(room) {
    if (room.startsWith("project:")) this.#wanted.delete(room.slice("project:".length));
  }
  /** A refused state (too large, rate limited, ...) is not set again after a reconnect. */
  #refused(project, state, error) {
    if (error instanceof RequestError && state !== null && this.#wanted.get(project) === state) {
      this.#wanted.delete(project);
    }
  }
};

// src/resume.ts
var ResumeBook = class {
  constructor(store, report) {
    this.store = store;
    this.report = report;
  }
  store;
  report;
  #state = { epoch: null, offsets: {} };
  #loaded = null;
  /** A copy of the state. */
  get state() {
    return cloneState(this.#state);
  }
  /** Load the stored state, once (later calls wait for the first). */
  load() {
    this.#loaded ??= this.#load();
    return this.#loaded;
  }
  async #load() {
    try {
      const stored = await this.store.load();
      if (stored) this.#state = cloneState(stored);
    } catch (error) {
      this.report(error);
    }
  }
  /** The offset of the last event processed in `room`, if any. */
  offset(room) {
    return this.#state.offsets[room];
  }
  /** What a join of `room` carries: the stored offset and the epoch it belongs to, or nulls. */
  resumePoint(room) {
    const since = this.#state.offsets[room] ?? null;
    const epoch = since === null ? null : this.#state.epochs?.[room] ?? this.#state.epoch;
    return { since, epoch };
  }
  /** Forget the room's offset (its next join is fresh) and save. */
  forget(room) {
    delete this.#state.offsets[room];
    if (this.#state.epochs) delete this.#state.epochs[room];
    this.save();
  }
  /** The bridge named the log's epoch in a reply about `room`. */
  noteEpoch(epoch, room) {
    const resume = this.#state;
    if (resume.epoch === epoch) return;
    if (resume.epoch !== null) {
      for (const other of Object.keys(resume.offsets)) {
        if (other !== room && !resume.epochs?.[other]) (resume.epochs ??= {})[other] = resume.epoch;
      }
    }
    resume.epoch = epoch;
    if (resume.epochs) {
      for (const [other, old] of Object.entries(resume.epochs)) if (old === epoch) delete resume.epochs[other];
    }
  }
  /** The room is complete up to `offset` (in the current epoch). */
  setOffset(room, offset) {
    this.#state.offsets[room] = offset;
    if (this.#state.epochs?.[room] !== void 0) {
      delete this.#state.epochs[room];
      if (!Object.keys(this.#state.epochs).length) delete this.#state.epochs;
    }
  }
  /** Hand a copy to the store; a failure is reported, never thrown. */
  save() {
    try {
      const pending = this.store.save(cloneState(this.#state));
      if (pending && typeof pending.catch === "function") {
        pending.catch((error) => this.report(error));
      }
    } catch (error) {
      this.report(error);
    }
  }
};
function cloneState(state) {
  const copy2 = { epoch: state.epoch, offsets: { ...state.offsets } };
  if (state.epochs && Object.keys(state.epochs).length) copy2.epochs = { ...state.epochs };
  return copy2;
}

// src/store.ts
function copy(state) {
  const result = { epoch: state.epoch, offsets: { ...state.offsets } };
  if (state.epochs && Object.keys(state.epochs).length) result.epochs = { ...state.epochs };
  return result;
}
function parseResumeState(value) {
  if (!value || typeof value !== "object") return null;
  const raw = value;
  if (raw.epoch !== null && typeof raw.epoch !== "string") return null;
  if (!raw.offsets || typeof raw.offsets !== "object") return null;
  const offsets = {};
  for (const [room, offset] of Object.entries(raw.offsets)) {
    if (Number.isInteger(offset) && offset >= -1) offsets[room] = offset;
  }
  const state = { epoch: raw.epoch, offsets };
  if (raw.epochs && typeof raw.epochs === "object") {
    const epochs = {};
    for (const [room, epoch] of Object.entries(raw.epochs)) {
      if (typeof epoch === "string" && room in offsets) epochs[room] = epoch;
    }
    if (Object.keys(epochs).length) state.epochs = epochs;
  }
  return state;
}
function memoryStore(initial = null) {
  let state = initial ? copy(initial) : null;
  return {
    get state() {
      return state ? copy(state) : null;
    },
    load: () => state ? copy(state) : null,
    save: (next) => {
      state = copy(next);
    }
  };
}
function localStorageStore(key, storage) {
  const target = () => {
    const found = storage ?? globalThis.localStorage;
    if (!found) throw new Error("localStorage is not available here; pass a store");
    return found;
  };
  return {
    load() {
      const text = target().getItem(key);
      if (text === null) return null;
      try {
        return parseResumeState(JSON.parse(text));
      } catch {
        return null;
      }
    },
    save(state) {
      target().setItem(key, JSON.stringify(copy(state)));
    }
  };
}
function defaultStore(url) {
  let available = false;
  try {
    available = typeof globalThis.localStorage === "object" && globalThis.localStorage !== null;
  } catch {
    available = false;
  }
  return available ? localStorageStore(`eventbridge:${url}`) : memoryStore();
}

// src/listeners.ts
var Listeners = class {
  constructor(report) {
    this.report = report;
  }
  report;
  #set = /* @__PURE__ */ new Set();
  add(listener) {
    this.#set.add(listener);
    return () => this.#set.delete(listener);
  }
  call(...args) {
    for (const listener of [...this.#set]) {
      try {
        listener(...args);
      } catch (error) {
        this.report(error);
      }
    }
  }
};
var EventHandlers = class {
  constructor(report) {
    this.report = report;
  }
  report;
  #typed = /* @__PURE__ */ new Map();
  #any = /* @__PURE__ */ new Set();
  on(type, handler) {
    let set = this.#typed.get(type);
    if (!set) this.#typed.set(type, set = /* @__PURE__ */ new Set());
    const entry = handler;
    set.add(entry);
    return () => set.delete(entry);
  }
  onEvent(handler) {
    this.#any.add(handler);
    return () => this.#any.delete(handler);
  }
  /** Call the handlers of the event's type, then those of every event. */
  deliver(event, meta) {
    for (const handler of [...this.#typed.get(event.type) ?? []]) {
      try {
        handler(event, meta);
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
};
var ClientListeners = class {
  status;
  joined;
  resync;
  presence;
  authenticated;
  authError;
  error;
  constructor(options, report) {
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
};

// src/surface.ts
var ClientSurface = class {
  handlers;
  listeners;
  constructor(options) {
    const report = (error) => this.report(error);
    this.handlers = new EventHandlers(report);
    this.listeners = new ClientListeners(options, report);
  }
  /** Handle every event of one type; returns a function that removes the handler. */
  on(type, handler) {
    return this.handlers.on(type, handler);
  }
  /** Handle every event, whatever its type (newer types too, typed loosely as `BridgeEvent`). */
  onEvent(handler) {
    return this.handlers.onEvent(handler);
  }
  onStatus(listener) {
    return this.listeners.status.add(listener);
  }
  onJoined(listener) {
    return this.listeners.joined.add(listener);
  }
  onResync(listener) {
    return this.listeners.resync.add(listener);
  }
  /** Who is in a joined project room, over every replica (docs/clients.md, "Presence"): called
   * with all its members when its list arrives (after each join) and at each change. */
  onPresence(listener) {
    return this.listeners.presence.add(listener);
  }
  /** After the bridge accepted the connection (with the WebSocket `authenticated` grant, or
   * null), before the rooms are joined: the listener may still subscribe or unsubscribe. */
  onAuthenticated(listener) {
    return this.listeners.authenticated.add(listener);
  }
  onAuthError(listener) {
    return this.listeners.authError.add(listener);
  }
  onError(listener) {
    return this.listeners.error.add(listener);
  }
};

// src/transports/socketio.ts
var AUTH_CODES = /* @__PURE__ */ new Set(["auth_required", "invalid_token", "token_expired"]);
async function findIo(given) {
  if (given) return given;
  const global = globalThis.io;
  if (typeof global === "function") return global;
  const specifier = "socket.io-client";
  const module = await import(
    /* @vite-ignore */
    specifier
  );
  const io = module.io ?? module.default;
  if (!io) throw new Error("socket.io-client has no `io` export");
  return io;
}
function socketioTransport(options = {}) {
  let io = null;
  return (url, events) => {
    io ??= findIo(options.io);
    return new SocketIOTransport(url, events, options, io);
  };
}
function isErrorAck(ack) {
  return !!ack && typeof ack === "object" && ack.ok === false;
}
var SocketIOTransport = class {
  constructor(url, events, options, io) {
    this.url = url;
    this.events = events;
    this.options = options;
    this.io = io;
  }
  url;
  events;
  options;
  io;
  #socket = null;
  #done = false;
  #ready = false;
  #disconnectReason = null;
  #failures = /* @__PURE__ */ new Set();
  open(token) {
    this.io.then(
      (io) => this.#open(io, token),
      (error) => this.#end({ kind: "retry", code: null, message: `socket.io-client unavailable: ${error}` })
    );
  }
  #open(io, token) {
    if (this.#done) return;
    const socket = io(this.url, {
      ...this.options.options,
      ...this.options.transports ? { transports: this.options.transports } : {},
      auth: token ? { token } : {},
      reconnection: false,
      forceNew: true,
      autoConnect: false
    });
    this.#socket = socket;
    socket.on("connect", () => {
      if (this.#done) return;
      this.#ready = true;
      this.events.ready(null);
    });
    socket.on("connect_error", (error) => {
      const code = error.data?.code;
      if (code && AUTH_CODES.has(code)) {
        this.#end({ kind: "auth", code, message: error.message });
      } else {
        this.#end({ kind: "retry", code: null, message: error.message });
      }
    });
    socket.on("bridge-disconnect", (notice) => {
      this.#disconnectReason = notice?.reason ?? null;
    });
    socket.on("disconnect", (why) => {
      if (this.#disconnectReason === "token_expired") {
        this.#end({ kind: "token_expired", message: "the token has expired" });
      } else {
        this.#end({ kind: "retry", code: this.#disconnectReason ?? why, message: why });
      }
    });
    socket.on("resync-required", (notice) => {
      if (!this.#done) this.events.resync(notice);
    });
    for (const name of ["presence", "presence-joined", "presence-updated", "presence-left"]) {
      socket.on(name, (payload) => {
        const kind = name.replace("-", "_");
        if (!this.#done) this.events.presence?.({ kind, ...payload });
      });
    }
    socket.onAny((_name, payload) => {
      if (this.#done || !payload || typeof payload !== "object") return;
      if ("id" in payload && "offset" in payload) this.events.event(payload);
    });
    socket.connect();
  }
  join(room, since, epoch) {
    const resume = since === null ? {} : { since, ...epoch ? { epoch } : {} };
    const [name, payload] = room === ACTIVITY_FEED ? ["join-activity-feed", resume] : ["join-project", { project_id: room.slice("project:".length), ...resume }];
    this.#request(name, payload, (ack) => {
      if (isErrorAck(ack)) {
        this.events.joinRefused(room, ack.error.code, ack.error.message);
      } else {
        const reply = ack;
        this.events.joined({ room: reply.room, epoch: reply.epoch, offset: reply.offset });
      }
    });
  }
  leave(room) {
    const [name, payload] = room === ACTIVITY_FEED ? ["leave-activity-feed", void 0] : ["leave-project", { project_id: room.slice("project:".length) }];
    this.#request(name, payload, (ack) => {
      if (isErrorAck(ack)) this.events.requestError(ack.error.code, ack.error.message, name);
    });
  }
  emit(name, payload, timeoutMs) {
    return this.#ask(name, payload, timeoutMs);
  }
  async setPresence(project, state, timeoutMs) {
    const ack = await this.#ask("presence-update", { project_id: project, state }, timeoutMs);
    return ack.state ?? null;
  }
  /** Emit a request and resolve with its successful acknowledgement. */
  #ask(name, payload, timeoutMs) {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      if (this.#done || !socket || !this.#ready) {
        reject(new ConnectionClosedError(`${name} not sent: not connected`));
        return;
      }
      const fail = (error) => {
        this.#failures.delete(fail);
        reject(error);
      };
      this.#failures.add(fail);
      socket.timeout(timeoutMs).emit(name, payload, (error, ack) => {
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
  close() {
    if (this.#done) return;
    this.#done = true;
    this.#failAll();
    this.#socket?.disconnect();
  }
  #request(name, payload, answered) {
    const socket = this.#socket;
    if (this.#done || !socket) return;
    const args = payload === void 0 ? [] : [payload];
    const timeoutMs = this.options.ackTimeoutMs ?? 1e4;
    socket.timeout(timeoutMs).emit(name, ...args, (error, ack) => {
      if (this.#done) return;
      if (error) {
        this.#end({ kind: "retry", code: null, message: `${name} not acknowledged` });
        return;
      }
      answered(ack);
    });
  }
  #failAll() {
    const error = new ConnectionClosedError("the connection closed before the acknowledgement");
    for (const fail of [...this.#failures]) fail(error);
  }
  #end(reason) {
    if (this.#done) return;
    this.#done = true;
    this.#failAll();
    this.#socket?.disconnect();
    this.events.closed(reason);
  }
};

// src/transports/websocket.ts
var AUTH_CLOSE_CODE = 4401;
var PING_EVERY_MS = 2e4;
function websocketUrl(url, path = "/ws") {
  const target = new URL(url);
  if (target.protocol === "http:") target.protocol = "ws:";
  else if (target.protocol === "https:") target.protocol = "wss:";
  target.pathname = target.pathname.replace(/\/+$/, "") + path;
  target.search = "";
  target.hash = "";
  return target.href;
}
function websocketTransport(options = {}) {
  return (url, events) => new WebSocketTransport(url, events, options);
}
var WebSocketTransport = class {
  constructor(url, events, options) {
    this.url = url;
    this.events = events;
    this.options = options;
  }
  url;
  events;
  options;
  #socket = null;
  #done = false;
  #ready = false;
  #pinger = null;
  // Requests awaiting their reply: the bridge answers a connection's requests one by one, in
  // order (replies are queued with the events), so the oldest pending request owns each reply.
  #pending = [];
  #authRefusal = null;
  open(token) {
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    if (!Socket) {
      throw new Error(
        "no WebSocket class: use Node 22+, Node 20 with --experimental-websocket, or pass one"
      );
    }
    const socket = new Socket(websocketUrl(this.url, this.options.path));
    this.#socket = socket;
    socket.addEventListener("open", () => {
      if (this.#done) return;
      if (token) {
        this.#send({ type: "auth", token });
      } else {
        this.#becomeReady(null);
      }
      const every = this.options.pingIntervalMs ?? PING_EVERY_MS;
      this.#pinger = setInterval(() => this.#send({ type: "ping" }), every);
    });
    socket.addEventListener("message", (message) => {
      if (this.#done || typeof message.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame && typeof frame === "object") this.#handle(frame);
    });
    socket.addEventListener(
      "close",
      (close) => this.#end(close.code ?? null, close.reason ?? "")
    );
    socket.addEventListener("error", () => this.#end(null, "connection failed"));
  }
  join(room, since, epoch) {
    const target = room === ACTIVITY_FEED ? { room } : { project_id: room.slice("project:".length) };
    const resume = since === null ? {} : { since, ...epoch ? { epoch } : {} };
    this.#send({ type: "subscribe", ...target, ...resume }, room);
  }
  leave(room) {
    const target = room === ACTIVITY_FEED ? { room } : { project_id: room.slice("project:".length) };
    this.#send({ type: "unsubscribe", ...target }, room);
  }
  setPresence(project, state, timeoutMs) {
    return new Promise((resolve, reject) => {
      const socket = this.#socket;
      if (this.#done || !this.#ready || !socket || socket.readyState !== 1) {
        reject(new ConnectionClosedError("presence_update not sent: not connected"));
        return;
      }
      const request = { type: "presence_update" };
      const timer = setTimeout(() => {
        request.answer = void 0;
        reject(new TimeoutError(`presence_update not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      request.answer = {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error))
      };
      this.#pending.push(request);
      socket.send(JSON.stringify({ type: "presence_update", project_id: project, state }));
    });
  }
  close() {
    if (this.#done) return;
    this.#done = true;
    this.#stopPinging();
    this.#failPending();
    try {
      this.#socket?.close(1e3, "client closed");
    } catch {
    }
  }
  /** Reject the presence requests still waiting: their connection is gone. */
  #failPending() {
    const error = new ConnectionClosedError("the connection closed before presence_update was answered");
    for (const request of this.#pending.splice(0)) request.answer?.reject(error);
  }
  #send(message, room) {
    const socket = this.#socket;
    if (this.#done || !socket || socket.readyState !== 1) return;
    if (message.type !== "auth") this.#pending.push({ type: message.type, room });
    socket.send(JSON.stringify(message));
  }
  #becomeReady(grant) {
    if (this.#ready) return;
    this.#ready = true;
    if (grant === null) {
      this.events.ready(null);
    } else {
      const { type: _type, ...rest } = grant;
      this.events.ready(rest);
    }
  }
  #handle(frame) {
    if ("id" in frame && "offset" in frame) {
      this.events.event(frame);
      return;
    }
    switch (frame.type) {
      case "authenticated":
        this.#becomeReady(frame);
        return;
      case "resync_required": {
        const { type: _type, ...notice } = frame;
        this.events.resync(notice);
        return;
      }
      case "subscribed": {
        const reply = frame;
        this.#pending.shift();
        this.events.joined({ room: reply.room, epoch: reply.epoch, offset: reply.offset });
        return;
      }
      case "presence":
      case "presence_joined":
      case "presence_updated":
      case "presence_left": {
        const { type, ...rest } = frame;
        this.events.presence?.({ kind: type, ...rest });
        return;
      }
      case "pong":
      case "unsubscribed":
        this.#pending.shift();
        return;
      case "presence_state":
        this.#pending.shift()?.answer?.resolve(frame.state ?? null);
        return;
      case "request_error": {
        const error = frame;
        if (error.request === "auth") {
          this.#authRefusal = { code: error.code, message: error.message };
          return;
        }
        const request = this.#pending.shift();
        if (request?.type === "presence_update") {
          const refused = new RequestError(error.code, error.message, "presence_update");
          if (request.answer) request.answer.reject(refused);
          else this.events.requestError(error.code, error.message, "presence_update");
        } else if (request?.type === "subscribe" && request.room) {
          this.events.joinRefused(request.room, error.code, error.message);
        } else {
          this.events.requestError(error.code, error.message, error.request ?? request?.type ?? null);
        }
        return;
      }
      default:
        return;
    }
  }
  #stopPinging() {
    if (this.#pinger !== null) clearInterval(this.#pinger);
    this.#pinger = null;
  }
  #end(code, text) {
    if (this.#done) return;
    this.#done = true;
    this.#stopPinging();
    this.#failPending();
    let reason;
    if (code === AUTH_CLOSE_CODE) {
      const [head = "auth_required", ...rest] = text.split(": ");
      const refusal = this.#authRefusal ?? { code: head, message: rest.join(": ") };
      reason = this.#ready && refusal.code === "token_expired" ? { kind: "token_expired", message: refusal.message } : { kind: "auth", code: refusal.code, message: refusal.message };
    } else if (this.#authRefusal) {
      reason = { kind: "auth", ...this.#authRefusal };
    } else {
      reason = { kind: "retry", code, message: text };
    }
    try {
      this.#socket?.close();
    } catch {
    }
    this.events.closed(reason);
  }
};

// src/transports/choose.ts
function transportFactory(options) {
  const transport = options.transport ?? "websocket";
  if (typeof transport === "function") return transport;
  return transport === "socketio" ? socketioTransport(options.socketio) : websocketTransport(options.websocket);
}

// src/client.ts
var EventBridgeClient = class extends ClientSurface {
  #url;
  #options;
  #transportFactory;
  #resume;
  #rooms = [];
  // wanted, in join order
  #conn = null;
  #generation = 0;
  #running = false;
  #retry;
  #status = "offline";
  #tokenReason = "connect";
  #refreshed = false;
  // a fresh token was asked for after an expiry, and not yet accepted
  #waiters = new JoinWaiters();
  #connectedWaiters = new ConnectedWaiters();
  #presence = new PresenceBook();
  #presenceStates = new PresenceStates({
    subscribed: (room) => this.#rooms.includes(room),
    joinedOn: (room) => this.#conn?.rooms.get(room)?.join ? this.#conn.transport : null,
    nextJoin: (room) => this.#waiters.wait(room),
    report: (error) => this.report(error)
  });
  constructor(options) {
    super(options);
    this.#options = options;
    this.#url = options.url;
    this.#retry = new RetryTimer(options.backoff);
    this.#transportFactory = transportFactory(options);
    this.#resume = new ResumeBook(options.store ?? defaultStore(options.url), (error) => this.report(error));
  }
  // ---- what the application sees ---------------------------------------------------------------
  /** The current connection status. */
  get status() {
    return this.#status;
  }
  /** The rooms the client keeps joined, in join order. */
  get rooms() {
    return [...this.#rooms];
  }
  /** The resume state: epoch and per-room offsets (a copy). */
  get resumeState() {
    return this.#resume.state;
  }
  /** The current connection's grant (WebSocket with a token), or null. */
  get grant() {
    return this.#conn?.grant ?? null;
  }
  /** The members of a project as last heard (empty before its room's list arrived). */
  presence(project) {
    return this.#presence.members(project);
  }
  /**
   * Set (with null clear) this client's presence state in a subscribed project, kept and set
   * again on every reconnect (docs/client-library.md, "Presence"); resolves with the state set.
   */
  setPresence(project, state, { timeoutMs = 1e4 } = {}) {
    return this.#presenceStates.set(project, state, timeoutMs);
  }
  // ---- rooms ------------------------------------------------------------------------------------
  /**
   * Keep `target` joined (now and after every reconnect), resuming after its stored offset.
   * Resolves with the join once the bridge answered; rejects with a `RequestError` when the
   * bridge refuses it (the room is then dropped) or `ConnectionClosedError` after `close()`.
   */
  subscribe(target) {
    const room = roomName(target);
    const joined = this.#waiters.wait(room);
    const current = this.#conn?.rooms.get(room);
    if (current?.join) {
      this.#waiters.resolve(room, current.join);
      return joined;
    }
    if (!this.#rooms.includes(room)) {
      this.#rooms = joinOrder([...this.#rooms, room]);
      const conn = this.#conn;
      if (conn?.ready) {
        if (room !== ACTIVITY_FEED && conn.rooms.has(ACTIVITY_FEED)) {
          this.#restart("reconnect");
        } else {
          this.#join(conn, room);
        }
      }
    }
    return joined;
  }
  /** Stop following `target`. Its stored offset is kept: subscribing again resumes it. */
  unsubscribe(target) {
    const room = roomName(target);
    this.#rooms = this.#rooms.filter((item) => item !== room);
    this.#presenceStates.forget(room);
    this.#waiters.reject(room, new ConnectionClosedError(`unsubscribed from ${room}`));
    this.#conn?.leave(room);
    this.#updateStatus();
  }
  /** Forget the stored offset of `target` (its next join is fresh: state first, then live). */
  forget(target) {
    this.#resume.forget(roomName(target));
  }
  // ---- the connection ---------------------------------------------------------------------------
  /** Start (or restart, after `close()` or a refused token) connecting; asks for a new token. */
  connect() {
    this.#running = true;
    this.#retry.attempt = 0;
    this.#refreshed = false;
    this.#restart(this.#conn ? "reconnect" : "connect");
    return this;
  }
  /** Close the connection and stop reconnecting. Stored offsets stay. */
  close() {
    this.#running = false;
    this.#generation += 1;
    this.#retry.clear();
    this.#drop();
    this.#waiters.rejectAll(new ConnectionClosedError("the client was closed"));
    this.#updateStatus();
  }
  /**
   * Send a client-originated event (`new-activity`, `step-updated`, `step-completed`) and wait
   * for its acknowledgement: `{ok: true, id}` with the id of the event the bridge published.
   * Socket.IO only: the native WebSocket protocol has no client events (`UnsupportedError`).
   * Waits for a connection first, within `timeoutMs`. Rejects with `RequestError` when refused,
   * `TimeoutError` without an acknowledgement in time (send it again: it may or may not have
   * been published).
   */
  emit(name, payload, { timeoutMs = 1e4 } = {}) {
    return emitOn(() => this.#conn, this.#connectedWaiters, name, payload, timeoutMs);
  }
  // ---- internals: connecting ------------------------------------------------------------------
  #restart(reason) {
    this.#generation += 1;
    this.#retry.clear();
    this.#drop();
    this.#tokenReason = reason;
    void this.#open(this.#generation);
  }
  async #open(generation) {
    this.#setStatus("connecting");
    await this.#resume.load();
    let token = null;
    if (this.#options.token) {
      try {
        token = await this.#options.token({ reason: this.#tokenReason }) ?? null;
      } catch (error) {
        if (generation !== this.#generation) return;
        if (error instanceof AuthError) {
          this.#refused(error);
        } else {
          this.report(error);
          this.#scheduleRetry();
        }
        return;
      }
    }
    if (generation !== this.#generation || !this.#running) return;
    let conn = null;
    const guard = (fn) => (...args) => {
      if (conn !== null && this.#conn === conn && generation === this.#generation) fn(conn, ...args);
    };
    const transport = this.#transportFactory(this.#url, {
      ready: guard((c, grant) => this.#ready(c, grant)),
      joined: guard((c, reply) => this.#joined(c, reply)),
      joinRefused: guard((c, room, code, message) => this.#joinRefused(c, room, code, message)),
      event: guard((c, event) => this.#event(c, event)),
      resync: guard((c, notice) => this.#resynced(c, notice)),
      presence: guard((_c, message) => this.#presenceChanged(message)),
      requestError: guard(
        (_c, code, message, request) => this.report(new RequestError(code, message, request))
      ),
      closed: guard((_c, reason) => this.#closed(reason))
    });
    conn = new Connection(transport);
    this.#conn = conn;
    try {
      transport.open(token);
    } catch (error) {
      this.#conn = null;
      this.report(error);
      this.#scheduleRetry();
    }
  }
  #ready(conn, grant) {
    conn.ready = true;
    conn.grant = grant;
    this.#refreshed = false;
    this.#tokenReason = "reconnect";
    this.listeners.authenticated.call(grant);
    if (this.#conn !== conn) return;
    for (const room of this.#rooms) this.#join(conn, room);
    if (this.#rooms.length === 0) this.#retry.attempt = 0;
    this.#connectedWaiters.wake();
    this.#updateStatus();
  }
  #join(conn, room) {
    const { since, epoch } = this.#resume.resumePoint(room);
    conn.join(room, since, epoch);
    this.#updateStatus();
  }
  #closed(reason) {
    this.#drop();
    if (!this.#running) return;
    const next = afterClose(reason, this.#refreshed);
    if (next === "refresh") {
      this.#refreshed = true;
      this.#restart("token_expired");
    } else if (next === "retry") {
      this.#scheduleRetry();
    } else {
      this.#refused(next);
    }
  }
  #refused(error) {
    this.#running = false;
    this.#retry.clear();
    this.#drop();
    this.listeners.authError.call(error);
    this.#updateStatus();
  }
  #scheduleRetry() {
    this.#retry.clear();
    if (!this.#running) return;
    this.#retry.schedule(() => this.#restart("reconnect"));
    this.#updateStatus();
  }
  /** Forget the current connection (closing it). */
  #drop() {
    const conn = this.#conn;
    this.#conn = null;
    if (!conn) return;
    conn.close();
  }
  // ---- internals: rooms, events, offsets ------------------------------------------------------
  #joined(conn, reply) {
    const state = conn.rooms.get(reply.room);
    if (!state) return;
    const { join, phase } = applyJoin(state, reply, this.#resume);
    this.#enter(state, phase);
    this.#resume.save();
    this.listeners.joined.call(join);
    this.#waiters.resolve(reply.room, join);
    this.#presenceStates.rejoined(conn.transport, reply.room, () => this.#conn === conn);
    if (conn.allJoined) this.#retry.attempt = 0;
    this.#updateStatus();
  }
  #presenceChanged(message) {
    const project = this.#presence.apply(message);
    this.listeners.presence.call(project, this.#presence.members(project));
  }
  #joinRefused(conn, room, code, message) {
    const error = new RequestError(code, message, "subscribe");
    conn.rooms.delete(room);
    if (code === "rate_limited") {
      setTimeout(() => {
        if (this.#conn === conn && this.#rooms.includes(room) && !conn.rooms.has(room)) this.#join(conn, room);
      }, 1e3);
    } else {
      this.#rooms = this.#rooms.filter((item) => item !== room);
      this.#waiters.reject(room, error);
    }
    this.report(error);
    this.#updateStatus();
  }
  #resynced(conn, notice) {
    const state = conn.rooms.get(notice.room);
    if (!state) return;
    const info = applyResync(state, notice, this.#resume);
    this.#resume.save();
    this.listeners.resync.call(info);
    this.#enter(state, "resyncing");
    this.#updateStatus();
  }
  #event(conn, event) {
    const room = countingRoom(event, new Set(conn.rooms.keys()));
    const state = room === null ? void 0 : conn.rooms.get(room);
    if (room === null || !state || typeof event.offset !== "number") return;
    const snapshot = state.snapshotUpTo !== void 0 && event.offset <= state.snapshotUpTo;
    const last = this.#resume.offset(room);
    if (!snapshot && last !== void 0 && event.offset <= last) {
      return;
    }
    this.handlers.deliver(event, { room, snapshot });
    if (this.#conn !== conn) return;
    if (!snapshot) {
      this.#resume.setOffset(room, event.offset);
      this.#resume.save();
    }
    this.#progress(state, event.offset);
  }
  #progress(state, offset) {
    progress(state, offset, this.#options.settleMs ?? 1e3, () => this.#updateStatus());
  }
  #enter(state, phase) {
    enterPhase(state, phase, this.#options.settleMs ?? 1e3, () => this.#updateStatus());
  }
  // ---- internals: status and errors -----------------------------------------------------------
  #updateStatus() {
    const conn = this.#conn;
    let status;
    if (!conn) {
      status = this.#running && !this.#retry.pending ? "connecting" : "offline";
    } else {
      status = conn.status;
    }
    this.#setStatus(status);
  }
  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.listeners.status.call(status, { attempt: this.#retry.attempt, retryAt: this.#retry.at });
  }
  report(error) {
    const value = error instanceof Error ? error : new EventBridgeError(`unexpected failure: ${String(error)}`);
    this.listeners.error.call(value);
  }
};
function createClient(options) {
  return new EventBridgeClient(options);
}
function connect(options) {
  return new EventBridgeClient(options).connect();
}
export {
  ACTIVITY_FEED,
  AUTH_CLOSE_CODE,
  AuthError,
  ConnectionClosedError,
  DEFAULT_BACKOFF,
  EVENT_TYPES,
  EventBridgeClient,
  EventBridgeError,
  RequestError,
  TimeoutError,
  UnsupportedError,
  backoffDelay,
  connect,
  countingRoom,
  createClient,
  defaultStore,
  joinOrder,
  localStorageStore,
  memoryStore,
  parseResumeState,
  projectRoom,
  roomName,
  socketioTransport,
  websocketTransport,
  websocketUrl
};
