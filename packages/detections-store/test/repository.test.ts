// One contract, two backends: every test here runs against PostgreSQL and MongoDB with the same
// inputs and expects the same answers.
import { randomUUID } from 'node:crypto'
import { MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS, createTestStore, type TestStore } from '../../../test/support/detections-stores.js'
import {
  createStatsCounters,
  type DetectionDocument,
  type DetectionsRepository,
  InvalidCursorError,
  type StatsDimension,
  toDetectionDocument,
} from '../src/index.js'

const MAKES = ['Toyota', 'TOYOTA', 'Ford', 'MAZDA', 'Mazda', 'smart'] as const
const CATEGORIES = ['SUV', 'Sedan', 'SUV, Pickup', 'Wagon, SUV', 'Pickup', 'suv', ' Sedan ,  wagon'] as const
const MINUTE = 60_000
const T0 = Date.UTC(2026, 10, 23, 20, 0, 0)

function detection(topic: string, partition: number, offset: number, timestamp: number): DetectionDocument {
  const make = MAKES[offset % MAKES.length]!
  const category = CATEGORIES[offset % CATEGORIES.length]!
  return toDetectionDocument(
    { Year: 2000 + (offset % 7), Make: make, Model: `Model ${offset % 3}`, Category: category },
    { topic, partition, offset, timestamp },
    category.toLowerCase().includes('suv'),
  )
}

const KEY: Record<StatsDimension, (d: DetectionDocument) => string> = {
  make: (d) => d.makeKey,
  model: (d) => d.modelKey,
  category: (d) => d.categoryKey,
  year: (d) => String(d.year),
}

/** What the stats must say, computed from the inputs alone. */
function expectedCounts(docs: readonly DetectionDocument[], dim: StatsDimension): Map<string, number> {
  const counts = new Map<string, number>()
  for (const d of docs) counts.set(KEY[dim](d), (counts.get(KEY[dim](d)) ?? 0) + 1)
  return counts
}

function folded(items: { value: string; count: number }[]) {
  return new Map(items.map((item) => [item.value.trim().toLowerCase(), item.count]))
}

