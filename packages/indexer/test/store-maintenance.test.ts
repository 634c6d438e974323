import type { MaintenanceResult, RetentionPolicy } from '@intellisite/detections-store'
import { pino } from 'pino'
import { expect, it, vi } from 'vitest'
import { createStoreMaintenance } from '../src/store-maintenance.js'

const POLICY: RetentionPolicy = { detectionsMs: 86_400_000, minuteBucketsMs: null, hourBucketsMs: null }

it('runs at start and on every interval, survives a failed pass, and stops after the pass under way', async () => {
  vi.useFakeTimers()
  try {
    const calls: RetentionPolicy[] = []
    let fail = true
    let release: () => void = () => {}
    const repository = {
      maintain: vi.fn(async (policy: RetentionPolicy): Promise<MaintenanceResult> => {
        calls.push(policy)
        if (fail) {
          fail = false
          throw new Error('store down')
        }
        await new Promise<void>((resolve) => {
          release = resolve
        })
        return { ran: true, dropped: ['detections_p20260101'] }
      }),
    }
    const maintenance = createStoreMaintenance({
      repository,
      policy: POLICY,
      intervalMs: 1_000,
      logger: pino({ level: 'silent' }),
    })
    maintenance.start()
    expect(calls).toEqual([POLICY])
    // The failed first pass does not stop the timer.
    await vi.advanceTimersByTimeAsync(1_000)
    expect(calls).toHaveLength(2)
    let stopped = false
    const stopping = maintenance.stop().then(() => {
      stopped = true
    })
    await vi.advanceTimersByTimeAsync(5_000)
    expect(stopped).toBe(false)
    release()
    await stopping
    expect(calls).toHaveLength(2)
  } finally {
    vi.useRealTimers()
  }
})
