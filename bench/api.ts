// Throughput and latency of the REST API on the local services: first page, deep page by skip and
// by cursor, filters by make, category token and year, stats, the time series, and an authenticated
// route that does no I/O (the floor: HTTP + JWT verify). /stats and the time series are measured at
// a second detection count to show that they stay flat. The first page, /stats and the time series
// are also measured on one connection (the latency one waiting client sees), each beside its floor. On PostgreSQL also: bytes on disk per
// detection, and retention dropping the oldest day while /detections is under load.
//
//   node --conditions=development --import tsx bench/api.ts                  # PostgreSQL: 1M detections (all cases), 100k (/stats)
//   node --conditions=development --import tsx bench/api.ts --docs 10000000  # PostgreSQL at 10M (seeding takes long)
//   node --conditions=development --import tsx bench/api.ts --store mongodb  # FerretDB: 10k (all cases), 100k (/stats)
//   node --conditions=development --import tsx bench/api.ts --tiny           # smoke run
//   options: --store postgres|mongodb --docs N --stats-docs M (0: skip) --duration S --connections C
//            --rounds R --page-requests P
//
// Seeds its own users database and detections store (unique names, dropped at the end) through the
// same repository call the indexer makes (insertBatch: detections, stats and buckets in one write).
// The API runs as its own process (this file with --serve), so autocannon does not share its CPU
// time or heap; its RSS is read from /proc after each size and its peak (VmHWM) before it exits.
// On PostgreSQL, "pg only" rows run the page queries straight on a `pg` pool (the query floor).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import type { AlertsFeature } from '../packages/api/src/alerts-feature.js'
import { buildApp } from '../packages/api/src/app.js'
import { loadConfig } from '../packages/api/src/config.js'
import { createLogger } from '../packages/api/src/logger.js'
import { runMigrations } from '../packages/api/src/users/migrate.js'
import {
  type DetectionDocument,
  type DetectionsRepository,
  decodeCursor,
  encodeCursor,
  KEEP_EVERYTHING,
  openDetectionsStore,
  timeseriesTotalsStatement,
  toDetectionDocument,
} from '../packages/detections-store/src/index.js'
import { startServices } from '../scripts/services/services-env.js'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'

const { values: args } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    store: { type: 'string', default: 'postgres' },
    tiny: { type: 'boolean', default: false },
    docs: { type: 'string' },
    'stats-docs': { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
    rounds: { type: 'string' },
    'page-requests': { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const BACKEND = args.store === 'mongodb' ? 'mongodb' : 'postgres'
const PG = BACKEND === 'postgres'
const DOCS = Number(args.docs ?? (tiny ? (PG ? 1_000 : 300) : PG ? 1_000_000 : 10_000))
const STATS_DOCS = Number(args['stats-docs'] ?? (tiny ? (PG ? 300 : 1_000) : 100_000))
/**
 * On PostgreSQL the seed spans 31 days up to now, so 30 days of hours and the last 24 h of minutes
 * are all populated, and retention (30 days) has a whole day to drop at the end. On FerretDB one
 * day: its time-series counters are a document per partition and hour, and writing a month of them
 * for a few thousand detections only measures FerretDB's write locks (SQLite `database is locked`).
 */
const DAY = 86_400_000
const SEED_DAYS = PG ? 31 : 1
const SEED_START = Math.floor((Date.now() - SEED_DAYS * DAY) / 60_000) * 60_000
/** The API refuses deeper offsets (use the cursor); the skip case stops there. */
const MAX_SKIP = 1_000_000
const DURATION = Number(args.duration ?? (tiny ? 0.15 : 3))
const CONNECTIONS = Number(args.connections ?? 10)
const ROUNDS = Number(args.rounds ?? (tiny ? 1 : 3))
const PAGE_REQUESTS = Number(args['page-requests'] ?? (tiny ? 2 : 3))
const root = new URL('..', import.meta.url).pathname

function serviceEnv(): Record<string, string> {
  if (process.env.DATABASE_URL && process.env.MONGO_URL) {
    return { DATABASE_URL: process.env.DATABASE_URL, MONGO_URL: process.env.MONGO_URL }
  }
  return startServices({ log: 'inherit' })
}

/** The API process: the app as main.ts builds it, plus the floor route; prints its address. */
async function serve(): Promise<void> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn' })
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 })
  // The run's end drops the databases: an idle connection ended then is no failure of the run.
  pool.on('error', () => {})
  await runMigrations(pool)
  const store = openDetectionsStore(config.DETECTIONS_STORE_URL)
  // A route with authentication and nothing else, plugged in through the app's extension seam.
  const floor: AlertsFeature = {
    plugin: async (app) => {
      app.get('/bench/ping', { preHandler: app.authenticate, schema: { hide: true } }, async () => ({
        ok: true,
      }))
    },
    ready: () => true,
  }
  const app = await buildApp({
    config,
    pool,
    store,
    logger: createLogger('warn'),
    alerts: floor,
    rulesPublisher: false,
  })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.once('SIGTERM', () => {
    // The run is over: autocannon can leave a connection with a request half sent, which the
    // server would otherwise wait for until its keep-alive timeout (about a minute).
    app.server.closeAllConnections()
    void app
      .close()
      .then(() => Promise.all([pool.end(), store.close()]))
      .finally(() => process.exit(0))
  })
  console.log(JSON.stringify({ address }))
}

