// Reconnect delays: exponential backoff with full jitter.

/** How long to wait before reconnecting. */
export interface BackoffOptions {
  /** The cap of the first retry's delay, in ms (default 500). */
  minMs?: number;
  /** The largest cap, in ms (default 15000). */
  maxMs?: number;
}

export const DEFAULT_BACKOFF = { minMs: 500, maxMs: 15_000 } as const;

/**
 * The delay before retry number `attempt` (0 for the first): a uniformly random value between 0
 * and `min(maxMs, minMs * 2^attempt)` ("full jitter"), so that clients a restarting bridge dropped
 * together do not come back together.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const minMs = options.minMs ?? DEFAULT_BACKOFF.minMs;
  const maxMs = Math.max(minMs, options.maxMs ?? DEFAULT_BACKOFF.maxMs);
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/** One pending reconnect at a time, each delayed by `backoffDelay` of the attempts so far. */
export class RetryTimer {
  /** Reconnect attempts since the client was last live (reset by the client). */
  attempt = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #at: number | null = null;
  constructor(private readonly options: BackoffOptions | undefined) {}

  /** Whether a reconnect is waiting. */
  get pending(): boolean {
    return this.#timer !== null;
  }

  /** When the waiting reconnect starts (ms since the Unix epoch), or null. */
  get at(): number | null {
    return this.#at;
  }

  /** Call `retry` after the next delay, instead of any reconnect already waiting. */
  schedule(retry: () => void): void {
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

  clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#at = null;
  }
}
