// The kill storm, small: two indexer processes in one group, SIGKILLed at random moments and
// restarted, on the shared broker. The full one (100k detections, 10 kills) is
// `pnpm bench --only storm`.
import { expect, it } from 'vitest'
import { runStorm, stormTables } from '../../bench/storm.js'

it('a kill storm on two indexers loses no detection and duplicates no alert', {
  timeout: 150_000,
}, async () => {
  const result = await runStorm({
    count: 5_000,
    kills: 4,
    indexers: 2,
    partitions: 4,
    seed: Date.now() % 100_000,
  })
  console.info(stormTables(result))
  // Kills wait for a random share of the backlog, so most land mid-stream.
  expect(result.killsMidStream).toBeGreaterThanOrEqual(2)
  expect(result.stored).toBe(result.count)
  expect(result.distinctStored).toBe(result.count)
  expect(result.missing).toBe(0)
  expect(result.unexpected).toBe(0)
  expect(result.alertsRead).toBe(result.alertsExpected)
  expect(result.alertsDistinct).toBe(result.alertsExpected)
  expect(result.alertsUnexpected).toBe(0)
  expect(result.statsExact).toBe(true)
  expect(result.ok).toBe(true)
})
