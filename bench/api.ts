// Throughput and latency of the REST API on the local services: first page, deep page by skip and
// by cursor, a filter, stats, and an authenticated route that does no I/O (the floor: HTTP + JWT
// verify). /stats is measured again at a larger detection count to show that it stays flat.
//
//   node --conditions=development --import tsx bench/api.ts            # 10k detections (all cases), 100k (/stats)
//   node --conditions=development --import tsx bench/api.ts --tiny     # smoke run
//   options: --docs N --stats-docs M (0: skip) --duration S --connections C --rounds R --page-requests P
//
// Seeds its own PostgreSQL and MongoDB databases (unique names, dropped at the end) through the
// same repository the indexer uses. The API runs as its own process (this file with --serve), so
// autocannon does not share its CPU time or heap, and its peak RSS (VmHWM) is read from /proc
// before it exits.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
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
  createMongoDetectionsRepository,
  type DetectionDocument,
  encodeCursor,
  openDetectionsStore,
  toDetectionDocument,
} from '../packages/detections-store/src/index.js'

const { values: args } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
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
const DOCS = Number(args.docs ?? (tiny ? 300 : 10_000))
const STATS_DOCS = Number(args['stats-docs'] ?? (tiny ? 1_000 : 100_000))
const DURATION = Number(args.duration ?? (tiny ? 1 : 3))
const CONNECTIONS = Number(args.connections ?? 10)
const ROUNDS = Number(args.rounds ?? (tiny ? 1 : 3))
const PAGE_REQUESTS = Number(args['page-requests'] ?? (tiny ? 2 : 3))
const root = new URL('..', import.meta.url).pathname

