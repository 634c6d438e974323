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