const MAKES = [
  ['Toyota', 'Land Cruiser', 'SUV'],
  ['MAZDA', 'CX-5', 'SUV, Pickup'],
  ['Ford', 'F150', 'Pickup'],
  ['Honda', 'Civic', 'Sedan'],
  ['Volvo', 'V70', 'Wagon, SUV'],
  ['smart', 'fortwo', 'Coupe'],
] as const

/** Detections `from`..`to`-1 of one synthetic stream, oldest first (later seeds are newer). */
async function seed(repository: DetectionsRepository, from: number, to: number) {
  const topic = 'bench-api'
  const start = SEED_START
  const step = (SEED_DAYS * DAY) / Math.max(DOCS, STATS_DOCS)
  const batch: DetectionDocument[] = []
  for (let i = from; i < to; i++) {
    // Makes cycle across the partitions (not in step with them), so every make is counted in every
    // shard, as detections of real cameras are.
    const [make, model, category] = MAKES[Math.floor(i / 3) % MAKES.length]!
    batch.push(
      toDetectionDocument(
        { Make: make, Model: model, Category: category, Year: 2000 + (i % 25) },
        { topic, partition: i % 3, offset: Math.floor(i / 3), timestamp: Math.floor(start + i * step) },
        category.includes('SUV'),
      ),
    )
    if (batch.length === 5_000 || i === to - 1) {
      await repository.insertBatch(batch.splice(0))
      process.stderr.write(`\rseeded ${i + 1}/${to}`)
    }
  }
  process.stderr.write('\n')
}

