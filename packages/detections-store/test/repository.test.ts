import { randomUUID } from 'node:crypto'
import { type Db, MongoClient } from 'mongodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createDetectionsRepository,
  createStatsCounters,
  type DetectionDocument,
  type DetectionsRepository,
  InvalidCursorError,
  toDetectionDocument,
} from '../src/index.js'

const MAKES = ['Toyota', 'TOYOTA', 'Ford', 'MAZDA', 'Mazda', 'smart'] as const
const CATEGORIES = ['SUV', 'Sedan', 'SUV, Pickup', 'Wagon, SUV', 'Pickup'] as const

function detection(topic: string, partition: number, offset: number, timestamp: number): DetectionDocument {
  const make = MAKES[offset % MAKES.length]!
  const category = CATEGORIES[offset % CATEGORIES.length]!
  return toDetectionDocument(
    { Year: 2000 + (offset % 7), Make: make, Model: `Model ${offset % 3}`, Category: category },
    { topic, partition, offset, timestamp },
    category.toLowerCase().includes('suv'),
  )
}

/** The stats every test compares against: computed straight from the stored documents. */
async function independentCount(db: Db, field: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  for await (const doc of db.collection('detections').find({}, { projection: { [field]: 1 } })) {
    const key = String(doc[field])
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts
}

function asMap(items: { value: string; count: number }[], fold = (v: string) => v.toLowerCase()) {
  return new Map(items.map((item) => [fold(item.value), item.count]))
}

describe('detections repository (MongoDB protocol)', () => {
  let client: MongoClient
  let db: Db
  let repository: DetectionsRepository

  beforeAll(async () => {
    client = new MongoClient(process.env.MONGO_URL!, { serverSelectionTimeoutMS: 5000 })
    await client.connect()
    db = client.db(`store_${randomUUID().replaceAll('-', '')}`)
    repository = createDetectionsRepository(db)
    await repository.ensureIndexes()
  })

  afterAll(async () => {
    await db?.dropDatabase()
    await client?.close()
  })

  it('inserts idempotently and counts redelivered batches once, whatever their boundaries', async () => {
    const topic = `t-${randomUUID()}`
    const base = Date.now()
    const docs = Array.from({ length: 120 }, (_, i) => detection(topic, i % 2, Math.floor(i / 2), base + i))

    expect(await repository.insertBatch(docs.slice(0, 50))).toEqual({ inserted: 50, duplicates: 0 })
    // A crash before the commit redelivers from an earlier offset with different batch boundaries.
    expect(await repository.insertBatch(docs.slice(20, 90))).toEqual({ inserted: 40, duplicates: 30 })
    expect(await repository.insertBatch(docs.slice(0, 120))).toEqual({ inserted: 30, duplicates: 90 })
    expect(await repository.insertBatch(docs.slice(100))).toEqual({ inserted: 0, duplicates: 20 })

    const stored = await db.collection('detections').countDocuments({ 'source.topic': topic })
    expect(stored).toBe(120)
    const stats = await repository.stats('make')
    expect(stats.total).toBe(120)
    expect(asMap(stats.items)).toEqual(await independentCount(db, 'makeKey'))
  })

  it('counts a re-created topic whose offsets restart at 0', async () => {
    const topic = `t-${randomUUID()}`
    const old = Array.from({ length: 10 }, (_, offset) => detection(topic, 0, offset, 1_000 + offset))
    await repository.insertBatch(old)
    const before = (await repository.stats('year')).total
    // Same topic name and offsets, later timestamps: different detections.
    const recreated = Array.from({ length: 4 }, (_, offset) => detection(topic, 0, offset, 50_000 + offset))
    expect(await repository.insertBatch(recreated)).toEqual({ inserted: 4, duplicates: 0 })
    expect(await repository.insertBatch(recreated)).toEqual({ inserted: 0, duplicates: 4 })
    expect((await repository.stats('year')).total).toBe(before + 4)
  })

  it('keeps stats exact when a zombie counts late what the new owner already counted', async () => {
    const topic = `t-${randomUUID()}`
    const docs = Array.from({ length: 60 }, (_, offset) => detection(topic, 0, offset, 9_000 + offset))
    const before = (await repository.stats('category')).total
    await repository.insertBatch(docs.slice(0, 20)) // committed: both writers resume at offset 20
    // The zombie inserts 20..49 and stalls before counting; the new owner then stores 20..59.
    await db.collection<DetectionDocument>('detections').insertMany(docs.slice(20, 50))
    expect(await repository.insertBatch(docs.slice(20, 60))).toEqual({ inserted: 10, duplicates: 30 })
    // The zombie wakes up and counts its batch, whose documents it inserted itself.
    await createStatsCounters(db).apply(docs.slice(20, 50), new Set(docs.slice(20, 50).map((d) => d._id)))
    expect((await repository.stats('category')).total).toBe(before + 60)
  })

  it('groups stats per dimension case-insensitively, sorted by count then value', async () => {
    for (const dim of ['make', 'model', 'category', 'year'] as const) {
      const stats = await repository.stats(dim)
      const field = { make: 'makeKey', model: 'modelKey', category: 'categoryKey', year: 'year' }[dim]
      expect(asMap(stats.items)).toEqual(await independentCount(db, field))
      const counts = stats.items.map((item) => item.count)
      expect(counts).toEqual([...counts].sort((a, b) => b - a))
    }
  })

  describe('paging', () => {
    let pagingDb: Db
    let paging: DetectionsRepository
    const topic = 'paging'

    beforeAll(async () => {
      pagingDb = client.db(`paging_${randomUUID().replaceAll('-', '')}`)
      paging = createDetectionsRepository(pagingDb)
      await paging.ensureIndexes()
      // Many detections share a timestamp, so the tie-breaker matters.
      await paging.insertBatch(
        Array.from({ length: 57 }, (_, offset) => detection(topic, 0, offset, 5_000 + (offset % 10))),
      )
    })
    afterAll(async () => {
      await pagingDb?.dropDatabase()
    })

    it('walks every detection exactly once, newest first, by skip and by cursor', async () => {
      const bySkip: string[] = []
      for (let skip = 0; ; skip += 10) {
        const page = await paging.list({ skip, limit: 10 })
        bySkip.push(...page.items.map((item) => item.id))
        if (page.items.length < 10) break
      }
      const byCursor: string[] = []
      let cursor: string | undefined
      do {
        const page = await paging.list({ limit: 8, ...(cursor && { cursor }) })
        byCursor.push(...page.items.map((item) => item.id))
        cursor = page.nextCursor ?? undefined
      } while (cursor)

      expect(bySkip).toHaveLength(57)
      expect(new Set(bySkip).size).toBe(57)
      expect(byCursor).toEqual(bySkip)
      const all = await paging.list({ limit: 100 })
      const times = all.items.map((item) => item.detectedAt.getTime())
      expect(times).toEqual([...times].sort((a, b) => b - a))
    })

    it('keeps cursor pages stable while newer detections arrive', async () => {
      const first = await paging.list({ limit: 20 })
      await paging.insertBatch([detection(topic, 1, 0, 99_999)])
      const second = await paging.list({ limit: 20, cursor: first.nextCursor! })
      const overlap = second.items.filter((item) => first.items.some((f) => f.id === item.id))
      expect(overlap).toEqual([])
      expect(second.items[0]!.detectedAt.getTime()).toBeLessThanOrEqual(
        first.items.at(-1)!.detectedAt.getTime(),
      )
    })

    it('filters by make, category token, year and time range, and counts exactly', async () => {
      const mazda = await paging.list({ limit: 100, filters: { make: 'mazda' } })
      expect(mazda.items.length).toBeGreaterThan(0)
      expect(mazda.items.every((item) => item.make.toLowerCase() === 'mazda')).toBe(true)
      expect(await paging.count({ make: 'MAZDA' })).toBe(mazda.items.length)

      const suv = await paging.list({ limit: 100, filters: { category: 'suv' } })
      expect(suv.items.every((item) => item.category.toLowerCase().includes('suv'))).toBe(true)
      expect(await paging.count({ category: 'SUV' })).toBe(suv.items.length)

      const ranged = await paging.list({
        limit: 100,
        filters: { from: new Date(5_002), to: new Date(5_004), year: 2001 },
      })
      expect(
        ranged.items.every(
          (i) => i.year === 2001 && i.detectedAt.getTime() >= 5_002 && i.detectedAt.getTime() < 5_004,
        ),
      ).toBe(true)
      expect(await paging.count({})).toBe(58)
    })

    it('rejects a malformed cursor with a typed error', async () => {
      await expect(paging.list({ limit: 5, cursor: 'bm90LWEtY3Vyc29y' })).rejects.toBeInstanceOf(
        InvalidCursorError,
      )
    })
  })
})
