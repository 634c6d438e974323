// Throughput and latency of the REST API on the local services: first page, deep page by skip and
// by cursor, filters by make and by category token, stats, the time series, and an authenticated
// route that does no I/O (the floor: HTTP + JWT verify). /stats and the time series are measured at
// a second detection count to show that they stay flat.
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
  encodeCursor,
  openDetectionsStore,
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
/** The seed spans a day, so 24 h of minute buckets are all populated. */
const DAY = 86_400_000
const SEED_START = Math.floor((Date.now() - DAY) / 60_000) * 60_000
const DURATION = Number(args.duration ?? (tiny ? 1 : 3))
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
    close: async () => {},
  }
  const app = await buildApp({ config, pool, store, logger: createLogger('warn'), alerts: floor })
  const address = await app.listen({ host: '127.0.0.1', port: 0 })
  process.once('SIGTERM', () => {
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
  const step = DAY / Math.max(DOCS, STATS_DOCS)
  const batch: DetectionDocument[] = []
  for (let i = from; i < to; i++) {
    const [make, model, category] = MAKES[i % MAKES.length]!
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
async function direct(call: () => Promise<unknown>, slow: boolean): Promise<Sample> {
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
  await Promise.all(slow ? [worker(PAGE_REQUESTS)] : Array.from({ length: CONNECTIONS }, () => worker(0)))
  const seconds = (performance.now() - started) / 1000
  const sorted = latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    Math.round((sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0) * 100) / 100
  return { reqs: latencies.length / seconds, p50: at(0.5), p99: at(0.99), failures: 0 }
}

async function measure(address: string, headers: Record<string, string>, docs: number, cases: Case[]) {
  const runs = new Map<string, Sample[]>()
  // Rounds interleave the cases, so a noisy minute on the shared machine hits all of them.
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      const result = c.store ? await direct(c.store, c.slow) : await http(address, headers, c)
      runs.set(c.label, [...(runs.get(c.label) ?? []), result])
      process.stderr.write(`round ${round + 1}/${ROUNDS} ${docs} docs: ${c.label}\n`)
    }
  }
  return cases.map(({ label }): Measured => {
    const results = runs.get(label)!
    return {
      docs,
      label,
      reqs: median(results.map((r) => r.reqs)),
      p50: median(results.map((r) => r.p50)),
      p99: median(results.map((r) => r.p99)),
      failures: results.reduce((sum, r) => sum + r.failures, 0),
    }
  })
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
    const floor: Case = { label: 'bare authenticated route (floor)', path: '/bench/ping', slow: false }
    const dayFrom = new Date(SEED_START).toISOString()
    const dayTo = new Date(SEED_START + DAY).toISOString()
    const flat: Case[] = [
      { label: 'GET /stats (make)', path: '/stats', slow: false },
      { label: 'GET /stats?group_by=year', path: '/stats?group_by=year', slow: false },
      { label: "store only: repository.stats('make')", store: () => repository.stats('make'), slow: false },
      {
        label: 'GET /stats/timeseries 24 h of minutes',
        path: `/stats/timeseries?bucket=minute&from=${dayFrom}&to=${dayTo}`,
        slow: slowPages,
      },
      {
        label: 'GET /stats/timeseries 24 h of minutes, 1 connection',
        path: `/stats/timeseries?bucket=minute&from=${dayFrom}&to=${dayTo}`,
        slow: slowPages,
        serial: true,
      },
      {
        label: 'GET /stats/timeseries 24 h of minutes, group_by=make, 1 connection',
        path: `/stats/timeseries?bucket=minute&from=${dayFrom}&to=${dayTo}&group_by=make`,
        slow: slowPages,
        serial: true,
      },
      {
        label: 'store only: repository.timeseries 24 h of minutes',
        store: () =>
          repository.timeseries({
            bucket: 'minute',
            from: new Date(SEED_START),
            to: new Date(SEED_START + DAY),
          }),
        slow: slowPages,
      },
    ]
    const sizes = [...new Set([DOCS, STATS_DOCS].filter((n) => n > 0))].sort((a, b) => a - b)
    const rows: Measured[] = []
    const rss: string[] = []
    let seeded = 0
    for (const size of sizes) {
      await seed(repository, seeded, size)
      seeded = size
      const cases = [floor, ...flat]
      if (size === DOCS) {
        const [atDepth] = (await repository.list({ limit: 1, skip: Math.max(0, deep - 1) })).items
        const cursor = atDepth ? encodeCursor(atDepth.detectedAt, atDepth.id) : ''
        const page = (label: string, path: string): Case => ({ label, path, slow: slowPages })
        cases.push(
          page('GET /detections?limit=50 first page', '/detections?limit=50'),
          page(`GET /detections skip=${deep}`, `/detections?limit=50&skip=${deep}`),
          page(`GET /detections cursor at ${deep}`, `/detections?limit=50&cursor=${cursor}`),
          page('GET /detections?make=mazda', '/detections?limit=50&make=mazda'),
          page('GET /detections?category=suv', '/detections?limit=50&category=suv'),
          {
            label: 'store only: list + count, first page',
            store: () => Promise.all([repository.list({ limit: 50 }), repository.count()]),
            slow: slowPages,
          },
        )
        if (sqlPool && atDepth) {
          const columns = 'd.id, d.detected_at, d.year, d.make, d.model, d.category, d.suspicious'
          const order = 'ORDER BY d.detected_at DESC, d.id DESC LIMIT 51'
          const sql = (label: string, text: string, values: unknown[] = []): Case => ({
            label: `pg only: ${label}`,
            store: () => sqlPool.query(text, values),
            slow: false,
          })
          cases.push(
            sql('first page', `SELECT ${columns} FROM detections d ${order}`),
            sql(
              `cursor page at ${deep}`,
              `SELECT ${columns} FROM detections d WHERE (d.detected_at, d.id) < ($1, $2) ${order}`,
              [atDepth.detectedAt, atDepth.id],
            ),
            sql('make page', `SELECT ${columns} FROM detections d WHERE d.make_key = 'mazda' ${order}`),
            sql(
              'category token page',
              `SELECT ${columns} FROM detection_category_tokens t JOIN detections d ON d.id = t.id ` +
                `WHERE t.token = 'suv' ORDER BY t.detected_at DESC, t.id DESC LIMIT 51`,
            ),
          )
        }
      }
      rows.push(...(await measure(address, headers, size, cases)))
      rss.push(`${size}: ${rssMiB(child.pid!, 'VmRSS').toFixed(0)} MiB`)
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
        `Detections seeded through repository.insertBatch (the indexer's write: rows, stats and buckets in ` +
        `one statement), spread over 24 h. /detections cases at ${DOCS} detections; /stats and the time ` +
        `series at ${sizes.join(' and ')}. "store only" rows: the same repository calls from the bench ` +
        'process without HTTP; "pg only" rows: the page SQL on a plain pg pool (the query floor). ' +
        `p50 ÷ reference: /detections rows against the first page, rows at ${sizes.at(-1)} against the ` +
        `same case at ${smallest} (flatness).\n`,
    )
    console.log(
      '| detections | case | req/s | p50 ms | p99 ms | req/s ÷ floor | p50 ÷ reference | non-2xx / errors |',
    )
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      const floorRow = find(r.docs, floor.label)!
      const reference = r.label.startsWith('GET /detections')
        ? firstPage
        : r.docs !== smallest && r.label !== floor.label
          ? find(smallest, r.label)
          : undefined
      const ratio =
        reference && reference !== r && reference.p50 > 0 ? (r.p50 / reference.p50).toFixed(2) : '—'
      console.log(
        `| ${r.docs} | ${r.label} | ${Math.round(r.reqs * 10) / 10} | ${r.p50} | ${r.p99} | ` +
          `${(r.reqs / floorRow.reqs).toPrecision(2)} | ${ratio} | ${r.failures} |`,
      )
    }
    console.log(`\nAPI process RSS after each size (VmRSS): ${rss.join(', ')}`)
    console.log(`API process peak RSS (VmHWM): ${peak.toFixed(0)} MiB`)
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
