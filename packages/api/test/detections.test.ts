import { randomUUID } from 'node:crypto'
import { type DetectionDocument, toDetectionDocument } from '@intellisite/detections-store'
import { beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS } from '../../../test/support/detections-stores.js'
import { createUserAndToken, useTestApp } from './helper.js'

const VEHICLES = [
  { Make: 'Toyota', Model: 'Land Cruiser', Category: 'SUV', Year: 2011 },
  { Make: 'MAZDA', Model: 'CX-5', Category: 'SUV, Pickup', Year: 2019 },
  { Make: 'Mazda', Model: 'MX-5', Category: 'Convertible', Year: 2019 },
  { Make: 'smart', Model: 'fortwo', Category: 'Coupe', Year: 2015 },
  { Make: 'Ford', Model: 'F150', Category: 'Pickup', Year: 2011 },
  { Make: 'Volvo', Model: 'V70', Category: 'Wagon, SUV', Year: 2008 },
]

const BASE = Date.parse('2026-01-01T00:00:00Z')
const topic = `detections-${randomUUID()}`
const offsets = [0, 0, 0]

/** Distinct Kafka coordinates per document; timestamps collide in threes to exercise the id tie-breaker. */
function makeDocuments(count: number, startMs: number): DetectionDocument[] {
  return Array.from({ length: count }, (_, i) => {
    const partition = i % 3
    const vehicle = VEHICLES[(i * 7 + startMs) % VEHICLES.length]!
    const timestamp = startMs + Math.floor(i / 3) * 1000
    const offset = offsets[partition]!++
    return toDetectionDocument(
      vehicle,
      { topic, partition, offset, timestamp },
      vehicle.Category.includes('SUV'),
    )
  })
}

const newestFirst = (a: DetectionDocument, b: DetectionDocument) =>
  b.detectedAt.getTime() - a.detectedAt.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0)

interface Page {
  items: { id: string; detectedAt: string; make: string; model: string; category: string; year: number }[]
  total: number
  skip: number
  limit: number
  nextCursor: string | null
}

