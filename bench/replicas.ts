// GET /alerts through HAProxy: what the proxy costs, what a second replica buys, and the reconnect
// herd when one of two replicas dies. Reuses bench/alerts.ts's parts: the alerts feature in a
// minimal app (packages/api/test/alerts/bench-server.ts, one process per replica, all on one
// topic and one JWT secret) and its raw-socket clients (bench/alerts-client.ts, in 2 processes,
// driven by bench/support/sse-clients.ts).
//
//   node --conditions=development --import tsx bench/replicas.ts            # 10,000 clients; herd 5,000
//   node --conditions=development --import tsx bench/replicas.ts --tiny     # 50 clients, 2 s
//   options: --clients 10000 --herd-clients 5000 --rolling-clients 1000 --seconds 10 --rate 100
//            --topologies direct-1,proxy-1,proxy-2 --churn none,reconnect
//
// Latency: produce -> Kafka -> replica -> (HAProxy) -> client, on about 1,000 sampled streams; an
// alert not there 1 s after the last one was produced counts as slower than any (∞). Churn
// `reconnect`: 10 % of the streams reconnect with Last-Event-ID every second. Herd: two replicas
// behind HAProxy; a third of the way through, SIGKILL of the second one; each of its streams
// reconnects with Last-Event-ID 500 ms after it closed (the `retry:` the replicas send), through
// the proxy, onto the survivor; reported: how long until the last one was open again, and the
// alerts' latency over the whole run (resumed streams get what they missed by replay). Rolling
// restart: 1,000 clients on HAProxy → 2 replicas while each replica in turn is stopped (SIGTERM:
// it drains, its streams resume on the other), started again on its port and back in the pool.
import { type ChildProcess, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { replicaServers, startHaproxy } from '../scripts/haproxy/haproxy.js'
import { startServices } from '../scripts/services/services-env.js'
import {
  benchAlert,
  type ClientReport,
  nextLine,
  openSseClients,
  type SseClients,
  spawnTs,
} from './support/sse-clients.js'

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    clients: { type: 'string' },
    'herd-clients': { type: 'string' },
    'rolling-clients': { type: 'string' },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    topologies: { type: 'string' },
    churn: { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const CLIENTS = Number(args.clients ?? (tiny ? 50 : 10_000))
const HERD_CLIENTS = Number(args['herd-clients'] ?? (tiny ? 50 : 5_000))
const ROLLING_CLIENTS = Number(args['rolling-clients'] ?? (tiny ? 50 : 1_000))
const ROLLING_SECONDS = tiny ? 15 : 30
const SECONDS = Number(args.seconds ?? (tiny ? 2 : 10))
const RATE = Number(args.rate ?? 100)
const TOPOLOGIES = (args.topologies ?? 'direct-1,proxy-1,proxy-2').split(',')
const CHURN = (args.churn ?? 'none,reconnect').split(',')
const RETRY_MS = 500
const CLIENT_PROCS = 2
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
for (const t of TOPOLOGIES) if (!/^(direct-1|proxy-[1-9])$/.test(t)) throw new Error(`--topologies: ${t}?`)

const brokers = process.env.KAFKA_BROKERS ?? startServices().KAFKA_BROKERS ?? '127.0.0.1:29092'
const kafka = new Kafka({
  clientId: 'replicas-bench',
  brokers: brokers.split(','),
  logLevel: logLevel.NOTHING,
})

interface ReplicasClientReport extends ClientReport {
  resumed: number
  lastResumedAt: number
}

interface Run {
  topology: string
  churn: string
  clients: number
  connected: number
  openMs: number
  expected: number
  received: number
  p50: number
  p99: number
  max: number
  killed?: { streams: number; resumed: number; lastBackMs: number }
  /** Rolling restart: from the first SIGTERM until the last replica was back in the pool. */
  rollingMs?: number
}

type Event = 'none' | 'kill' | 'rolling'

async function run(topology: string, churn: string, clients: number, event: Event): Promise<Run> {
  const kill = event !== 'none'
  const topic = `replicas-bench-${randomUUID()}`
  const replicaCount = Number(topology.split('-')[1])
  const servers: ChildProcess[] = []
  let streams: SseClients | undefined
  let proxy: ChildProcess | undefined
  const dir = mkdtempSync(join(tmpdir(), 'replicas-bench-'))
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  try {
    const ports: number[] = []
    let token = ''
    const startServer = async (listenPort = 0) => {
      const server = spawnTs('packages/api/test/alerts/bench-server.ts', {
        KAFKA_BROKERS: brokers,
        ALERTS_TOPIC: topic,
        ALERTS_GROUP_PREFIX: 'replicas-bench',
        SSE_MAX_CONNECTIONS_PER_USER: String(2 * clients + 10),
        SSE_RETRY_MS: String(RETRY_MS),
        BENCH_FANOUT: 'ours',
        BENCH_LISTEN_PORT: String(listenPort),
      })
      const line = JSON.parse(await nextLine(server)) as { port: number; token: string }
      token = line.token
      return { server, port: line.port }
    }
    for (let i = 0; i < replicaCount; i++) {
      const { server, port } = await startServer()
      servers.push(server)
      ports.push(port)
    }
    /** Each replica in turn: drained and stopped, started again on its port, back in the pool. */
    const rollingRestart = async () => {
      const began = performance.now()
      for (let i = 0; i < servers.length; i++) {
        const exited = new Promise((resolve) => servers[i]!.once('exit', resolve))
        servers[i]!.kill('SIGTERM')
        await exited
        servers[i] = (await startServer(ports[i])).server
        // In the pool again after two good health checks, one second apart.
        await sleep(2_500)
      }
      return performance.now() - began
    }
    let port = ports[0]!
    if (topology.startsWith('proxy')) {
      const proxyPort = 20_000 + Math.floor(Math.random() * 20_000)
      // Both sides of each stream are sockets of HAProxy's: it gets the hard open-files limit, and a
      // maxconn that fits in it (a sandbox may forbid raising the hard limit, even to root).
      const hard = Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024
      const maxconn = Math.min(2 * clients + 1_000, Math.floor((hard - 100) / 2))
      if (maxconn < clients)
        console.error(`[bench] HAProxy can hold ${maxconn} streams here (open files ${hard})`)
      proxy = startHaproxy(
        join(dir, 'haproxy.cfg'),
        { bind: `127.0.0.1:${proxyPort}`, servers: replicaServers(ports), global: [`maxconn ${maxconn}`] },
        { stdio: 'ignore', openFiles: hard },
      )
      port = proxyPort
      for (let i = 0; i < 100; i++) {
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
        if (ok) break
        await sleep(100)
      }
    }
    await producer.connect()
    streams = await openSseClients({
      clients,
      procs: CLIENT_PROCS,
      port,
      token,
      env: {
        ...(churn === 'reconnect' ? { BENCH_RECONNECT_FRACTION: '0.1' } : {}),
        ...(kill ? { BENCH_RESUME_ON_CLOSE: String(RETRY_MS) } : {}),
      },
    })
    streams.start()
    // A rolling restart takes two replica starts and two health-check rises: alerts go on meanwhile.
    const total = RATE * (event === 'rolling' ? ROLLING_SECONDS : SECONDS)
    const killAt = Math.floor(total / 3)
    let killedAt = 0
    let rolling: Promise<number> | undefined
    const started = performance.now()
    for (let i = 1; i <= total; i++) {
      const wait = started + (i * 1000) / RATE - performance.now()
      if (wait > 0) await sleep(wait)
      if (event === 'kill' && i === killAt) {
        killedAt = performance.timeOrigin + performance.now()
        servers[1]!.kill('SIGKILL')
      }
      if (event === 'rolling' && i === Math.floor(total / 10)) rolling = rollingRestart()
      const sentAt = performance.timeOrigin + performance.now()
      await producer.send({
        topic,
        messages: [{ key: String(i), value: JSON.stringify(benchAlert(i, sentAt)) }],
      })
    }
    const rollingMs = rolling ? await rolling : undefined
    await sleep(1_000)
    const { reports, latency, expected, received } = await streams.report<ReplicasClientReport>(total)
    const lastResumedAt = Math.max(...reports.map((r) => r.lastResumedAt))
    return {
      topology,
      churn,
      clients,
      connected: streams.connected,
      openMs: streams.openMs,
      expected,
      received,
      p50: latency.percentile(0.5),
      p99: latency.percentile(0.99),
      max: latency.max(),
      rollingMs,
      killed: kill
        ? {
            streams: reports.reduce((a, r) => a + r.closedEarly, 0),
            resumed: reports.reduce((a, r) => a + r.resumed, 0),
            lastBackMs: lastResumedAt > 0 ? lastResumedAt - killedAt : Number.NaN,
          }
        : undefined,
    }
  } finally {
    streams?.kill()
    proxy?.kill('SIGTERM')
    for (const server of servers) server.kill('SIGTERM')
    await producer.disconnect().catch(() => undefined)
    const admin = kafka.admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
    await admin.disconnect()
    rmSync(dir, { recursive: true, force: true })
  }
}

const LABEL: Record<string, string> = {
  'direct-1': 'direct → 1 replica',
  'proxy-1': 'HAProxy → 1 replica',
  'proxy-2': 'HAProxy → 2 replicas',
}
const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '∞')
const rows: Run[] = []
for (const churn of CHURN) {
  for (const topology of TOPOLOGIES) {
    console.error(
      `[bench] ${CLIENTS} clients, ${topology}, churn ${churn}, ${RATE} alerts/s for ${SECONDS} s ...`,
    )
    const row = await run(topology, churn, CLIENTS, 'none')
    console.error(
      `[bench]   p50 ${f(row.p50)} p99 ${f(row.p99)} ms, delivered ${row.received}/${row.expected}`,
    )
    rows.push(row)
  }
}
console.error(`[bench] herd: ${HERD_CLIENTS} clients, HAProxy → 2 replicas, SIGKILL of one ...`)
const herd = await run('proxy-2', 'none', HERD_CLIENTS, 'kill')
console.error(
  `[bench] rolling restart: ${ROLLING_CLIENTS} clients, HAProxy → 2 replicas, one after the other ...`,
)
const rolled = await run('proxy-2', 'none', ROLLING_CLIENTS, 'rolling')

console.log(
  `\nGET /alerts through HAProxy: ${RATE} alerts/s for ${SECONDS} s, produce -> Kafka -> replica -> (HAProxy) -> client; ` +
    `clients in ${CLIENT_PROCS} processes, latency on about 1,000 sampled streams; one run per row\n`,
)
console.log(
  '| clients | churn | path | connected | open all ms | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  console.log(
    `| ${r.clients} | ${r.churn === 'reconnect' ? '10 %/s reconnect' : 'none'} | ${LABEL[r.topology] ?? r.topology} | ${r.connected} | ${r.openMs} | ${r.received} / ${r.expected} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} |`,
  )
}
const k = herd.killed!
console.log(
  `\nReconnect herd: ${herd.clients} clients on HAProxy → 2 replicas, SIGKILL of one after ${f(SECONDS / 3)} s; ` +
    `its streams reconnect with Last-Event-ID ${RETRY_MS} ms after they close\n`,
)
console.log(
  '| clients | streams cut by the kill | resumed | kill → last stream open again ms | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
console.log(
  `| ${herd.clients} | ${k.streams} | ${k.resumed} | ${f(k.lastBackMs)} | ${herd.received} / ${herd.expected} | ${f(herd.p50)} | ${f(herd.p99)} | ${f(herd.max)} |`,
)
const r = rolled.killed!
console.log(
  `\nRolling restart: ${rolled.clients} clients on HAProxy → 2 replicas, alerts for ${ROLLING_SECONDS} s; each replica in turn gets SIGTERM (drains), ` +
    `starts again on its port and is back in the pool; alerts at ${RATE}/s throughout\n`,
)
console.log(
  '| clients | restart of both replicas ms | streams ended by the drains | resumed | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
console.log(
  `| ${rolled.clients} | ${f(rolled.rollingMs ?? Number.NaN)} | ${r.streams} | ${r.resumed} | ${rolled.received} / ${rolled.expected} | ${f(rolled.p50)} | ${f(rolled.p99)} | ${f(rolled.max)} |`,
)
process.exit(0)