async function walkByCursor(repository: DetectionsRepository, limit: number, filters = {}) {
  const ids: string[] = []
  let cursor: string | undefined
  do {
    const page = await repository.list({ limit, filters, ...(cursor && { cursor }) })
    ids.push(...page.items.map((item) => item.id))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return ids
}

describe.each(BACKENDS)('detections repository contract (%s)', (backend) => {
  let store: TestStore
  let repository: DetectionsRepository
  /** Everything this suite stored, for the expected stats. */
  const stored = new Map<string, DetectionDocument>()
  const insert = async (docs: DetectionDocument[]) => {
    const result = await repository.insertBatch(docs)
    for (const d of docs) stored.set(d._id, d)
    return result
  }

  beforeAll(async () => {
    store = await createTestStore(backend, 'contract')
    repository = store.repository
  })
  afterAll(async () => {
    await store?.drop()
  })

  it('answers an empty store with nothing', async () => {
    expect(await repository.list({ limit: 10 })).toEqual({ items: [], nextCursor: null })
    expect(await repository.count()).toBe(0)
    expect(await repository.count({ category: 'suv' })).toBe(0)
    expect(await repository.stats('make')).toEqual({ total: 0, items: [] })
    const series = await repository.timeseries({
      bucket: 'minute',
      from: new Date(T0),
      to: new Date(T0 + 3 * MINUTE),
    })
    expect(series.points.map((p) => [p.total, p.suspicious])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ])
  })

  it('runs the schema setup again without harm (every process start does)', async () => {
    await repository.ensureIndexes()
    await Promise.all([repository.ensureIndexes(), repository.ensureIndexes()])
  })

  it('inserts idempotently and counts redelivered batches once, whatever their boundaries', async () => {
    const topic = `t-${randomUUID()}`
    const docs = Array.from({ length: 120 }, (_, i) =>
      detection(topic, i % 2, Math.floor(i / 2), T0 + i * 1000),
    )

    expect(await insert(docs.slice(0, 50))).toEqual({ inserted: 50, duplicates: 0 })
    // A crash before the commit redelivers from an earlier offset with different batch boundaries.
    expect(await insert(docs.slice(20, 90))).toEqual({ inserted: 40, duplicates: 30 })
    expect(await insert(docs.slice(0, 120))).toEqual({ inserted: 30, duplicates: 90 })
    expect(await insert(docs.slice(100))).toEqual({ inserted: 0, duplicates: 20 })
    // The same record twice in one batch is one detection.
    const twice = detection(topic, 0, 500, T0 + 500_000)
    expect(await insert([twice, twice])).toEqual({ inserted: 1, duplicates: 1 })

    expect(new Set(await store.storedIds())).toEqual(new Set(stored.keys()))
    const stats = await repository.stats('make')
    expect(stats.total).toBe(stored.size)
    expect(folded(stats.items)).toEqual(expectedCounts([...stored.values()], 'make'))
  })

  it('counts once when a zombie and the new owner of a partition store overlapping batches', async () => {
    const topic = `t-${randomUUID()}`
    const docs = Array.from({ length: 80 }, (_, offset) => detection(topic, 0, offset, T0 + offset * 700))
    await insert(docs.slice(0, 20)) // committed: both writers resume at offset 20
    const zombie = await insert(docs.slice(20, 60))
    const owner = await insert(docs.slice(20, 80))
    expect(await insert(docs.slice(20, 60))).toEqual({ inserted: 0, duplicates: 40 })
    expect(zombie.inserted + owner.inserted).toBe(60)
    expect((await repository.stats('category')).total).toBe(stored.size)
    expect(await store.storedCount()).toBe(stored.size)
  })

  // FerretDB applies two updates of one document at the same instant without isolation (the
  // watermark compare-and-set can lose an increment), so truly simultaneous writers of one
  // partition are a PostgreSQL-only guarantee; the indexer's fencing keeps them rare on MongoDB.
  it.runIf(backend === 'postgres')(
    'counts once when two writers store overlapping batches at the same instant',
    async () => {
      const topic = `t-${randomUUID()}`
      const docs = Array.from({ length: 80 }, (_, offset) => detection(topic, 0, offset, T0 + offset * 700))
      const results = await Promise.all([insert(docs.slice(0, 60)), insert(docs.slice(10, 80)), insert(docs)])
      expect(results.reduce((sum, r) => sum + r.inserted, 0)).toBe(80)
      expect((await repository.stats('model')).total).toBe(stored.size)
      const series = await repository.timeseries({ bucket: 'hour', from: new Date(T0), to: new Date(T0 + 1) })
      expect(series.points[0]!.total).toBe(
        [...stored.values()].filter(
          (d) => d.detectedAt.getTime() < T0 + 3_600_000 && d.detectedAt.getTime() >= T0,
        ).length,
      )
    },
  )

  it('counts a re-created topic whose offsets restart at 0', async () => {
    const topic = `t-${randomUUID()}`
    await insert(Array.from({ length: 10 }, (_, offset) => detection(topic, 0, offset, T0 + offset)))
    // Same topic name and offsets, later timestamps: different detections.
    const recreated = Array.from({ length: 4 }, (_, offset) =>
      detection(topic, 0, offset, T0 + 50_000 + offset),
    )
    expect(await insert(recreated)).toEqual({ inserted: 4, duplicates: 0 })
    expect(await insert(recreated)).toEqual({ inserted: 0, duplicates: 4 })
    expect((await repository.stats('year')).total).toBe(stored.size)
  })

  it('groups stats per dimension case-insensitively, sorted by count then value', async () => {
    for (const dim of ['make', 'model', 'category', 'year'] as const) {
      const stats = await repository.stats(dim)
      expect(folded(stats.items)).toEqual(expectedCounts([...stored.values()], dim))
      expect(stats.total).toBe(stored.size)
      const order = stats.items.map((item) => [-item.count, item.value] as const)
      expect(order).toEqual(
        [...order].sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)),
      )
    }
  })

  it('counts every detection and every suspicious one per minute, hour and day, exactly', async () => {
    const all = [...stored.values()]
    for (const bucket of ['minute', 'hour', 'day'] as const) {
      const width = { minute: MINUTE, hour: 60 * MINUTE, day: 24 * 60 * MINUTE }[bucket]
      const series = await repository.timeseries({
        bucket,
        from: new Date(T0 - width + 1),
        to: new Date(T0 + 2 * width - 1),
      })
      expect(series.from.getTime()).toBe(Math.floor((T0 - width + 1) / width) * width)
      expect(series.to.getTime()).toBe(Math.ceil((T0 + 2 * width - 1) / width) * width)
      for (const point of series.points) {
        const inside = all.filter(
          (d) => d.detectedAt >= point.start && d.detectedAt.getTime() < point.start.getTime() + width,
        )
        expect([point.total, point.suspicious]).toEqual([
          inside.length,
          inside.filter((d) => d.suspicious).length,
        ])
      }
      expect(series.points.reduce((sum, p) => sum + p.total, 0)).toBe(
        all.filter((d) => d.detectedAt >= series.from && d.detectedAt < series.to).length,
      )
    }
  })

  it('gives the top groups per bucket over the range, in display spelling', async () => {
    const from = new Date(T0)
    const to = new Date(T0 + 10 * MINUTE)
    const series = await repository.timeseries({ bucket: 'minute', from, to, groupBy: 'make', top: 2 })
    expect(series.groupBy).toBe('make')
    expect(series.groups).toHaveLength(2)
    const inRange = [...stored.values()].filter((d) => d.detectedAt >= from && d.detectedAt < to)
    const expected = [...expectedCounts(inRange, 'make').entries()].sort((a, b) => b[1] - a[1])
    expect(series.groups.map((g) => g.total)).toEqual(expected.slice(0, 2).map(([, n]) => n))
    for (const group of series.groups) {
      expect(group.counts).toHaveLength(series.points.length)
      expect(group.counts.reduce((sum, n) => sum + n, 0)).toBe(group.total)
      const key = group.value.toLowerCase()
      group.counts.forEach((n, i) => {
        const start = series.points[i]!.start.getTime()
        expect(n).toBe(
          inRange.filter(
            (d) =>
              d.makeKey === key && d.detectedAt.getTime() >= start && d.detectedAt.getTime() < start + MINUTE,
          ).length,
        )
      })
    }
    const plain = await repository.timeseries({ bucket: 'hour', from, to })
    expect(plain.groups).toEqual([])
    expect(plain.groupBy).toBeNull()
  })

  describe('paging', () => {
    let paging: TestStore
    const topic = 'paging'
    const docs = Array.from({ length: 57 }, (_, offset) => detection(topic, 0, offset, 5_000 + (offset % 10)))

    beforeAll(async () => {
      paging = await createTestStore(backend, 'paging')
      // Many detections share a timestamp, so the tie-breaker matters.
      await paging.repository.insertBatch(docs)
    })
    afterAll(async () => {
      await paging?.drop()
    })

    it('walks every detection exactly once, newest first, by skip and by cursor', async () => {
      const bySkip: string[] = []
      for (let skip = 0; ; skip += 10) {
        const page = await paging.repository.list({ skip, limit: 10 })
        bySkip.push(...page.items.map((item) => item.id))
        if (page.items.length < 10) break
      }
      const byCursor = await walkByCursor(paging.repository, 8)
      expect(bySkip).toHaveLength(57)
      expect(new Set(bySkip).size).toBe(57)
      expect(byCursor).toEqual(bySkip)
      const expected = [...docs].sort(
        (a, b) =>
          b.detectedAt.getTime() - a.detectedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0),
      )
      expect(bySkip).toEqual(expected.map((d) => d._id))
    })

    it('filters by case-insensitive make and model, category token, year and time range, and counts exactly', async () => {
      const cases = [
        { filters: { make: 'mazda' }, match: (d: DetectionDocument) => d.makeKey === 'mazda' },
        { filters: { model: 'MODEL 1' }, match: (d: DetectionDocument) => d.modelKey === 'model 1' },
        { filters: { category: 'Suv' }, match: (d: DetectionDocument) => d.categoryTokens.includes('suv') },
        {
          filters: { category: 'WAGON' },
          match: (d: DetectionDocument) => d.categoryTokens.includes('wagon'),
        },
        { filters: { category: 'suv, pickup' }, match: () => false },
        { filters: { year: 2001 }, match: (d: DetectionDocument) => d.year === 2001 },
        {
          filters: { from: new Date(5_002), to: new Date(5_004), year: 2001 },
          match: (d: DetectionDocument) =>
            d.year === 2001 && d.detectedAt.getTime() >= 5_002 && d.detectedAt.getTime() < 5_004,
        },
        {
          filters: { make: 'TOYOTA', category: 'sedan', to: new Date(5_008) },
          match: (d: DetectionDocument) =>
            d.makeKey === 'toyota' && d.categoryTokens.includes('sedan') && d.detectedAt.getTime() < 5_008,
        },
        { filters: { make: 'no such make' }, match: () => false },
      ]
      for (const { filters, match } of cases) {
        const expected = docs
          .filter(match)
          .sort(
            (a, b) =>
              b.detectedAt.getTime() - a.detectedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0),
          )
          .map((d) => d._id)
        expect(await walkByCursor(paging.repository, 4, filters), JSON.stringify(filters)).toEqual(expected)
        expect(await paging.repository.count(filters), JSON.stringify(filters)).toBe(expected.length)
      }
      expect(await paging.repository.count({})).toBe(57)
    })

    it('keeps cursor pages stable while newer detections arrive', async () => {
      const first = await paging.repository.list({ limit: 20 })
      await paging.repository.insertBatch([detection(topic, 1, 0, 99_999), detection(topic, 1, 1, 5_005)])
      const second = await paging.repository.list({ limit: 20, cursor: first.nextCursor! })
      const firstIds = first.items.map((item) => item.id)
      expect(second.items.filter((item) => firstIds.includes(item.id))).toEqual([])
      // The page continues exactly where the first ended: the old order's next 20.
      const expected = [...docs]
        .sort(
          (a, b) =>
            b.detectedAt.getTime() - a.detectedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0),
        )
        .map((d) => d._id)
      const late = detection(topic, 1, 1, 5_005)
      const continued = expected.slice(20)
      const position = (id: string) => [...docs, late].find((d) => d._id === id)!
      const after = [...continued, late._id]
        .map(position)
        .sort(
          (a, b) =>
            b.detectedAt.getTime() - a.detectedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0),
        )
        .map((d) => d._id)
      expect(second.items.map((item) => item.id)).toEqual(after.slice(0, 20))
    })

    it('rejects malformed cursors with a typed error', async () => {
      for (const cursor of [
        'bm90LWEtY3Vyc29y',
        '***',
        'x'.repeat(300),
        Buffer.from('12.a b').toString('base64url'),
      ]) {
        await expect(paging.repository.list({ limit: 5, cursor }), cursor).rejects.toBeInstanceOf(
          InvalidCursorError,
        )
      }
    })
  })
})

