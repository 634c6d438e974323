// Soak: the whole pipeline for a set time. The producer sends detections at a steady rate, the
// indexer and the API run as their own processes (src/main.ts, as in production), and N SSE
// clients (bench/soak-client.ts) stream alerts. Reported per interval (a minute by default):
// RSS (the median of samples 5 s apart) and event-loop delay p99 of the indexer and the API (from their /metrics),
// consumer lag of the indexer's group (sampled every second), produce-to-SSE-client alert latency
// p50/p99, clients dropped by the server.
//
//   node --conditions=development --import tsx bench/soak.ts                   # 10 min, 1,000 clients, 100 det/s
//   node --conditions=development --import tsx bench/soak.ts --duration 3 --clients 1000
//   options: --duration MINUTES --clients N --rate R --interval SECONDS (report period, 60)
//            --store postgres|mongodb (the detections store: PostgreSQL, the default without Docker,
//            or the MongoDB-protocol server, FerretDB here)
//
// Targets: RSS growth under 10 % after the first two minutes, p99 within 1.5x of the first
// interval's, no client dropped, lag back to 0 within 5 s of each burst (the longest stretch with
// lag above one second of input is reported). Exits 1 if the pipeline fails, not on a missed target.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { type Admin, Kafka, logLevel } from 'kafkajs'
import { startServices } from '../scripts/services/services-env.js'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'
import { freePort } from '../test/support/ports.js'
import { createStackScope } from '../test/support/stack-scope.js'

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '100' },
    interval: { type: 'string', default: '60' },
    store: { type: 'string', default: 'postgres' },
  },
})
const STORE = args.store
if (STORE !== 'postgres' && STORE !== 'mongodb') throw new Error(`--store: postgres or mongodb, not ${STORE}`)
const DURATION_S = Number(args.duration) * 60
const CLIENTS = Number(args.clients)
const RATE = Number(args.rate)
const INTERVAL_S = Number(args.interval)
const PARTITIONS = 3
const root = new URL('..', import.meta.url).pathname
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const clock = (s: number) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`
const log = (message: string) => process.stderr.write(`[soak] ${message}\n`)

function serviceEnv(): Record<string, string> {
  const { KAFKA_BROKERS, MONGO_URL, DATABASE_URL } = process.env
  if (KAFKA_BROKERS && MONGO_URL && DATABASE_URL) return { KAFKA_BROKERS, MONGO_URL, DATABASE_URL }
  return startServices()
}

const children: ChildProcess[] = []
function spawnTs(file: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  const command = `ulimit -n "$(ulimit -Hn)"; exec node ${TS_NODE_FLAGS.join(' ')} ${file} ${args.join(' ')}`
  // --norc: bash reads .bashrc when its stdin is a socket, as node's pipes are.
  const child = spawn('bash', ['--norc', '--noprofile', '-c', command], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  children.push(child)
  return child
}

function nextLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    const onExit = (code: number | null) => reject(new Error(`child exited with ${code}`))
    lines.once('line', (line) => {
      lines.close()
      child.off('exit', onExit)
      resolve(line)
    })
    child.once('exit', onExit)
  })
}

async function waitReady(url: string, what: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (r) => r.status,
      () => 0,
    )
    if (status === 200) return
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms`)
    await sleep(500)
  }
}

/** `name` from a Prometheus text exposition (first sample without labels). */
async function scrape(url: string, names: string[]): Promise<Record<string, number>> {
  const text = await fetch(url, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text())
  const out: Record<string, number> = {}
  for (const name of names) {
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text)
    out[name] = match ? Number(match[1]) : Number.NaN
  }
  return out
}

/** The median of `values`, or `fallback` when there are none. */
function median(values: number[], fallback = Number.NaN): number {
  if (values.length === 0) return fallback
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

/** The highest of `values` and `last`, ignoring what is not a number. */
function highest(values: number[], last: number | undefined): number {
  return Math.max(...[...values, last ?? Number.NaN].filter(Number.isFinite), 0)
}

async function lagOf(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [ends, committed] = await Promise.all([
    admin.fetchTopicOffsets(topic),
    admin.fetchOffsets({ groupId, topics: [topic] }),
  ])
  const done = new Map(
    (committed[0]?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]),
  )
  return ends.reduce((sum, p) => sum + Math.max(0, Number(p.high) - (done.get(p.partition) ?? 0)), 0)
}