function rssMiB(pid: number, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no ${field} for ${pid}`)
  return Number(match[1]) / 1024
}

interface Case {
  label: string
  /** An HTTP path driven by autocannon, or a store call timed in this process (the reference). */
  path?: string
  store?: () => Promise<unknown>
  /** Slow cases (a FerretDB full scan per request) run a fixed number of requests on one connection. */
  slow: boolean
  /** Latency cases: one connection for the whole duration (a client waiting for its answer). */
  serial?: boolean
  /** The label of the row that runs this case's SQL straight on a pg pool (its floor). */
  floor?: string
}

interface Sample {
  reqs: number
  p50: number
  p99: number
  failures: number
}

interface Measured extends Sample {
  docs: number
  label: string
}

/** The floor row of a /detections case, by its label. */
function caseFloor(label: string): string | undefined {
  if (label.endsWith('first page')) return 'pg only: first page'
  if (label.endsWith('first page, 1 connection')) return 'pg only: first page, 1 connection'
  const cursor = /^GET \/detections cursor at (\d+)$/.exec(label)
  if (cursor) return `pg only: cursor page at ${cursor[1]}`
  if (label.endsWith('make=mazda')) return 'pg only: make page'
  if (label.endsWith('category=suv')) return 'pg only: category token page'
  if (label.endsWith('year=2010')) return 'pg only: year page'
  return undefined
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

async function http(address: string, headers: Record<string, string>, c: Case): Promise<Sample> {
  const check = await fetch(`${address}${c.path}`, { headers })
  if (check.status !== 200) throw new Error(`${c.path}: ${check.status} ${await check.text()}`)
  const r = await autocannon({
    url: `${address}${c.path}`,
    headers,
    ...(c.slow
      ? { connections: 1, amount: PAGE_REQUESTS }
      : { connections: c.serial ? 1 : CONNECTIONS, duration: DURATION }),
    timeout: 120,
  })
  return {
    // One connection: throughput is 1 / latency (autocannon's own clock counts whole seconds).
    reqs: c.slow
      ? 1000 / r.latency.mean
      : r.requests.total / ((r.finish.getTime() - r.start.getTime()) / 1000),
    p50: r.latency.p50,
    p99: r.latency.p99,
    failures: r.non2xx + r.errors + r.timeouts,
  }
}

/** The same load shape as autocannon's (connections or a fixed count), straight on the repository. */
async function direct(call: () => Promise<unknown>, slow: boolean, serial = false): Promise<Sample> {
  const latencies: number[] = []
  const started = performance.now()
  const until = started + DURATION * 1000
  const worker = async (amount: number) => {
    for (let i = 0; slow ? i < amount : performance.now() < until; i++) {
      const t = performance.now()
      await call()
      latencies.push(performance.now() - t)
    }
  }
  await Promise.all(
    slow ? [worker(PAGE_REQUESTS)] : Array.from({ length: serial ? 1 : CONNECTIONS }, () => worker(0)),
  )
  const seconds = (performance.now() - started) / 1000
  const sorted = latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    Math.round((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0) * 100) / 100
  return { reqs: latencies.length / seconds, p50: at(0.5), p99: at(0.99), failures: 0 }
}

/**
 * Every case, `ROUNDS` times interleaved, into `into` (medians of rounds). A case that fails stops
 * the measuring, but what was measured until then is kept in `into` before the error goes on.
 */
async function measure(
  address: string,
  headers: Record<string, string>,
  docs: number,
  cases: Case[],
  into: Measured[],
): Promise<void> {
  const runs = new Map<string, Sample[]>()
  try {
    // Rounds interleave the cases, so a noisy minute on the shared machine hits all of them.
    for (let round = 0; round < ROUNDS; round++) {
      for (const c of cases) {
        const result = c.store ? await direct(c.store, c.slow, c.serial) : await http(address, headers, c)
        runs.set(c.label, [...(runs.get(c.label) ?? []), result])
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${docs} docs: ${c.label}\n`)
      }
    }
  } finally {
    for (const { label } of cases) {
      const results = runs.get(label)
      if (!results) continue
      into.push({
        docs,
        label,
        reqs: median(results.map((r) => r.reqs)),
        p50: median(results.map((r) => r.p50)),
        p99: median(results.map((r) => r.p99)),
        failures: results.reduce((sum, r) => sum + r.failures, 0),
      })
    }
  }
}