describe('both backends give the same answers to the same inputs', () => {
  const stores: TestStore[] = []
  beforeAll(async () => {
    stores.push(...(await Promise.all(BACKENDS.map((backend) => createTestStore(backend, 'same')))))
  })
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.drop()))
  })

  it('pages, counts, stats and time series match', async () => {
    const topic = `t-${randomUUID()}`
    const docs = Array.from({ length: 300 }, (_, i) =>
      detection(topic, i % 3, Math.floor(i / 3), T0 + i * 13_000),
    )
    for (const store of stores) {
      await store.repository.insertBatch(docs.slice(0, 200))
      await store.repository.insertBatch(docs.slice(100))
    }
    const answers = await Promise.all(
      stores.map(async ({ repository }) => {
        const first = await repository.list({ limit: 25, filters: { category: 'SUV' } })
        const fold = (items: { value: string; count: number }[]) =>
          items.map((item) => [item.value.toLowerCase(), item.count])
        return {
          first,
          next: await repository.list({ limit: 25, cursor: first.nextCursor!, filters: { category: 'SUV' } }),
          skip: await repository.list({ limit: 7, skip: 100, filters: { make: 'mazda' } }),
          counts: [await repository.count(), await repository.count({ category: 'pickup', year: 2003 })],
          stats: await Promise.all(
            (['make', 'model', 'category', 'year'] as const).map(async (dim) =>
              fold((await repository.stats(dim)).items),
            ),
          ),
          series: await repository.timeseries({
            bucket: 'minute',
            from: new Date(T0),
            to: new Date(T0 + 70 * MINUTE),
            groupBy: 'category',
            top: 3,
          }),
        }
      }),
    )
    for (const answer of answers) {
      for (const group of answer.series.groups) group.value = group.value.toLowerCase()
    }
    expect(answers[0]).toEqual(answers[1])
  })
})

describe('MongoDB stats counters', () => {
  it('stay exact when a zombie counts late what the new owner already counted', async () => {
    const store = await createTestStore('mongodb', 'late')
    const client = new MongoClient(store.url(), { serverSelectionTimeoutMS: 5_000 })
    try {
      const db = client.db()
      const topic = `t-${randomUUID()}`
      const docs = Array.from({ length: 60 }, (_, offset) => detection(topic, 0, offset, 9_000 + offset))
      await store.repository.insertBatch(docs.slice(0, 20)) // committed: both writers resume at offset 20
      // The zombie inserts 20..49 and stalls before counting; the new owner then stores 20..59.
      await db.collection<DetectionDocument>('detections').insertMany(docs.slice(20, 50))
      expect(await store.repository.insertBatch(docs.slice(20, 60))).toEqual({ inserted: 10, duplicates: 30 })
      // The zombie wakes up and counts its batch, whose documents it inserted itself.
      await createStatsCounters(db).apply(docs.slice(20, 50), new Set(docs.slice(20, 50).map((d) => d._id)))
      expect((await store.repository.stats('category')).total).toBe(60)
    } finally {
      await client.close()
      await store.drop()
    }
  })
})
