// Promises the application awaits: a room's join (`subscribe`) and a ready connection (`emit`).

import { ConnectionClosedError, TimeoutError } from "./errors.js";
import type { JoinInfo } from "./options.js";

/** The pending `subscribe` promises, by room. */
export class JoinWaiters {
  #waiters = new Map<string, { resolve: (join: JoinInfo) => void; reject: (e: Error) => void }[]>();

  /** A promise of the room's next join (never an unhandled rejection if ignored). */
  wait(room: string): Promise<JoinInfo> {
    const joined = new Promise<JoinInfo>((resolve, reject) => {
      const list = this.#waiters.get(room) ?? [];
      list.push({ resolve, reject });
      this.#waiters.set(room, list);
    });
    joined.catch(() => undefined); // the application may ignore the promise
    return joined;
  }

  resolve(room: string, join: JoinInfo): void {
    const list = this.#waiters.get(room);
    this.#waiters.delete(room);
    for (const waiter of list ?? []) waiter.resolve(join);
  }

  reject(room: string, error: Error): void {
    const list = this.#waiters.get(room);
    this.#waiters.delete(room);
    for (const waiter of list ?? []) waiter.reject(error);
  }

  /** Reject every pending join with `error`. */
  rejectAll(error: Error): void {
    for (const room of [...this.#waiters.keys()]) this.reject(room, error);
  }
}

/** Those waiting for a ready connection. */
export class ConnectedWaiters {
  #wakers = new Set<() => void>();

  /** Resolves at the next `wake()`, or rejects with `ConnectionClosedError` after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wakers.delete(wake);
        reject(new ConnectionClosedError(`not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      const wake = (): void => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      this.#wakers.add(wake);
    });
  }

  wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}

/** `promise`, or a `TimeoutError` saying `message` if it has not settled within `timeoutMs`. */
export function within<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(message)), timeoutMs);
    promise.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}
