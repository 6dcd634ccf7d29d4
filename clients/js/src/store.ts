// Where the client keeps its resume point: the log's epoch and one offset per room.

/**
 * What survives a reconnect (and, in a durable store, a page reload): the epoch of the log and,
 * per room, the offset of the last event processed in that room (or the join's offset after a
 * fresh join or a resync: the point from which the room is complete).
 */
export interface ResumeState {
  /** The epoch the offsets belong to (null before the first join). */
  epoch: string | null;
  /** Room → offset, e.g. `{"project:p1": 1041, "activity-feed": 1038}`. */
  offsets: Record<string, number>;
  /**
   * Rooms whose offset belongs to an older epoch than `epoch` (the log was re-created while
   * another room was being resumed): they are resumed with that epoch, so the bridge answers
   * `epoch_mismatch` for them too instead of serving a wrong history. Usually absent.
   */
  epochs?: Record<string, string>;
}

/**
 * A place to keep the `ResumeState` of one client. `load` is called once, before the first
 * connection; `save` after every change (each processed event), right after the application's
 * handlers ran, in the same task: with a synchronous store (localStorage) a page reload cannot
 * fall between an event's processing and its offset. Either may return a promise.
 */
export interface ResumeStore {
  load(): ResumeState | null | Promise<ResumeState | null>;
  save(state: ResumeState): void | Promise<void>;
}

function copy(state: ResumeState): ResumeState {
  const result: ResumeState = { epoch: state.epoch, offsets: { ...state.offsets } };
  if (state.epochs && Object.keys(state.epochs).length) result.epochs = { ...state.epochs };
  return result;
}

/** A valid `ResumeState` from untrusted stored data, or null. */
export function parseResumeState(value: unknown): ResumeState | null {
  if (!value || typeof value !== "object") return null;
  const raw = value as { epoch?: unknown; offsets?: unknown; epochs?: unknown };
  if (raw.epoch !== null && typeof raw.epoch !== "string") return null;
  if (!raw.offsets || typeof raw.offsets !== "object") return null;
  const offsets: Record<string, number> = {};
  for (const [room, offset] of Object.entries(raw.offsets as Record<string, unknown>)) {
    if (Number.isInteger(offset) && (offset as number) >= -1) offsets[room] = offset as number;
  }
  const state: ResumeState = { epoch: raw.epoch, offsets };
  if (raw.epochs && typeof raw.epochs === "object") {
    const epochs: Record<string, string> = {};
    for (const [room, epoch] of Object.entries(raw.epochs as Record<string, unknown>)) {
      if (typeof epoch === "string" && room in offsets) epochs[room] = epoch;
    }
    if (Object.keys(epochs).length) state.epochs = epochs;
  }
  return state;
}

/** Keeps the state in memory only (the default in Node): a new process starts fresh. */
export function memoryStore(initial: ResumeState | null = null): ResumeStore & {
  readonly state: ResumeState | null;
} {
  let state = initial ? copy(initial) : null;
  return {
    get state() {
      return state ? copy(state) : null;
    },
    load: () => (state ? copy(state) : null),
    save: (next) => {
      state = copy(next);
    },
  };
}

/** The part of the Web Storage API a `localStorageStore` uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * Keeps the state as JSON under `key` in `localStorage` (the default in browsers), so a page
 * reload resumes where it stopped. Use one key per client: two clients sharing a key overwrite
 * each other's offsets.
 */
export function localStorageStore(key: string, storage?: StorageLike): ResumeStore {
  const target = (): StorageLike => {
    const found = storage ?? (globalThis as { localStorage?: StorageLike }).localStorage;
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
    },
  };
}

/** `localStorageStore("eventbridge:<url>")` where localStorage exists, else `memoryStore()`. */
export function defaultStore(url: string): ResumeStore {
  let available = false;
  try {
    available = typeof (globalThis as { localStorage?: unknown }).localStorage === "object" &&
      (globalThis as { localStorage?: unknown }).localStorage !== null;
  } catch {
    available = false; // access denied (sandboxed frames, disabled storage)
  }
  return available ? localStorageStore(`eventbridge:${url}`) : memoryStore();
}