function serviceEnv(): Record<string, string> {
  if (process.env.DATABASE_URL && process.env.MONGO_URL) {
    return { DATABASE_URL: process.env.DATABASE_URL, MONGO_URL: process.env.MONGO_URL }
  }
  const script = `${root}scripts/services/services.sh`
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  return Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]))
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
async function seed(
  repository: ReturnType<typeof createMongoDetectionsRepository>,
  from: number,
  to: number,
) {
  const topic = 'bench-api'
  const start = Date.now() - 10_000_000
  const batch: DetectionDocument[] = []
  for (let i = from; i < to; i++) {
    const [make, model, category] = MAKES[i % MAKES.length]!
    batch.push(
      toDetectionDocument(
        { Make: make, Model: model, Category: category, Year: 2000 + (i % 25) },
        { topic, partition: i % 3, offset: Math.floor(i / 3), timestamp: start + i * 10 },
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

function peakRssMiB(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!match) throw new Error(`no VmHWM for ${pid}`)
  return Number(match[1]) / 1024
}

interface Case {
  label: string
  /** An HTTP path driven by autocannon, or a store call timed in this process (the reference). */
  path?: string
  store?: () => Promise<unknown>
  /** Slow cases (a FerretDB full scan per request) run a fixed number of requests on one connection. */
  slow: boolean
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
      : { connections: CONNECTIONS, duration: DURATION }),
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
    Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0)
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

function nextLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', (line) => {
      lines.close()
      resolve(line)
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
  const mongoUrl = new URL(env.MONGO_URL!)
  mongoUrl.pathname = `/${name}`
  const mongo = new MongoClient(env.MONGO_URL!)
  await mongo.connect()
  const db = mongo.db(name)
  let server: ChildProcess | undefined

  try {
    const repository = createMongoDetectionsRepository(db)
    await repository.ensureIndexes()
    await seed(repository, 0, DOCS)

    const child = spawn(
      process.execPath,
      ['--conditions=development', '--import', 'tsx', 'bench/api.ts', '--serve'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          NODE_ENV: 'production',
          DATABASE_URL: dbUrl.toString(),
          DETECTIONS_STORE_URL: mongoUrl.toString(),
          JWT_SECRET: randomBytes(48).toString('base64url'),
          BCRYPT_COST: '4',
        },
      },
    )
    server = child
    const { address } = JSON.parse(await nextLine(child)) as { address: string }
    const credentials = JSON.stringify({ username: 'bench', password: 'bench-password' })
    const json = { 'content-type': 'application/json' }
    await fetch(`${address}/users`, { method: 'POST', headers: json, body: credentials })
    const login = await fetch(`${address}/auth/token`, { method: 'POST', headers: json, body: credentials })
    const headers = {
      authorization: `Bearer ${((await login.json()) as { access_token: string }).access_token}`,
    }

    const deep = Math.max(0, DOCS - 100)
    const [atDepth] = await repository.collection
      .find({}, { projection: { detectedAt: 1 } })
      .sort({ detectedAt: -1, _id: -1 })
      .skip(Math.max(0, deep - 1)) // MongoDB cursor offset (not a skipped test)
      .limit(1)
      .toArray()
    const cursor = atDepth ? encodeCursor(atDepth.detectedAt, atDepth._id) : ''
    const floor: Case = { label: 'bare authenticated route (floor)', path: '/bench/ping', slow: false }
    const stats: Case[] = [
      { label: 'GET /stats (make)', path: '/stats', slow: false },
      { label: 'GET /stats?group_by=year', path: '/stats?group_by=year', slow: false },
      { label: "store only: repository.stats('make')", store: () => repository.stats('make'), slow: false },
    ]
    const rows = await measure(address, headers, DOCS, [
      floor,
      { label: 'GET /detections?limit=50 first page', path: '/detections?limit=50', slow: true },
      { label: `GET /detections skip=${deep}`, path: `/detections?limit=50&skip=${deep}`, slow: true },
      {
        label: `GET /detections cursor at ${deep}`,
        path: `/detections?limit=50&cursor=${cursor}`,
        slow: true,
      },
      { label: 'GET /detections?make=mazda', path: '/detections?limit=50&make=mazda', slow: true },
      {
        label: 'store only: list + count, first page',
        store: () => Promise.all([repository.list({ limit: 50 }), repository.count()]),
        slow: true,
      },
      ...stats,
    ])
    if (STATS_DOCS > DOCS) {
      await seed(repository, DOCS, STATS_DOCS)
      rows.push(...(await measure(address, headers, STATS_DOCS, [floor, ...stats])))
    }
    const peak = peakRssMiB(child.pid!)

    const find = (docs: number, label: string) => rows.find((r) => r.docs === docs && r.label === label)!
    const firstPage = find(DOCS, 'GET /detections?limit=50 first page')
    console.log(
      `\nAPI: ${cpus().length} CPUs shared by the API process, autocannon, FerretDB and PostgreSQL; median of ` +
        `${ROUNDS} interleaved round(s). Fast cases: ${CONNECTIONS} connections for ${DURATION} s. /detections ` +
        `cases: ${PAGE_REQUESTS} requests on 1 connection per round (FerretDB 1.24 answers a sorted find with ` +
        'a full scan and an in-memory sort whatever the index, so each page costs time proportional to the ' +
        `collection; they are measured at ${DOCS} detections only, p99 of so few requests is their max). ` +
        `/stats reads only the counter documents; it is measured at ${DOCS} and ${STATS_DOCS} detections. ` +
        '"store only" rows: the same repository calls with the same load shape from the bench process, ' +
        "without HTTP (the store's limit). p50 ÷ reference: /detections rows against the first page, " +
        `rows at ${STATS_DOCS} against the same case at ${DOCS}.\n`,
    )
    console.log(
      '| detections | case | req/s | p50 ms | p99 ms | req/s ÷ floor | p50 ÷ reference | non-2xx / errors |',
    )
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|')
    for (const r of rows) {
      const floorRow = find(r.docs, floor.label)
      // Reference: the first page for /detections rows, the same route at the smaller size for /stats.
      const reference = r.label.startsWith('GET /detections')
        ? firstPage
        : r.docs !== DOCS && r.label !== floor.label
          ? find(DOCS, r.label)
          : undefined
      const ratio = reference && reference !== r ? (r.p50 / Math.max(reference.p50, 1)).toFixed(2) : '—'
      console.log(
        `| ${r.docs} | ${r.label} | ${Math.round(r.reqs * 10) / 10} | ${r.p50} | ${r.p99} | ` +
          `${(r.reqs / floorRow.reqs).toPrecision(2)} | ${ratio} | ${r.failures} |`,
      )
    }
    console.log(`\nAPI process peak RSS (VmHWM): ${peak.toFixed(0)} MiB`)
  } finally {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve))
      server.kill('SIGTERM')
      await exited
    }
    await db.dropDatabase().catch(() => {})
    await mongo.close()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

if (args.serve) await serve()
else await main()
