// Retention and downsampling: PostgreSQL drops whole day partitions and keeps the rest; MongoDB
// removes expired detections (TTL index, or deleteMany where the server has no TTL indexes).
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestStore, type TestStore } from '../../../test/support/detections-stores.js'
import {
  type DetectionDocument,
  KEEP_EVERYTHING,
  TimeseriesWidthDroppedError,
  toDetectionDocument,
} from '../src/index.js'

const DAY = 86_400_000
const HOUR = 3_600_000
/** A fixed "now" at noon UTC, so every day below is a whole past day. */
const NOW = Date.UTC(2026, 11, 5, 12)
const today = NOW - (NOW % DAY)
const MAKES = ['Toyota', 'MAZDA', 'Ford'] as const
const CATEGORIES = ['SUV', 'Sedan', 'SUV, Pickup'] as const

function detection(topic: string, offset: number, timestamp: number): DetectionDocument {
  const category = CATEGORIES[offset % CATEGORIES.length]!
  return toDetectionDocument(
    { Year: 2010 + (offset % 3), Make: MAKES[offset % MAKES.length]!, Model: 'M', Category: category },
    { topic, partition: offset % 2, offset, timestamp },
    category.includes('SUV'),
  )
}

/** Ten detections an hour apart on each of these days (days before today). */
const DAYS_AGO = [40, 35, 10, 3, 0] as const
const POLICY = { detectionsMs: 30 * DAY, minuteBucketsMs: 7 * DAY, hourBucketsMs: 90 * DAY }

