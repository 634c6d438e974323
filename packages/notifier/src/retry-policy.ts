import type { DisablePolicy, RetryPolicy } from './config.js'

/**
 * How long to wait after the `attempts`-th attempt failed, or null when that was the last one the
 * schedule allows (the delivery then fails for good). Jitter spreads the retries of many
 * deliveries that failed together (an endpoint back from an outage) instead of sending them in
 * one burst.
 */
export function retryDelay(attempts: number, policy: RetryPolicy, random = Math.random): number | null {
  const wait = policy.scheduleMs[attempts - 1]
  if (wait === undefined) return null
  return Math.max(0, Math.round(wait * (1 + policy.jitter * (2 * random() - 1))))
}

export interface FailureRun {
  /** Failed attempts in a row, this one included. */
  consecutiveFailures: number
  /** When the first of them happened. */
  failingSince: Date
  now: Date
}

/**
 * Why an endpoint that keeps failing is disabled, or null while it may go on. Either many failed
 * attempts in a row over a span long enough not to be one bad minute, or no success at all for a
 * long time (an endpoint that gets few alerts never reaches the count).
 */
export function disableReason(run: FailureRun, policy: DisablePolicy, lastError: string): string | null {
  const spanMs = run.now.getTime() - run.failingSince.getTime()
  if (run.consecutiveFailures >= policy.afterFailures && spanMs >= policy.minSpanMs) {
    return `${run.consecutiveFailures} failed attempts in a row over ${formatSpan(spanMs)}; last: ${lastError}`
  }
  if (spanMs >= policy.failingForMs) {
    return `no successful attempt for ${formatSpan(spanMs)} (${run.consecutiveFailures} failed); last: ${lastError}`
  }
  return null
}

function formatSpan(ms: number): string {
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}