/** Bytes on disk of each part of the PostgreSQL store, partitions summed into their table. */
async function diskSizes(pool: pg.Pool): Promise<{ part: string; bytes: number }[]> {
  const { rows } = await pool.query<{ part: string; bytes: string }>(
    `WITH parts AS (
       SELECT t.name, p.relid FROM unnest(ARRAY['detections', 'detection_category_tokens', 'detection_minutes',
         'detection_minute_runs', 'detection_hours', 'detection_hour_runs']) AS t(name),
         pg_partition_tree(t.name::regclass) AS p WHERE p.isleaf
       UNION ALL
       SELECT t.name, t.name::regclass FROM unnest(ARRAY['detection_days', 'detection_stats']) AS t(name)
     )
     SELECT name || ' table' AS part, sum(pg_table_size(relid))::bigint AS bytes FROM parts GROUP BY name
     UNION ALL
     SELECT name || ' indexes', sum(pg_indexes_size(relid))::bigint FROM parts GROUP BY name
     ORDER BY 1`,
  )
  return rows.map((row) => ({ part: row.part, bytes: Number(row.bytes) }))
}

/**
 * Retention at this size: the first page under load, once alone and once while the store's
 * maintenance drops the days older than 30 (DETACH … CONCURRENTLY, then DROP), and how long the
 * drop took.
 */
async function retentionUnderLoad(
  address: string,
  headers: Record<string, string>,
  repository: DetectionsRepository,
  pool: pg.Pool,
) {
  const policy = { detectionsMs: 30 * DAY, minuteBucketsMs: null, hourBucketsMs: null }
  const cutoff = Math.floor((Date.now() - policy.detectionsMs) / DAY) * DAY
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM detections WHERE detected_at < $1',
    [new Date(cutoff)],
  )
  const page: Case = { label: 'first page', path: '/detections?limit=50', slow: false }
  const alone = await http(address, headers, page)
  const load = http(address, headers, page)
  await new Promise((resolve) => setTimeout(resolve, (DURATION * 1000) / 3))
  const started = performance.now()
  const result = await repository.maintain(policy)
  const dropMs = performance.now() - started
  const during = await load
  return { alone, during, dropMs, rowsDropped: Number(rows[0]?.n ?? 0), dropped: result.dropped }
}

/** The address the API process announces; its log lines (JSON too, e.g. a warning) come before. */
function announcedAddress(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      let address: unknown
      try {
        address = (JSON.parse(line) as { address?: unknown }).address
      } catch {}
      if (typeof address !== 'string') return
      lines.close()
      // Keep draining: a full pipe would block the API's synchronous log writes.
      child.stdout?.resume()
      resolve(address)
    })
    child.once('exit', (code) => reject(new Error(`API process exited with ${code}`)))
  })
}