interface Row {
  minute: string
  indexerRss: number
  apiRss: number
  /** The highest 5 s RSS sample of the interval. */
  indexerRssPeak: number
  apiRssPeak: number
  indexerHeap: number
  apiHeap: number
  indexerExternal: number
  apiExternal: number
  apiWindow: number
  indexerLoopP99: number
  apiLoopP99: number
  lagMax: number
  lagLongestS: number
  alerts: number
  p50: number
  p99: number
  open: number
  dropped: number
}

async function main(): Promise<void> {
  const services = serviceEnv()
  // The run's topics, groups and detections database, named after one id and removed together.
  Object.assign(process.env, services)
  const scope = createStackScope('soak')
  const { id, topics } = scope
  const groupId = scope.env.INDEXER_GROUP_ID!
  const storeUrl = STORE === 'postgres' ? await scope.createDatabase() : scope.databaseUrl('MONGO_URL')
  const kafka = new Kafka({
    clientId: 'soak',
    brokers: services.KAFKA_BROKERS!.split(','),
    logLevel: logLevel.NOTHING,
  })
  const admin = kafka.admin()
  await admin.connect()
  const [indexerPort, apiPort] = [await freePort(), await freePort()]
  const common = {
    KAFKA_BROKERS: services.KAFKA_BROKERS!,
    LOG_LEVEL: 'warn',
    ...scope.env,
    DETECTIONS_STORE_URL: storeUrl,
    TOPIC_PARTITIONS: String(PARTITIONS),
    ...(services.TOPIC_REPLICATION_FACTOR && { TOPIC_REPLICATION_FACTOR: services.TOPIC_REPLICATION_FACTOR }),
  }
  const rows: Row[] = []
  let failure: unknown
  try {
    const indexer = spawnTs('packages/indexer/src/main.ts', {
      ...common,
      INDEXER_HOST: '127.0.0.1',
      INDEXER_PORT: String(indexerPort),
    })
    indexer.stdout?.resume()
    await waitReady(`http://127.0.0.1:${indexerPort}/readyz`, 'indexer')
    const api = spawnTs('packages/api/src/main.ts', {
      ...common,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(apiPort),
      DATABASE_URL: services.DATABASE_URL!,
      JWT_SECRET: randomBytes(32).toString('base64url'),
      BCRYPT_COST: '4',
      SSE_MAX_CONNECTIONS_PER_USER: String(CLIENTS + 10),
    })
    api.stdout?.resume()
    const apiUrl = `http://127.0.0.1:${apiPort}`
    await waitReady(`${apiUrl}/readyz`, 'API')
    const username = id
    const password = randomBytes(12).toString('base64url')
    const post = (path: string, body: unknown) =>
      fetch(`${apiUrl}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
    const created = await post('/users', { username, password })
    if (created.status !== 201) throw new Error(`POST /users answered ${created.status}`)
    const token = (
      (await (await post('/auth/token', { username, password })).json()) as { access_token: string }
    ).access_token

    const client = spawnTs('bench/soak-client.ts', {
      SOAK_PORT: String(apiPort),
      SOAK_TOKEN: token,
      SOAK_CLIENTS: String(CLIENTS),
    })
    const opened = JSON.parse(await nextLine(client)) as { connected: number; failed: number }
    log(`${opened.connected} SSE clients connected (${opened.failed} failed)`)
    if (opened.connected !== CLIENTS)
      throw new Error(`only ${opened.connected}/${CLIENTS} SSE clients connected`)

    const producer = spawnTs(
      'packages/producer/src/main.ts',
      { ...common, PRODUCER_PROGRESS_INTERVAL_MS: '0', LOG_LEVEL: 'warn' },
      ['--rate', String(RATE), '--seed', 'soak'],
    )
    producer.stdout?.resume()

    const started = Date.now()
    const lagSamples: number[] = []
    let stretch = 0
    let longest = 0
    let ended = false
    // Lag every second; "behind" is more than one second of input waiting.
    const sampler = (async () => {
      while (!ended) {
        const t = Date.now()
        const lag = await lagOf(admin, groupId, topics.detections).catch(() => Number.NaN)
        if (!Number.isNaN(lag)) {
          lagSamples.push(lag)
          stretch = lag > RATE ? stretch + 1 : 0
          longest = Math.max(longest, stretch)
        }
        await sleep(Math.max(0, 1_000 - (Date.now() - t)))
      }
    })()
    // RSS every 5 s, reported as each interval's median: one sample at the interval's end is at the
    // mercy of when the last GC ran (the API's RSS moved by ±20 % from one minute to the next
    // while its heap stayed flat).
    const rssSamples = { indexer: [] as number[], api: [] as number[] }
    const rssSampler = (async () => {
      while (!ended) {
        const [i, a] = await Promise.all([
          scrape(`http://127.0.0.1:${indexerPort}/metrics`, ['process_resident_memory_bytes']),
          scrape(`${apiUrl}/metrics`, ['process_resident_memory_bytes']),
        ]).catch(() => [{}, {}] as Record<string, number>[])
        const iRss = i!.process_resident_memory_bytes
        const aRss = a!.process_resident_memory_bytes
        if (iRss !== undefined && Number.isFinite(iRss)) rssSamples.indexer.push(iRss)
        if (aRss !== undefined && Number.isFinite(aRss)) rssSamples.api.push(aRss)
        await sleep(5_000)
      }
    })()
    const metricNames = [
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_external_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'alerts_replay_window_entries',
    ]
    for (let n = 1; n * INTERVAL_S <= DURATION_S; n++) {
      await sleep(Math.max(0, started + n * INTERVAL_S * 1_000 - Date.now()))
      for (const [name, child] of [
        ['indexer', indexer],
        ['api', api],
        ['producer', producer],
      ] as const) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the ${name} exited`)
      }
      const [im, am] = await Promise.all([
        scrape(`http://127.0.0.1:${indexerPort}/metrics`, metricNames),
        scrape(`${apiUrl}/metrics`, metricNames),
      ])
      client.stdin!.write('report\n')
      const report = JSON.parse(await nextLine(client)) as {
        count: number
        p50: number
        p99: number
        open: number
        dropped: number
      }
      const lags = lagSamples.splice(0)
      rows.push({
        minute: `${clock((n - 1) * INTERVAL_S)}-${clock(n * INTERVAL_S)}`,
        indexerRssPeak: highest(rssSamples.indexer, im.process_resident_memory_bytes) / 2 ** 20,
        apiRssPeak: highest(rssSamples.api, am.process_resident_memory_bytes) / 2 ** 20,
        indexerRss: median(rssSamples.indexer.splice(0), im.process_resident_memory_bytes) / 2 ** 20,
        apiRss: median(rssSamples.api.splice(0), am.process_resident_memory_bytes) / 2 ** 20,
        indexerHeap: (im.nodejs_heap_size_used_bytes ?? Number.NaN) / 2 ** 20,
        apiHeap: (am.nodejs_heap_size_used_bytes ?? Number.NaN) / 2 ** 20,
        indexerExternal: (im.nodejs_external_memory_bytes ?? Number.NaN) / 2 ** 20,
        apiExternal: (am.nodejs_external_memory_bytes ?? Number.NaN) / 2 ** 20,
        apiWindow: am.alerts_replay_window_entries ?? Number.NaN,
        indexerLoopP99: (im.nodejs_eventloop_lag_p99_seconds ?? Number.NaN) * 1000,
        apiLoopP99: (am.nodejs_eventloop_lag_p99_seconds ?? Number.NaN) * 1000,
        lagMax: Math.max(0, ...lags),
        lagLongestS: longest,
        alerts: report.count,
        p50: report.p50,
        p99: report.p99,
        open: report.open,
        dropped: report.dropped,
      })
      longest = stretch
      const r = rows.at(-1)!
      log(
        `${r.minute}: RSS indexer ${r.indexerRss.toFixed(0)} / API ${r.apiRss.toFixed(0)} MiB, ` +
          `heap ${r.indexerHeap.toFixed(0)} / ${r.apiHeap.toFixed(0)} MiB, ` +
          `external ${r.indexerExternal.toFixed(0)} / ${r.apiExternal.toFixed(0)} MiB, ` +
          `window ${r.apiWindow}, lag max ${r.lagMax}, ` +
          `alerts p50/p99 ${r.p50}/${r.p99} ms (${r.alerts} sampled), open ${r.open}, dropped ${r.dropped}`,
      )
    }
    ended = true
    await sampler
    await rssSampler
    client.stdin!.write('stop\n')
  } catch (err) {
    failure = err
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
    await sleep(2_000)
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    await admin.disconnect()
    await scope.cleanup().catch((err: unknown) => log(`clean-up failed: ${err}`))
  }

  const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '—')
  console.log(
    `Soak: producer at ${RATE} det/s, ${CLIENTS} SSE clients, ${DURATION_S / 60} min, detections in ${STORE}, indexer and API as ` +
      `their own processes (from source through tsx), reported every ${INTERVAL_S} s. Latency: the ` +
      'detection sent by the producer -> an SSE client (sampled streams). Lag: the indexer group, sampled every second.',
  )
  console.log('')
  console.log(
    '| interval (m:ss) | indexer RSS MiB (median / highest) | API RSS MiB (median / highest) | indexer heap MiB | API heap MiB | indexer external MiB | API external MiB | API replay window | indexer loop p99 ms | API loop p99 ms | lag max | longest lag > 1 s of input (s) | alerts sampled | alert p50 ms | alert p99 ms | clients open | dropped |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    console.log(
      `| ${r.minute} | ${f(r.indexerRss)} / ${f(r.indexerRssPeak)} | ${f(r.apiRss)} / ${f(r.apiRssPeak)} | ${f(r.indexerHeap)} | ${f(r.apiHeap)} | ${f(r.indexerExternal)} | ${f(r.apiExternal)} | ${r.apiWindow} | ${f(r.indexerLoopP99)} | ${f(r.apiLoopP99)} | ${r.lagMax} | ${r.lagLongestS} | ${r.alerts} | ${r.p50} | ${r.p99} | ${r.open} | ${r.dropped} |`,
    )
  }
  if (rows.length > 0) {
    const early = rows.slice(0, Math.min(2, rows.length - 1))
    const later = rows.slice(early.length)
    const base = later[0]!
    const last = rows.at(-1)!
    const first = rows[0]!
    const growth = (a: number, b: number) => `${(((b - a) / a) * 100).toFixed(1)} %`
    const peak = (list: Row[], key: 'indexerRssPeak' | 'apiRssPeak') => Math.max(...list.map((r) => r[key]))
    console.log('')
    console.log('| target | measured | met |')
    console.log('|---|---|---|')
    // A garbage-collected process's RSS is a sawtooth (the API's swings by 40 MiB over a few
    // minutes as V8 grows and then releases its heap), so two points compare phases of it; growth
    // is the highest RSS after the first two minutes against the highest within them.
    const highs = early.length > 0 ? early : rows
    const peakGrowth = (key: 'indexerRssPeak' | 'apiRssPeak') =>
      (peak(later, key) - peak(highs, key)) / peak(highs, key)
    console.log(
      `| RSS growth < 10 % after the first two minutes (highest 5 s sample after them against the highest within them) | indexer ${(peakGrowth('indexerRssPeak') * 100).toFixed(1)} % (${f(peak(highs, 'indexerRssPeak'))} -> ${f(peak(later, 'indexerRssPeak'))} MiB), API ${(peakGrowth('apiRssPeak') * 100).toFixed(1)} % (${f(peak(highs, 'apiRssPeak'))} -> ${f(peak(later, 'apiRssPeak'))} MiB); interval medians, interval ${early.length + 1} to the last: indexer ${growth(base.indexerRss, last.indexerRss)}, API ${growth(base.apiRss, last.apiRss)} | ${peakGrowth('indexerRssPeak') < 0.1 && peakGrowth('apiRssPeak') < 0.1 ? 'yes' : 'no'} |`,
    )
    const worstP99 = Math.max(...rows.map((r) => r.p99))
    // The first interval includes the start (schema, JIT, the first rebalance): also against the second.
    const second = rows[1]
    const worstLater = Math.max(...rows.slice(1).map((r) => r.p99))
    const againstSecond = second
      ? `; after it, worst ${worstLater} ms, ${(worstLater / second.p99).toFixed(2)}x the second interval's ${second.p99} ms`
      : ''
    console.log(
      `| alert p99 within 1.5x of the first interval's | first ${first.p99} ms, worst ${worstP99} ms (${(worstP99 / first.p99).toFixed(2)}x)${againstSecond} | ${worstP99 <= first.p99 * 1.5 ? 'yes' : 'no'} |`,
    )
    const dropped = last.dropped
    console.log(
      `| no client dropped | ${dropped} dropped, ${last.open} open at the end | ${dropped === 0 ? 'yes' : 'no'} |`,
    )
    const longest = Math.max(...rows.map((r) => r.lagLongestS))
    console.log(
      `| lag back to 0 within 5 s | longest stretch above ${RATE} records: ${longest} s | ${longest <= 5 ? 'yes' : 'no'} |`,
    )
  }
  if (failure) {
    console.error(failure)
    process.exitCode = 1
  }
  process.exit()
}

await main()