describe.each(BACKENDS)('GET /detections and GET /stats (%s)', (backend) => {
  const t = useTestApp({ backend })
  let headers: Record<string, string>
  const stored: DetectionDocument[] = []

  beforeAll(async () => {
    headers = (await createUserAndToken(t)).headers
    const documents = makeDocuments(120, BASE)
    // Insert in several batches, with one batch delivered twice, as a redelivering indexer would.
    for (let i = 0; i < documents.length; i += 40) await t.repository.insertBatch(documents.slice(i, i + 40))
    const again = await t.repository.insertBatch(documents.slice(0, 40))
    expect(again).toEqual({ inserted: 0, duplicates: 40 })
    stored.push(...documents)
  })

  const get = async (url: string) => {
    const response = await t.inject({ method: 'GET', url, headers })
    return { response, body: response.json() }
  }

  it('answers the first page newest first with the documented defaults', async () => {
    const { response, body } = await get('/detections')
    expect(response.statusCode).toBe(200)
    expect(body.total).toBe(120)
    expect(body.skip).toBe(0)
    expect(body.limit).toBe(50)
    expect(body.items).toHaveLength(50)
    expect(body.items.map((d: { id: string }) => d.id)).toEqual(
      [...stored]
        .sort(newestFirst)
        .slice(0, 50)
        .map((d) => d._id),
    )
    expect(body.nextCursor).toEqual(expect.any(String))
    expect(body.items[0]).toEqual({
      id: expect.any(String),
      year: expect.any(Number),
      make: expect.any(String),
      model: expect.any(String),
      category: expect.any(String),
      detectedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      suspicious: expect.any(Boolean),
    })
  })

  it('walks every document exactly once, in order, by cursor while new ones are inserted', async () => {
    const expected = [...stored].sort(newestFirst).map((d) => d._id)
    const seen: string[] = []
    let cursor: string | null = null
    let later = BASE + 10_000_000
    do {
      const { body }: { body: Page } = await get(`/detections?limit=7${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...body.items.map((d) => d.id))
      cursor = body.nextCursor
      // Newer detections arrive while the client reads: they must not shift the pages it has not read yet.
      const fresh = makeDocuments(3, later)
      later += 10_000
      await t.repository.insertBatch(fresh)
      stored.push(...fresh)
    } while (cursor !== null)
    expect(seen).toEqual(expected)
  })

  it('walks a fixed window exactly once by skip/limit while new ones are inserted', async () => {
    const to = new Date(Date.now() + 10 * 365 * 86_400_000)
    const window = stored.filter((d) => d.detectedAt < to).sort(newestFirst)
    const seen: string[] = []
    let later = to.getTime() + 1000
    for (let skip = 0; ; skip += 25) {
      const { body }: { body: Page } = await get(`/detections?skip=${skip}&limit=25&to=${to.toISOString()}`)
      expect(body.total).toBe(window.length)
      seen.push(...body.items.map((d) => d.id))
      const fresh = makeDocuments(2, later)
      later += 10_000
      await t.repository.insertBatch(fresh)
      stored.push(...fresh)
      if (body.items.length < 25) break
    }
    expect(seen).toEqual(window.map((d) => d._id))
    expect(new Set(seen).size).toBe(seen.length)
  })

  it('filters by make, model, category token, year and time range, with exact totals', async () => {
    const all = [...stored].sort(newestFirst)
    const from = new Date(BASE + 10_000)
    const to = new Date(BASE + 25_000)
    const cases: [string, (d: DetectionDocument) => boolean][] = [
      ['make=mazda', (d) => d.makeKey === 'mazda'],
      ['make=SMART', (d) => d.makeKey === 'smart'],
      ['model=cx-5', (d) => d.modelKey === 'cx-5'],
      ['category=suv', (d) => d.categoryTokens.includes('suv')],
      ['category=Pickup', (d) => d.categoryTokens.includes('pickup')],
      ['year=2019', (d) => d.year === 2019],
      [
        'make=mazda&year=2019&category=convertible',
        (d) => d.makeKey === 'mazda' && d.categoryKey === 'convertible',
      ],
      [`from=${from.toISOString()}&to=${to.toISOString()}`, (d) => d.detectedAt >= from && d.detectedAt < to],
      ['from=2026-01-01&to=2026-01-02', (d) => d.detectedAt.getTime() < BASE + 86_400_000],
      ['make=nonexistent', () => false],
    ]
    for (const [query, predicate] of cases) {
      const expected = all.filter(predicate)
      const { response, body } = await get(`/detections?limit=1000&${query}`)
      expect(response.statusCode, query).toBe(200)
      expect(body.total, query).toBe(expected.length)
      expect(
        body.items.map((d: { id: string }) => d.id),
        query,
      ).toEqual(expected.map((d) => d._id))
    }
    // Sanity: the cases above are not vacuous.
    expect(all.filter((d) => d.categoryTokens.includes('suv')).length).toBeGreaterThan(10)
  })

  const bad: [string, string][] = [
    ['limit=0', 'limit'],
    ['limit=-1', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=2.5', 'limit'],
    ['limit=abc', 'limit'],
    ['skip=-1', 'skip'],
    ['skip=1.5', 'skip'],
    ['skip=ten', 'skip'],
    ['skip=99999999999', 'skip'],
    ['skip=1e400', 'skip'],
    ['year=abc', 'year'],
    ['from=yesterday', 'from'],
    ['to=2026-13-01T00:00:00Z', 'to'],
    ['from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'to'],
    ['from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'to'],
    ['make=', 'make'],
    ['model=a%00b', 'model'],
    ['cursor=abc&skip=10', 'cursor'],
  ]
  it.each(bad)('answers 400 naming the parameter for %s', async (query, parameter) => {
    const { response, body } = await get(`/detections?${query}`)
    expect(response.statusCode).toBe(400)
    expect(body.code).toBe('VALIDATION_FAILED')
    expect(body.errors.map((e: { path: string }) => e.path)).toContain(`/${parameter}`)
    expect(body.errors[0].in).toBe('querystring')
  })

  it.each(['not-a-cursor!', 'Zm9v', Buffer.from('123.has space').toString('base64url')])(
    'answers 400 INVALID_CURSOR for cursor %s',
    async (cursor) => {
      const { response, body } = await get(`/detections?cursor=${encodeURIComponent(cursor)}`)
      expect(response.statusCode).toBe(400)
      expect(body.code).toBe('INVALID_CURSOR')
    },
  )

  it.each(['make', 'model', 'category', 'year'] as const)(
    'counts by %s exactly like an independent count',
    async (dim) => {
      const ids = new Set(await t.store.storedIds())
      const documents = [...new Map(stored.map((d) => [d._id, d])).values()].filter((d) => ids.has(d._id))
      expect(documents).toHaveLength(ids.size)
      const expected = new Map<string, number>()
      for (const d of documents) {
        const key = dim === 'year' ? String(d.year) : d[`${dim}Key`]
        expected.set(key, (expected.get(key) ?? 0) + 1)
      }
      const { response, body } = await get(`/stats?group_by=${dim}`)
      expect(response.statusCode).toBe(200)
      expect(body.group_by).toBe(dim)
      expect(body.total).toBe(documents.length)
      const actual = new Map<string, number>(
        body.items.map((i: { value: string; count: number }) => [i.value.toLowerCase(), i.count]),
      )
      expect(actual).toEqual(expected)
      const counts = body.items.map((i: { count: number }) => i.count)
      expect(counts).toEqual([...counts].sort((a, b) => b - a))
    },
  )

  it('groups by make by default and rejects an unknown dimension', async () => {
    expect((await get('/stats')).body.group_by).toBe('make')
    const { response, body } = await get('/stats?group_by=color')
    expect(response.statusCode).toBe(400)
    expect(body.errors[0]).toMatchObject({ in: 'querystring', path: '/group_by' })
  })
})

describe.each(BACKENDS)('GET /stats/timeseries (%s)', (backend) => {
  const t = useTestApp({ backend })
  let headers: Record<string, string>
  const START = Date.parse('2026-11-23T20:00:00Z')
  const seriesTopic = `series-${randomUUID()}`
  // Minute 0: 3 (Toyota, Toyota, MAZDA), minute 2: 2 (Mazda, Ford), minute 61: 1 (Toyota).
  const vehicles = [
    { at: START + 5_000, Make: 'Toyota', Category: 'SUV' },
    { at: START + 59_999, Make: 'Toyota', Category: 'Sedan' },
    { at: START + 30_000, Make: 'MAZDA', Category: 'SUV, Pickup' },
    { at: START + 120_000, Make: 'Mazda', Category: 'Wagon, SUV' },
    { at: START + 150_000, Make: 'Ford', Category: 'Pickup' },
    { at: START + 61 * 60_000, Make: 'Toyota', Category: 'Coupe' },
  ]
  const documents = vehicles.map((v, offset) =>
    toDetectionDocument(
      { Make: v.Make, Model: 'M', Category: v.Category, Year: 2020 },
      { topic: seriesTopic, partition: 0, offset, timestamp: v.at },
      v.Category.includes('SUV'),
    ),
  )

  beforeAll(async () => {
    headers = (await createUserAndToken(t)).headers
    await t.repository.insertBatch(documents.slice(0, 4))
    // Redelivered with the rest: counted once.
    await t.repository.insertBatch(documents)
  })

  const get = async (url: string) => {
    const response = await t.inject({ method: 'GET', url, headers })
    return { response, body: response.json() }
  }

  it('counts every minute of the range, zeros included, with the suspicious ones', async () => {
    const { response, body } = await get(
      '/stats/timeseries?from=2026-11-23T20:00:30Z&to=2026-11-23T20:03:00Z',
    )
    expect(response.statusCode).toBe(200)
    expect(body).toEqual({
      bucket: 'minute',
      from: '2026-11-23T20:00:00.000Z',
      to: '2026-11-23T20:03:00.000Z',
      group_by: null,
      available: ['minute', 'hour', 'day'],
      points: [
        { start: '2026-11-23T20:00:00.000Z', total: 3, suspicious: 2 },
        { start: '2026-11-23T20:01:00.000Z', total: 0, suspicious: 0 },
        { start: '2026-11-23T20:02:00.000Z', total: 2, suspicious: 1 },
      ],
      groups: [],
    })
  })

  it('groups by make, top N by total over the range, in display spelling', async () => {
    const { body } = await get(
      '/stats/timeseries?bucket=hour&from=2026-11-23T20:00:00Z&to=2026-11-23T21:00:01Z&group_by=make&top=2',
    )
    expect(body.to).toBe('2026-11-23T22:00:00.000Z')
    expect(body.points).toEqual([
      { start: '2026-11-23T20:00:00.000Z', total: 5, suspicious: 3 },
      { start: '2026-11-23T21:00:00.000Z', total: 1, suspicious: 0 },
    ])
    expect(body.group_by).toBe('make')
    expect(body.groups).toHaveLength(2)
    expect(body.groups[0]).toEqual({ value: 'Toyota', total: 3, counts: [2, 1] })
    expect(body.groups[1].value.toLowerCase()).toBe('mazda')
    expect(body.groups[1]).toMatchObject({ total: 2, counts: [2, 0] })
    const stats = (await get('/stats?group_by=make')).body
    expect(stats.items.map((i: { value: string }) => i.value)).toContain(body.groups[1].value)
  })

  it('defaults to the last 60 minutes up to now', async () => {
    const before = Date.now()
    const { body } = await get('/stats/timeseries')
    expect(body.bucket).toBe('minute')
    expect(body.points).toHaveLength(60)
    const to = Date.parse(body.to)
    expect(to % 60_000).toBe(0)
    expect(to).toBeGreaterThanOrEqual(before)
    expect(to - Date.parse(body.from)).toBe(60 * 60_000)
  })

  it.each([
    ['from >= to', '?from=2026-11-23T20:00:00Z&to=2026-11-23T20:00:00Z'],
    ['more than 1500 buckets', '?from=2026-11-20T00:00:00Z&to=2026-11-23T20:00:00Z'],
    ['an unknown bucket', '?bucket=week'],
    ['top above 20', '?group_by=make&top=21'],
    ['a bad date', '?from=yesterday'],
  ])('answers 400 problem+json for %s', async (_, query) => {
    const { response, body } = await get(`/stats/timeseries${query}`)
    expect(response.statusCode).toBe(400)
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(body.code).toBe('VALIDATION_FAILED')
  })

  it('accepts exactly 1500 buckets and needs a token', async () => {
    const ok = await get('/stats/timeseries?bucket=day&from=2022-01-01T00:00:00Z&to=2026-02-09T00:00:00Z')
    expect(ok.response.statusCode).toBe(200)
    expect(ok.body.points).toHaveLength(1500)
    const anonymous = await t.inject({ method: 'GET', url: '/stats/timeseries' })
    expect(anonymous.statusCode).toBe(401)
  })
})

describe('GET /stats/timeseries after downsampling (postgres)', () => {
  const t = useTestApp({ backend: 'postgres' })
  let headers: Record<string, string>
  const at = Date.parse('2026-11-23T20:00:00Z')
  const documents = [0, 1, 2].map((offset) =>
    toDetectionDocument(
      { Make: 'Toyota', Model: 'M', Category: 'SUV', Year: 2020 },
      { topic: `downsampled-${randomUUID()}`, partition: 0, offset, timestamp: at + offset * 60_000 },
      true,
    ),
  )

  beforeAll(async () => {
    headers = (await createUserAndToken(t)).headers
    await t.repository.insertBatch(documents)
    // Minutes kept 7 days, hours 90: a week after those detections, their minutes are gone.
    const day = 86_400_000
    await t.repository.maintain(
      { detectionsMs: null, minuteBucketsMs: 7 * day, hourBucketsMs: 90 * day },
      new Date(at + 9 * day),
    )
  })

  it('answers 400 naming the widths still kept when the range needs dropped minutes', async () => {
    const response = await t.inject({
      method: 'GET',
      url: '/stats/timeseries?bucket=minute&from=2026-11-23T20:00:00Z&to=2026-11-23T21:00:00Z',
      headers,
    })
    expect(response.statusCode).toBe(400)
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/)
    const body = response.json()
    expect(body.code).toBe('TIMESERIES_WIDTH_DROPPED')
    expect(body.detail).toMatch(/minute buckets are kept from 2026-11-24T00:00:00.000Z on/)
    expect(body.detail).toMatch(/widths available for it: hour, day$/)
  })

  it('answers the same range in hours, and says which widths it has', async () => {
    const response = await t.inject({
      method: 'GET',
      url: '/stats/timeseries?bucket=hour&from=2026-11-23T20:00:00Z&to=2026-11-23T22:00:00Z&group_by=make',
      headers,
    })
    expect(response.statusCode).toBe(200)
    const body = response.json()
    expect(body.available).toEqual(['hour', 'day'])
    expect(body.points.map((p: { total: number }) => p.total)).toEqual([3, 0])
    expect(body.groups).toEqual([{ value: 'Toyota', total: 3, counts: [3, 0] }])
  })
})
