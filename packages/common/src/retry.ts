/** Capped exponential backoff with full jitter: attempt 1 waits up to `initialMs`, then doubles. */
export function backoffDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 30))
  return Math.max(initialMs / 2, Math.round(ceiling * random()))
}

/**
 * Exponential backoff whose every wait is longer than the one before until the cap: jitter takes
 * at most a quarter off, so attempt n+1 (at least 1.5x) always outlasts attempt n (at most 1x).
 */
export function growingDelay(
  attempt: number,
  initialMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling * (0.75 + 0.25 * random()))
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

export interface RetryOptions {
  initialMs: number
  maxMs: number
  /** Gives up after this many attempts (default: no limit). */
  attempts?: number
  /** Gives up when the next wait would end past this many ms from the first attempt (default: no limit). */
  withinMs?: number
  /** Whether an error is worth another attempt (default: unless it says `retriable: false`). */
  retryable?: (err: unknown) => boolean
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
}

/** Runs `operation` until it succeeds, waiting longer after each failure; rethrows the last error when it gives up. */
export async function retry<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  const started = Date.now()
  const retryable = options.retryable ?? ((err) => (err as { retriable?: unknown })?.retriable !== false)
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation()
    } catch (err) {
      const delay = growingDelay(attempt, options.initialMs, options.maxMs)
      const outOfAttempts = options.attempts !== undefined && attempt >= options.attempts
      const outOfTime = options.withinMs !== undefined && Date.now() + delay - started > options.withinMs
      if (outOfAttempts || outOfTime || !retryable(err)) throw err
      options.onRetry?.(err, attempt, delay)
      await sleep(delay)
    }
  }
}