async function main(): Promise<void> {
  const env = serviceEnv()
  const name = `api_bench_${randomUUID().replaceAll('-', '').slice(0, 16)}`
  const admin = new pg.Client({ connectionString: env.DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const dbUrl = new URL(env.DATABASE_URL!)
  dbUrl.pathname = `/${name}`
  const storeUrl = new URL(PG ? env.DATABASE_URL! : env.MONGO_URL!)
  storeUrl.pathname = `/${PG ? `${name}_detections` : name}`
  const store = openDetectionsStore(storeUrl.toString())
  const { repository } = store
  const sqlPool = PG ? new pg.Pool({ connectionString: storeUrl.toString(), max: CONNECTIONS }) : undefined
  sqlPool?.on('error', () => {})
  let server: ChildProcess | undefined

  try {
    await repository.ensureIndexes()

    const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'bench/api.ts', '--serve'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: {
        ...process.env,
        NODE_ENV: 'production',
        DATABASE_URL: dbUrl.toString(),
        DETECTIONS_STORE_URL: storeUrl.toString(),
        JWT_SECRET: randomBytes(48).toString('base64url'),
        BCRYPT_COST: '4',
      },
    })
    server = child
    const address = await announcedAddress(child)
    const credentials = JSON.stringify({ username: 'bench', password: 'bench-password' })
    const json = { 'content-type': 'application/json' }
    await fetch(`${address}/users`, { method: 'POST', headers: json, body: credentials })
    const login = await fetch(`${address}/auth/token`, { method: 'POST', headers: json, body: credentials })
    const headers = {
      authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}`,
    }

    // FerretDB answers a sorted find with a full scan: its page cases run a few requests each.
    const slowPages = !PG
    const deep = Math.floor(DOCS * 0.9)
    const skipDepth = Math.min(deep, MAX_SKIP)
    const floor: Case = { label: 'bare authenticated route (floor)', path: '/bench/ping', slow: false }
    const seedEnd = SEED_START + SEED_DAYS * DAY
    const dayFrom = new Date(seedEnd - DAY)
    const monthFrom = new Date(Math.floor((seedEnd - 30 * DAY) / 3_600_000) * 3_600_000)
    const to = new Date(seedEnd)
    const minutes = `/stats/timeseries?bucket=minute&from=${dayFrom.toISOString()}&to=${to.toISOString()}`
    const hours = `/stats/timeseries?bucket=hour&from=${monthFrom.toISOString()}&to=${to.toISOString()}`
    /** The SQL a case's read runs, straight on a plain pool, as its floor row (PostgreSQL only). */
    // Named statements, as the store's own reads are: planned a few times, then a cached plan.
    const sql = (label: string, text: string, values: unknown[] = [], serial = false): Case[] =>
      sqlPool
        ? [
            {
              label: `pg only: ${label}`,
              store: () => sqlPool.query({ name: `bench_${label.replace(/\W+/g, '_')}`, text, values }),
              slow: false,
              serial,
            },
          ]
        : []
    /** The ungrouped series' own statement: the open buckets' rows and the closed ones' runs. */
    const bucketsSql = (bucket: 'minute' | 'hour', from: Date) => {
      const statement = timeseriesTotalsStatement(bucket, from, to)
      return [statement.text, statement.values] as const
    }
    const statsSql = `SELECT min(label) AS value, sum(count) AS count FROM detection_stats WHERE dim = $1
         GROUP BY value_key HAVING sum(count) > 0 ORDER BY sum(count) DESC, min(label) COLLATE "C"`
    const flat: Case[] = [
      { label: 'GET /stats (make)', path: '/stats', slow: false, floor: 'pg only: stats (make)' },
      {
        label: 'GET /stats (make), 1 connection',
        path: '/stats',
        slow: false,
        serial: true,
        floor: 'pg only: stats (make), 1 connection',
      },
      { label: 'GET /stats?group_by=year', path: '/stats?group_by=year', slow: false },
      { label: "store only: repository.stats('make')", store: () => repository.stats('make'), slow: false },
      ...sql('stats (make)', statsSql, ['make']),
      ...sql('stats (make), 1 connection', statsSql, ['make'], true),
      { label: 'GET /stats/timeseries 24 h of minutes', path: minutes, slow: slowPages },
      {
        label: 'GET /stats/timeseries 24 h of minutes, 1 connection',
        path: minutes,
        slow: slowPages,
        serial: true,
        floor: 'pg only: 24 h of minutes, 1 connection',
      },
      {
        label: 'GET /stats/timeseries 24 h of minutes, group_by=make, 1 connection',
        path: `${minutes}&group_by=make`,
        slow: slowPages,
        serial: true,
        floor: 'store only: 24 h of minutes, group_by=make, 1 connection',
      },
      {
        label: 'GET /stats/timeseries 30 days of hours, 1 connection',
        path: hours,
        slow: slowPages,
        serial: true,
        floor: 'pg only: 30 days of hours, 1 connection',
      },
      {
        label: 'GET /stats/timeseries 30 days of hours, group_by=make, 1 connection',
        path: `${hours}&group_by=make`,
        slow: slowPages,
        serial: true,
        floor: 'store only: 30 days of hours, group_by=make, 1 connection',
      },
      {
        label: 'store only: 24 h of minutes, group_by=make, 1 connection',
        store: () => repository.timeseries({ bucket: 'minute', from: dayFrom, to, groupBy: 'make' }),
        slow: slowPages,
        serial: true,
      },
      {
        label: 'store only: 30 days of hours, group_by=make, 1 connection',
        store: () => repository.timeseries({ bucket: 'hour', from: monthFrom, to, groupBy: 'make' }),
        slow: slowPages,
        serial: true,
      },
      ...(PG
        ? [
            ...sql('24 h of minutes, 1 connection', ...bucketsSql('minute', dayFrom), true),
            ...sql('30 days of hours, 1 connection', ...bucketsSql('hour', monthFrom), true),
          ]
        : []),
    ]
    const sizes = [...new Set([DOCS, STATS_DOCS].filter((n) => n > 0))].sort((a, b) => a - b)
    /** Sizes whose bytes on disk are reported: every measured size, and 1M on the way to more. */
    const sizeCheckpoints = [...new Set([...sizes, ...(DOCS > 1_000_000 ? [1_000_000] : [])])].sort(
      (a, b) => a - b,
    )
    const rows: Measured[] = []
    const rss: string[] = []
    const disk = new Map<number, { part: string; bytes: number }[]>()
    let retention: Awaited<ReturnType<typeof retentionUnderLoad>> | undefined
    let failure: unknown
    let seeded = 0
    try {
      for (const size of sizes) {
        for (const checkpoint of sizeCheckpoints.filter((n) => n > seeded && n <= size)) {
          await seed(repository, seeded, checkpoint)
          seeded = checkpoint
          if (sqlPool) {
            // The pass every indexer runs at start and then hourly: closed buckets folded.
            await repository.maintain(KEEP_EVERYTHING)
            await sqlPool.query('ANALYZE')
            disk.set(checkpoint, await diskSizes(sqlPool))
          }
        }
        const cases = [floor, ...flat]
        if (size === DOCS) {
          // The row `deep` rows down, for a cursor there: the API refuses offsets past MAX_SKIP, so a
          // deep page is a cursor page, as a client would reach it.
          const pageAt = async (depth: number) => {
            if (!sqlPool) {
              const [row] = (await repository.list({ limit: 1, skip: Math.max(0, depth - 1) })).items
              return row && encodeCursor(row.detectedAt, row.id)
            }
            const { rows: found } = await sqlPool.query<{ detected_at: Date; id: string }>(
              'SELECT detected_at, id FROM detections ORDER BY detected_at DESC, id DESC OFFSET $1 LIMIT 1',
              [Math.max(0, depth - 1)],
            )
            return found[0] && encodeCursor(found[0].detected_at, found[0].id)
          }
          const cursor = (await pageAt(deep)) ?? ''
          const at = cursor ? decodeCursor(cursor) : undefined
          const page = (label: string, path: string, floorLabel?: string): Case => ({
            label,
            path,
            slow: slowPages,
            ...(floorLabel && { floor: `pg only: ${floorLabel}` }),
          })
          const columns = 'd.id, d.detected_at, d.year, d.make, d.model, d.category, d.suspicious'
          const order = 'ORDER BY d.detected_at DESC, d.id DESC LIMIT 51'
          cases.push(
            page('GET /detections?limit=50 first page', '/detections?limit=50', 'first page'),
            {
              ...page('GET /detections?limit=50 first page, 1 connection', '/detections?limit=50'),
              serial: true,
            },
            page(`GET /detections skip=${skipDepth}`, `/detections?limit=50&skip=${skipDepth}`),
            page(
              `GET /detections cursor at ${deep}`,
              `/detections?limit=50&cursor=${cursor}`,
              `cursor page at ${deep}`,
            ),
            page('GET /detections?make=mazda', '/detections?limit=50&make=mazda', 'make page'),
            page('GET /detections?category=suv', '/detections?limit=50&category=suv', 'category token page'),
            page('GET /detections?year=2010', '/detections?limit=50&year=2010', 'year page'),
            {
              label: 'store only: list + count, first page',
              store: () => Promise.all([repository.list({ limit: 50 }), repository.count()]),
              slow: slowPages,
            },
            ...sql('first page', `SELECT ${columns} FROM detections d ${order}`),
            ...sql('first page, 1 connection', `SELECT ${columns} FROM detections d ${order}`, [], true),
            ...(at
              ? sql(
                  `cursor page at ${deep}`,
                  `SELECT ${columns} FROM detections d WHERE d.detected_at <= $1 AND (d.detected_at, d.id) < ($1, $2) ${order}`,
                  [at.detectedAt, at.id],
                )
              : []),
            ...sql('make page', `SELECT ${columns} FROM detections d WHERE d.make_key = 'mazda' ${order}`),
            ...sql(
              'category token page',
              `SELECT ${columns} FROM (SELECT t.detected_at, t.id FROM detection_category_tokens t ` +
                `WHERE t.token = 'suv' ORDER BY t.detected_at DESC, t.id DESC LIMIT 51) AS t ` +
                'CROSS JOIN LATERAL (SELECT * FROM detections d WHERE d.detected_at = t.detected_at ' +
                'AND d.id = t.id LIMIT 1) AS d ORDER BY t.detected_at DESC, t.id DESC',
            ),
            ...sql('year page', `SELECT ${columns} FROM detections d WHERE d.year = 2010 ${order}`),
          )
        }
        await measure(address, headers, size, cases, rows)
        rss.push(`${size}: ${rssMiB(child.pid!, 'VmRSS').toFixed(0)} MiB`)
      }
      if (sqlPool) retention = await retentionUnderLoad(address, headers, repository, sqlPool)
    } catch (err) {
      failure = err
    }
    const peak = rssMiB(child.pid!)

    const find = (docs: number, label: string) => rows.find((r) => r.docs === docs && r.label === label)
    const firstPage = find(DOCS, 'GET /detections?limit=50 first page')
    const smallest = sizes[0]!
    console.log(
      `\nAPI on ${PG ? 'PostgreSQL' : 'FerretDB 1.24 (MongoDB backend; these rows are FerretDB-bound)'}: ` +
        `${cpus().length} CPUs shared by the API process, autocannon and the database; median of ${ROUNDS} ` +
        `interleaved round(s). Fast cases: ${CONNECTIONS} connections for ${DURATION} s ("1 connection" ` +
        'cases: one client waiting for each answer, the latency a dashboard sees). autocannon reports whole ' +
        'milliseconds; store and pg rows are timed to 0.01 ms. ' +
        (slowPages
          ? `/detections and time-series cases: ${PAGE_REQUESTS} requests on 1 connection per round (FerretDB ` +
            'answers a sorted find with a full scan and an in-memory sort whatever the index; p99 of so few ' +
            'requests is their max). '
          : '') +
        `Detections seeded through repository.insertBatch (the indexer's write: rows, token rows and counters in ` +
        `one transaction), spread over ${SEED_DAYS} days up to now. /detections cases at ${DOCS} detections; /stats ` +
        `and the time series at ${sizes.join(' and ')}. "store only" rows: the same repository calls from the bench ` +
        'process without HTTP; "pg only" rows: the SQL of the read on a plain pg pool, same connections (the ' +
        'query floor). "floor p99" is that row\'s p99 beside the HTTP row. p50 ÷ reference: /detections rows ' +
        `against the first page, rows at ${sizes.at(-1)} against the same case at ${smallest} (flatness).\n`,
    )
    console.log(
      '| detections | case | req/s | p50 ms | p99 ms | req/s ÷ floor | p50 ÷ reference | floor p50 / p99 ms | p99 ÷ floor p99 | non-2xx / errors |',
    )
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      const floorRow = find(r.docs, floor.label)
      const reference = r.label.startsWith('GET /detections')
        ? firstPage
        : r.docs !== smallest && r.label !== floor.label
          ? find(smallest, r.label)
          : undefined
      const ratio =
        reference && reference !== r && reference.p50 > 0 ? (r.p50 / reference.p50).toFixed(2) : '—'
      const sqlFloorLabel = [floor, ...flat].find((c) => c.label === r.label)?.floor ?? caseFloor(r.label)
      const sqlFloor = sqlFloorLabel ? find(r.docs, sqlFloorLabel) : undefined
      console.log(
        `| ${r.docs} | ${r.label} | ${Math.round(r.reqs * 10) / 10} | ${r.p50} | ${r.p99} | ` +
          `${floorRow ? (r.reqs / floorRow.reqs).toPrecision(2) : '—'} | ${ratio} | ` +
          `${sqlFloor ? `${sqlFloor.p50} / ${sqlFloor.p99}` : '—'} | ` +
          `${sqlFloor && sqlFloor.p99 > 0 ? (r.p99 / sqlFloor.p99).toFixed(2) : '—'} | ${r.failures} |`,
      )
    }
    console.log(`\nAPI process RSS after each size (VmRSS): ${rss.join(', ')}`)
    console.log(`API process peak RSS (VmHWM): ${peak.toFixed(0)} MiB`)
    if (disk.size > 0) {
      const parts = [...new Set([...disk.values()].flatMap((d) => d.map((p) => p.part)))]
      const counts = [...disk.keys()]
      console.log(
        '\nBytes on disk (PostgreSQL: table = heap with TOAST, free-space and visibility maps; indexes apart; ' +
          'partitions summed into their table; after ANALYZE, before any VACUUM), and per detection:\n',
      )
      console.log(`| part | ${counts.map((n) => `MiB at ${n} | B/detection at ${n}`).join(' | ')} |`)
      console.log(`|---|${counts.map(() => '---:|---:').join('|')}|`)
      const line = (label: string, bytes: (n: number) => number) =>
        console.log(
          `| ${label} | ${counts.map((n) => `${(bytes(n) / 2 ** 20).toFixed(1)} | ${Math.round(bytes(n) / n)}`).join(' | ')} |`,
        )
      for (const part of parts) line(part, (n) => disk.get(n)?.find((p) => p.part === part)?.bytes ?? 0)
      line('**total**', (n) => (disk.get(n) ?? []).reduce((sum, p) => sum + p.bytes, 0))
    }
    if (retention) {
      console.log(
        `\nRetention at ${DOCS} detections: repository.maintain with a 30-day window drops the partitions of the ` +
          `days wholly older than 30 days (${retention.dropped.join(', ') || 'none'}; ${retention.rowsDropped} ` +
          'detections), by DETACH PARTITION … CONCURRENTLY then DROP TABLE, while autocannon reads the first page ' +
          `(${CONNECTIONS} connections, ${DURATION} s; the drop starts a third into the run). "alone" is the same ` +
          'load just before.\n',
      )
      console.log('| retention | value |')
      console.log('|---|---:|')
      console.log(`| time to drop the expired day(s), ms | ${retention.dropMs.toFixed(0)} |`)
      console.log(`| detections in them | ${retention.rowsDropped} |`)
      console.log(`| first page p50 / p99 ms, alone | ${retention.alone.p50} / ${retention.alone.p99} |`)
      console.log(
        `| first page p50 / p99 ms, while dropping | ${retention.during.p50} / ${retention.during.p99} |`,
      )
      console.log(`| first page non-2xx / errors while dropping | ${retention.during.failures} |`)
    }
    if (failure) {
      console.log(`\n**Stopped early**: ${failure instanceof Error ? failure.message : String(failure)}`)
      process.exitCode = 1
    }
  } finally {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve))
      server.kill('SIGTERM')
      await exited
    }
    await sqlPool?.end()
    await store.close()
    if (PG) await admin.query(`DROP DATABASE IF EXISTS ${name}_detections WITH (FORCE)`)
    else {
      const mongo = new MongoClient(env.MONGO_URL!)
      await mongo.connect()
      await mongo
        .db(name)
        .dropDatabase()
        .catch(() => {})
      await mongo.close()
    }
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

if (args.serve) await serve()
else await main()
