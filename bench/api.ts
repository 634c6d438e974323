// Throughput and latency of the REST API on the local services: first page, deep page by skip and
// by cursor, stats, and an authenticated route that does no I/O (the floor: HTTP + JWT verify).
//
//   node --conditions=development --import tsx bench/api.ts            # 100k detections, 10 s per case
//   node --conditions=development --import tsx bench/api.ts --tiny     # smoke run: 1k detections, 1 s
//   options: --docs N --duration S --connections C
//
// Seeds its own PostgreSQL and MongoDB databases (unique names, dropped at the end) through the
// same repository the indexer uses, runs the API in this process and autocannon in a worker thread.
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
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
  createDetectionsRepository,
  type DetectionDocument,
  encodeCursor,
  toDetectionDocument,
} from '../packages/detections-store/src/index.js'

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    docs: { type: 'string' },
    duration: { type: 'string' },
    connections: { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const DOCS = Number(args.docs ?? (tiny ? 1_000 : 100_000))
const DURATION = Number(args.duration ?? (tiny ? 1 : 10))
const CONNECTIONS = Number(args.connections ?? 10)

function serviceEnv(): Record<string, string> {
  if (process.env.DATABASE_URL && process.env.MONGO_URL) {
    return { DATABASE_URL: process.env.DATABASE_URL, MONGO_URL: process.env.MONGO_URL }
  }
  const script = new URL('../scripts/services/services.sh', import.meta.url).pathname
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  return Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]))
}

const MAKES = [
  ['Toyota', 'Land Cruiser', 'SUV'],
  ['MAZDA', 'CX-5', 'SUV, Pickup'],
  ['Ford', 'F150', 'Pickup'],
  ['Honda', 'Civic', 'Sedan'],
  ['Volvo', 'V70', 'Wagon, SUV'],
  ['smart', 'fortwo', 'Coupe'],
] as const

async function seed(repository: ReturnType<typeof createDetectionsRepository>): Promise<void> {
  const topic = `bench-${randomUUID()}`
  const start = Date.now() - DOCS * 10
  const batch: DetectionDocument[] = []
  for (let i = 0; i < DOCS; i++) {
    const [make, model, category] = MAKES[i % MAKES.length]!
    const partition = i % 3
    batch.push(
      toDetectionDocument(
        { Make: make, Model: model, Category: category, Year: 2000 + (i % 25) },
        { topic, partition, offset: Math.floor(i / 3), timestamp: start + i * 10 },
        category.includes('SUV'),
      ),
    )
    if (batch.length === 5_000 || i === DOCS - 1) {
      await repository.insertBatch(batch.splice(0))
      process.stderr.write(`\rseeded ${i + 1}/${DOCS}`)
    }
  }
  process.stderr.write('\n')
}

interface Row {
  name: string
  url: string
  result: autocannon.Result
}

async function main(): Promise<void> {
  const env = serviceEnv()
  const config = loadConfig({ ...env, NODE_ENV: 'test', LOG_LEVEL: 'warn', BCRYPT_COST: '4' })
  const name = `api_bench_${randomUUID().replaceAll('-', '').slice(0, 16)}`

  const admin = new pg.Client({ connectionString: config.DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const dbUrl = new URL(config.DATABASE_URL)
  dbUrl.pathname = `/${name}`
  const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 10 })
  const mongo = new MongoClient(config.MONGO_URL)
  await mongo.connect()
  const db = mongo.db(name)

  try {
    await runMigrations(pool)
    const repository = createDetectionsRepository(db)
    await repository.ensureIndexes()
    await seed(repository)

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
    const app = await buildApp({ config, pool, repository, logger: createLogger('warn'), alerts: floor })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      await app.inject({
        method: 'POST',
        url: '/users',
        payload: { username: 'bench', password: 'bench-password' },
      })
      const login = await app.inject({
        method: 'POST',
        url: '/auth/token',
        payload: { username: 'bench', password: 'bench-password' },
      })
      const headers = { authorization: `Bearer ${login.json().access_token}` }

      const deep = Math.max(0, DOCS - 100)
      const [atDepth] = await repository.collection
        .find({}, { projection: { detectedAt: 1 } })
        .sort({ detectedAt: -1, _id: -1 })
        .skip(Math.max(0, deep - 1))
        .limit(1)
        .toArray()
      const cursor = atDepth ? encodeCursor(atDepth.detectedAt, atDepth._id) : ''

      const cases = [
        ['bare authenticated route (floor)', '/bench/ping'],
        ['GET /detections first page', '/detections?limit=50'],
        [`GET /detections skip=${deep}`, `/detections?limit=50&skip=${deep}`],
        [`GET /detections cursor at ${deep}`, `/detections?limit=50&cursor=${cursor}`],
        ['GET /detections?make=mazda', '/detections?limit=50&make=mazda'],
        ['GET /stats (make)', '/stats'],
        ['GET /stats?group_by=year', '/stats?group_by=year'],
      ] as const

      const rows: Row[] = []
      for (const [label, path] of cases) {
        const check = await app.inject({ method: 'GET', url: path, headers })
        if (check.statusCode !== 200) throw new Error(`${path}: ${check.statusCode} ${check.body}`)
        const result = await autocannon({
          url: `${address}${path}`,
          headers,
          connections: CONNECTIONS,
          duration: DURATION,
          workers: 1,
          timeout: 60,
        })
        rows.push({ name: label, url: path, result })
        process.stderr.write(`done: ${label}\n`)
      }

      console.log(
        `\n${DOCS} detections, ${CONNECTIONS} connections, ${DURATION} s per case, API and autocannon on one ` +
          `machine (${(await import('node:os')).cpus().length} CPUs) with FerretDB and PostgreSQL\n`,
      )
      console.log('| case | req/s (avg) | p50 ms | p99 ms | max ms | non-2xx / errors |')
      console.log('|---|---:|---:|---:|---:|---:|')
      for (const { name: label, result } of rows) {
        const r = result
        console.log(
          `| ${label} | ${Math.round(r.requests.average)} | ${r.latency.p50} | ${r.latency.p99} | ${r.latency.max} | ` +
            `${r.non2xx} / ${r.errors + r.timeouts} |`,
        )
      }
    } finally {
      await app.close()
    }
  } finally {
    await db.dropDatabase().catch(() => {})
    await mongo.close()
    await pool.end()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

await main()
