// Folding closed buckets (PostgreSQL: minutes and hours into runs, days into shard 0): every
// answer stays the same, also when the fold races indexers that bump the very buckets it moves.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestStore, type TestStore } from '../../../test/support/detections-stores.js'
import {
  type DetectionDocument,
  KEEP_EVERYTHING,
  type TimeseriesBucket,
  toDetectionDocument,
} from '../src/index.js'
import { FOLD_GRACE_MS, foldBuckets } from '../src/postgres-fold.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
/** Noon UTC on a past day: its first minutes are closed for any "now" used below. */
const T0 = Date.UTC(2026, 10, 20, 12)
const MAKES = ['Toyota', 'MAZDA', 'Ford'] as const
const SHARDS = 3

function detection(topic: string, partition: number, offset: number, timestamp: number): DetectionDocument {
  return toDetectionDocument(
    { Year: 2010, Make: MAKES[offset % MAKES.length]!, Model: 'M', Category: 'SUV' },
    { topic, partition, offset, timestamp },
    offset % 2 === 0,
  )
}

describe('folding closed buckets on PostgreSQL', () => {
  let store: TestStore
  let reader: pg.Pool
  const topic = `fold-${randomUUID()}`
  const written: DetectionDocument[] = []
  /** Per partition, the next offset: every batch is new detections, none redelivered. */
  const offsets = Array.from({ length: SHARDS }, () => 0)

  /** A batch of one partition (shard), spread over the first ten minutes after T0. */
  async function write(partition: number, size: number) {
    const batch = Array.from({ length: size }, () => {
      const offset = offsets[partition]!++
      return detection(topic, partition, offset, T0 + ((offset * 7919) % (10 * MINUTE)))
    })
    await store.repository.insertBatch(batch)
    written.push(...batch)
  }

  /** Every width's series over the written range, grouped by make, and the all-time stats. */
  const answers = async () => {
    const series = (bucket: TimeseriesBucket, to: number) =>
      store.repository.timeseries({ bucket, from: new Date(T0), to: new Date(to), groupBy: 'make', top: 20 })
    return {
      minutes: await series('minute', T0 + 10 * MINUTE),
      hours: await series('hour', T0 + HOUR),
      days: await series('day', T0 + 1),
      stats: await store.repository.stats('make'),
      count: await store.repository.count(),
    }
  }

  /** The answers computed from what was written, for the minute width. */
  const expectedMinutes = () => {
    const points = Array.from({ length: 10 }, () => ({ total: 0, suspicious: 0 }))
    const byMake = new Map<string, number[]>()
    for (const d of written) {
      const i = Math.floor((d.detectedAt.getTime() - T0) / MINUTE)
      points[i]!.total++
      if (d.suspicious) points[i]!.suspicious++
      const counts = byMake.get(d.make) ?? new Array<number>(10).fill(0)
      counts[i]!++
      byMake.set(d.make, counts)
    }
    return { points, byMake }
  }

  const shardRows = async (table: string) =>
    (await reader.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE shard <> 0`)).rows[0]?.n

  const rowCount = async (table: string) =>
    (await reader.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]?.n

  beforeAll(async () => {
    store = await createTestStore('postgres', 'fold')
    reader = new pg.Pool({ connectionString: store.url(), max: 2 })
    for (let partition = 0; partition < SHARDS; partition++) await write(partition, 60)
  })
  afterAll(async () => {
    await reader?.end()
    await store?.drop()
  })

  it('loses and doubles no count while indexers bump the buckets being folded', async () => {
    let writing = true
    let folds = 0
    const folder = async () => {
      const client = await reader.connect()
      try {
        while (writing) {
          for (const width of ['minute', 'hour', 'day'] as const) {
            await foldBuckets(client, width, new Date(T0 - 1), new Date(T0 + 1 + 24 * HOUR))
          }
          folds++
        }
      } finally {
        client.release()
      }
    }
    // One writer per partition, as indexers are, each batch into the same ten minutes.
    const writers = Array.from({ length: SHARDS }, async (_, partition) => {
      for (let i = 0; i < 15; i++) await write(partition, 40)
    })
    const folding = folder()
    await Promise.all(writers).finally(() => {
      writing = false
    })
    await folding
    expect(folds).toBeGreaterThan(0)

    const { points, byMake } = expectedMinutes()
    const after = await answers()
    expect(after.minutes.points.map(({ total, suspicious }) => ({ total, suspicious }))).toEqual(points)
    expect(new Map(after.minutes.groups.map((g) => [g.value, g.counts]))).toEqual(byMake)
    expect(after.hours.points[0]?.total).toBe(written.length)
    expect(after.days.points[0]?.total).toBe(written.length)
    expect(after.count).toBe(written.length)
    expect(after.stats.total).toBe(written.length)
    expect(new Map(after.stats.items.map((s) => [s.value, s.count]))).toEqual(
      new Map([...byMake].map(([make, counts]) => [make, counts.reduce((a, b) => a + b, 0)])),
    )
  })

  it('folds the closed buckets in maintenance, once, with every answer unchanged', async () => {
    const before = await answers()
    const now = new Date(T0 + 2 * 24 * HOUR)
    await store.repository.maintain(KEEP_EVERYTHING, now)
    // Minutes and hours moved into their runs, days folded into shard 0.
    for (const table of ['detection_minutes', 'detection_hours']) {
      expect(await rowCount(table), table).toBe(0)
    }
    for (const runs of ['detection_minute_runs', 'detection_hour_runs']) {
      expect(await rowCount(runs), runs).toBeGreaterThan(0)
    }
    expect(await shardRows('detection_days')).toBe(0)
    expect(await answers()).toEqual(before)

    // A late record into a folded minute is a bucket row beside its run, counted, until the next
    // pass folds it too.
    await write(1, 1)
    // Its minute's total and one row per dimension (make, model, category, year).
    expect(await rowCount('detection_minutes')).toBe(5)
    const late = await answers()
    expect(late.minutes.points.reduce((n, p) => n + p.total, 0)).toBe(written.length)
    await store.repository.maintain(KEEP_EVERYTHING, now)
    expect(await rowCount('detection_minutes')).toBe(0)
    expect(await answers()).toEqual(late)
  })

  it('folds from the oldest bucket on a first pass, and leaves the open ones as bucket rows', async () => {
    const at = (partition: number, timestamp: number) =>
      detection(topic, partition, offsets[partition]!++, timestamp)
    const late = [at(1, T0 + 3 * MINUTE + 1), at(2, T0 + 9 * MINUTE + 1)]
    await store.repository.insertBatch(late)
    written.push(...late)
    await reader.query('DELETE FROM detection_folded')
    // Minute 9 ended less than the grace ago: still open.
    await store.repository.maintain(KEEP_EVERYTHING, new Date(T0 + 10 * MINUTE + FOLD_GRACE_MS - 1))
    const rows = await reader.query<{ closed: number; open: number }>(
      `SELECT count(*) FILTER (WHERE start < $1)::int AS closed, count(*) FILTER (WHERE start >= $1)::int AS open
       FROM detection_minutes`,
      [new Date(T0 + 9 * MINUTE)],
    )
    expect(rows.rows[0]).toEqual({ closed: 0, open: expect.any(Number) })
    expect(rows.rows[0]?.open).toBeGreaterThan(0)
    // Runs, the late rows beside them and the open minute add up to what was written.
    const { points, byMake } = expectedMinutes()
    const minutes = (await answers()).minutes
    expect(minutes.points.map(({ total, suspicious }) => ({ total, suspicious }))).toEqual(points)
    expect(new Map(minutes.groups.map((g) => [g.value, g.counts]))).toEqual(byMake)
  })
})
