import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { disableReason, retryDelay } from '../src/retry-policy.js'

describe('the retry schedule', () => {
  const { retry, disable } = loadConfig({})

  it('defaults to 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then gives up', () => {
    expect(retry.scheduleMs).toEqual([5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000])
    const exact = { ...retry, jitter: 0 }
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => retryDelay(n, exact))).toEqual([...retry.scheduleMs, null])
  })

  it('jitters each wait within its fraction', () => {
    expect(retryDelay(1, retry, () => 0)).toBe(4_000)
    expect(retryDelay(1, retry, () => 1)).toBe(6_000)
    expect(retryDelay(2, retry, () => 0.5)).toBe(300_000)
  })

  it('is configurable, and a malformed schedule is refused', () => {
    expect(loadConfig({ WEBHOOK_RETRY_SCHEDULE: '200ms, 1s,2m' }).retry.scheduleMs).toEqual([
      200, 1_000, 120_000,
    ])
    expect(() => loadConfig({ WEBHOOK_RETRY_SCHEDULE: '5s,soon' })).toThrow(/WEBHOOK_RETRY_SCHEDULE/)
    expect(() => loadConfig({ WEBHOOK_ENDPOINT_CONCURRENCY: '500' })).toThrow(/WEBHOOK_ENDPOINT_CONCURRENCY/)
  })

  it('disables after 20 failures in a row spanning 5 min, or after 24 h without success', () => {
    const since = new Date('2026-12-01T00:00:00Z')
    const at = (ms: number) => new Date(since.getTime() + ms)
    expect(
      disableReason({ consecutiveFailures: 50, failingSince: since, now: at(60_000) }, disable, 'HTTP 500'),
    ).toBeNull()
    expect(
      disableReason({ consecutiveFailures: 19, failingSince: since, now: at(600_000) }, disable, 'HTTP 500'),
    ).toBeNull()
    expect(
      disableReason({ consecutiveFailures: 20, failingSince: since, now: at(300_000) }, disable, 'HTTP 500'),
    ).toBe('20 failed attempts in a row over 5 min; last: HTTP 500')
    expect(
      disableReason(
        { consecutiveFailures: 3, failingSince: since, now: at(24 * 3_600_000) },
        disable,
        'timeout',
      ),
    ).toBe('no successful attempt for 24.0 h (3 failed); last: timeout')
  })
})