describe('retention on PostgreSQL', () => {
  let store: TestStore
  let reader: pg.Pool
  const topic = `retention-${randomUUID()}`
  const docs = DAYS_AGO.flatMap((ago, d) =>
    Array.from({ length: 10 }, (_, i) => detection(topic, d * 10 + i, today - ago * DAY + i * HOUR)),
  )
  const partitions = async () =>
    (
      await reader.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'detections' ORDER BY 1`,
      )
    ).rows.map((row) => row.name)
  const dayName = (ago: number) => new Date(today - ago * DAY).toISOString().slice(0, 10).replaceAll('-', '')

  beforeAll(async () => {
    store = await createTestStore('postgres', 'retention')
    reader = new pg.Pool({ connectionString: store.url(), max: 2 })
    await store.repository.insertBatch(docs)
  })
  afterAll(async () => {
    await reader?.end()
    await store?.drop()
  })

  it('keeps everything without a policy, and creates the days ahead', async () => {
    const result = await store.repository.maintain(KEEP_EVERYTHING, new Date(NOW))
    expect(result).toEqual({ ran: true, dropped: [] })
    expect(await store.storedCount()).toBe(docs.length)
    const names = await partitions()
    for (const ago of [...DAYS_AGO, -1, -2, -3]) expect(names).toContain(`detections_p${dayName(ago)}`)
  })

  it('drops the days wholly older than the window and keeps the rest; stats count all time', async () => {
    const statsBefore = await store.repository.stats('make')
    const result = await store.repository.maintain(POLICY, new Date(NOW))
    expect(result.ran).toBe(true)
    for (const table of ['detections', 'detection_category_tokens']) {
      expect(result.dropped).toContain(`${table}_p${dayName(40)}`)
      expect(result.dropped).toContain(`${table}_p${dayName(35)}`)
      expect(result.dropped).not.toContain(`${table}_p${dayName(10)}`)
    }
    // Minutes are kept 7 days, hours 90: the minute partitions of 10 days ago go, its hours stay.
    // Their closed buckets, moved into runs by the pass before, go with them.
    for (const minutes of ['detection_minutes', 'detection_minute_runs']) {
      expect(result.dropped).toContain(`${minutes}_p${dayName(10)}`)
      expect(result.dropped).not.toContain(`${minutes}_p${dayName(3)}`)
    }
    for (const hours of ['detection_hours', 'detection_hour_runs']) {
      expect(result.dropped).not.toContain(`${hours}_p${dayName(10)}`)
    }

    const kept = docs.filter((d) => d.detectedAt.getTime() >= today - 30 * DAY)
    expect(new Set(await store.storedIds())).toEqual(new Set(kept.map((d) => d._id)))
    const tokens = await reader.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM detection_category_tokens',
    )
    expect(tokens.rows[0]?.n).toBe(kept.reduce((n, d) => n + d.categoryTokens.length, 0))
    // All-time: the counters are never decremented.
    expect(await store.repository.stats('make')).toEqual(statsBefore)
    // The total of a page counts what can still be paged through.
    expect(await store.repository.count()).toBe(kept.length)
    expect(await store.repository.count({ make: 'mazda' })).toBe(
      kept.filter((d) => d.makeKey === 'mazda').length,
    )
    expect(await store.repository.count({ category: 'suv' })).toBe(
      kept.filter((d) => d.categoryTokens.includes('suv')).length,
    )

    const again = await store.repository.maintain(POLICY, new Date(NOW))
    expect(again.dropped).toEqual([])
  })

  it('answers a range whose minutes were dropped with the widths still kept for it', async () => {
    const from = new Date(today - 10 * DAY)
    const to = new Date(today - 10 * DAY + 10 * HOUR)
    const error = await store.repository.timeseries({ bucket: 'minute', from, to }).then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(error).toBeInstanceOf(TimeseriesWidthDroppedError)
    expect((error as TimeseriesWidthDroppedError).available).toEqual(['hour', 'day'])
    const hours = await store.repository.timeseries({ bucket: 'hour', from, to, groupBy: 'make' })
    expect(hours.available).toEqual(['hour', 'day'])
    expect(hours.points.map((p) => p.total)).toEqual(Array(10).fill(1))
    expect(hours.groups.reduce((n, g) => n + g.total, 0)).toBe(10)
    // Day buckets are kept for ever, also for days whose detections were dropped.
    const days = await store.repository.timeseries({
      bucket: 'day',
      from: new Date(today - 40 * DAY),
      to: new Date(today - 34 * DAY),
    })
    expect(days.available).toEqual(['hour', 'day'])
    expect(days.points.map((p) => p.total)).toEqual([10, 0, 0, 0, 0, 10])
    const recent = await store.repository.timeseries({
      bucket: 'minute',
      from: new Date(today - 3 * DAY),
      to: new Date(today - 3 * DAY + HOUR),
    })
    expect(recent.available).toEqual(['minute', 'hour', 'day'])
    expect(recent.points[0]?.total).toBe(1)
  })

  it('pages on from a cursor that points into a dropped day, with what exists', async () => {
    // Page through everything before the drop would have given this cursor: at a detection of 35
    // days ago, now dropped. A record that arrives late, for 36 days ago, lands in a new partition.
    const dropped = docs.find((d) => d.detectedAt.getTime() === today - 35 * DAY + 5 * HOUR)!
    const { encodeCursor } = await import('../src/cursor.js')
    const cursor = encodeCursor(dropped.detectedAt, dropped._id)
    expect(await store.repository.list({ limit: 5, cursor })).toEqual({ items: [], nextCursor: null })

    const late = detection(topic, 999, today - 36 * DAY)
    expect(await store.repository.insertBatch([late])).toEqual({ inserted: 1, duplicates: 0 })
    const page = await store.repository.list({ limit: 5, cursor })
    expect(page.items.map((item) => item.id)).toEqual([late._id])
    expect(page.nextCursor).toBeNull()
    // ...and the next pass drops it with its day.
    const result = await store.repository.maintain(POLICY, new Date(NOW))
    expect(result.dropped).toContain(`detections_p${dayName(36)}`)
    expect(await store.storedIds()).not.toContain(late._id)
  })
})

describe('retention on MongoDB', () => {
  let store: TestStore
  const topic = `retention-${randomUUID()}`
  // Relative to the real clock: a TTL index deletes by the server's own time.
  const now = Date.now()
  const old = Array.from({ length: 5 }, (_, i) => detection(topic, i, now - 40 * DAY + i * HOUR))
  const fresh = Array.from({ length: 5 }, (_, i) => detection(topic, 10 + i, now - HOUR + i))

  beforeAll(async () => {
    store = await createTestStore('mongodb', 'retention')
    await store.repository.insertBatch([...old, ...fresh])
  })
  afterAll(async () => {
    await store?.drop()
  })

  it('removes the detections older than the window and keeps the counters', async () => {
    const statsBefore = await store.repository.stats('make')
    await store.repository.maintain(POLICY, new Date(now))
    // FerretDB 1.x has no TTL indexes: maintenance deletes at once. MongoDB's TTL monitor runs
    // every 60 s, so wait for it there.
    const deadline = Date.now() + 150_000
    while ((await store.storedCount()) > fresh.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1_000))
    }
    expect(new Set(await store.storedIds())).toEqual(new Set(fresh.map((d) => d._id)))
    expect(await store.repository.stats('make')).toEqual(statsBefore)
    // Turning retention off again is allowed and keeps what is there.
    await store.repository.maintain(KEEP_EVERYTHING, new Date(now))
    expect(await store.storedCount()).toBe(fresh.length)
  }, 180_000)
})
