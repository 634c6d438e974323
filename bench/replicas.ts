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
// restart (bench/support/rolling-restart.ts, which test/e2e/replicas.test.ts runs with 60 clients
// on the real API): 1,000 clients on HAProxy → 2 replicas while each replica in turn is stopped
// (SIGTERM: it drains, its streams resume on the other), started again on its port and back in
// the pool; every client checks that it got every alert once, in partition order; reported per
// restart: how long until the last of its streams was open again.
import { type ChildProcess, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { replicaServers, serverStates, startHaproxy } from '../scripts/haproxy/haproxy.js'
import { startServices } from '../scripts/services/services-env.js'
import { type RollingRestartResult, rollingRestart } from './support/rolling-restart.js'
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
/** How long the herd may take to resume after the last alert before the run reports anyway. */
const HERD_WAIT_MS = 60_000
/** Alerts per second while the replicas restart: each client checks every one of them. */
const ROLLING_RATE = 50
const PARTITIONS = 3
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
}

/** One replica: the alerts feature alone (bench-server.ts) on `topic`, on `listenPort` if given. */
async function startReplica(topic: string, clients: number, listenPort = 0) {
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
  return { server, port: line.port, token: line.token }
}

/** HAProxy in `dir` in front of `ports`, with a runtime socket; resolves once it answers. */
async function startProxy(dir: string, ports: number[], clients: number) {
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const socket = join(dir, 'admin.sock')
  // Both sides of each stream are sockets of HAProxy's: it gets the hard open-files limit, and a
  // maxconn that fits in it (a sandbox may forbid raising the hard limit, even to root).
  const hard = Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024
  const maxconn = Math.min(2 * clients + 1_000, Math.floor((hard - 100) / 2))
  if (maxconn < clients)
    console.error(`[bench] HAProxy can hold ${maxconn} streams here (open files ${hard})`)
  const proxy = startHaproxy(
    join(dir, 'haproxy.cfg'),
    {
      bind: `127.0.0.1:${port}`,
      servers: replicaServers(ports),
      global: [`maxconn ${maxconn}`, `stats socket ${socket} mode 600 level admin`],
    },
    { stdio: 'ignore', openFiles: hard },
  )
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    await sleep(100)
  }
  return { proxy, port, socket }
}

async function deleteTopic(topic: string): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
  await admin.disconnect()
}

/**
 * After a kill, until every stream it cut is open again (at most `HERD_WAIT_MS` after the last
 * alert): how long the herd takes is the figure, so the run must not end before it does.
 */
async function untilResumed(streams: SseClients): Promise<void> {
  const deadline = Date.now() + HERD_WAIT_MS
  while (Date.now() < deadline) {
    const states = await streams.all<{ closedEarly: number; resumed: number }>('status')
    if (states.every((s) => s.resumed >= s.closedEarly)) return
    await sleep(250)
  }
}

async function run(topology: string, churn: string, clients: number, kill: boolean): Promise<Run> {
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
    for (let i = 0; i < replicaCount; i++) {
      const replica = await startReplica(topic, clients)
      servers.push(replica.server)
      ports.push(replica.port)
      token = replica.token
    }
    let port = ports[0]!
    if (topology.startsWith('proxy')) ({ proxy, port } = await startProxy(dir, ports, clients))
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
    const total = RATE * SECONDS
    const killAt = Math.floor(total / 3)
    let killedAt = 0
    const started = performance.now()
    for (let i = 1; i <= total; i++) {
      const wait = started + (i * 1000) / RATE - performance.now()
      if (wait > 0) await sleep(wait)
      if (kill && i === killAt) {
        killedAt = performance.timeOrigin + performance.now()
        servers[1]!.kill('SIGKILL')
      }
      const sentAt = performance.timeOrigin + performance.now()
      await producer.send({
        topic,
        messages: [{ key: String(i), value: JSON.stringify(benchAlert(i, sentAt)) }],
      })
    }
    if (kill) await untilResumed(streams)
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
    await deleteTopic(topic)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The rolling restart of bench/support/rolling-restart.ts on two bench-server replicas. */
async function rolling(clients: number): Promise<RollingRestartResult> {
  const topic = `replicas-bench-${randomUUID()}`
  const dir = mkdtempSync(join(tmpdir(), 'replicas-bench-'))
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] })
  await admin.disconnect()
  const replicas = [await startReplica(topic, clients), await startReplica(topic, clients)]
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  const { proxy, port, socket } = await startProxy(
    dir,
    replicas.map((r) => r.port),
    clients,
  )
  try {
    await producer.connect()
    return await rollingRestart({
      port,
      token: replicas[0]!.token,
      clients,
      procs: CLIENT_PROCS,
      replicas: replicas.map((replica, i) => ({
        name: `api-${i + 1}`,
        async stop() {
          const exited = new Promise((resolve) => replica.server.once('exit', resolve))
          replica.server.kill('SIGTERM')
          await exited
        },
        async start() {
          replica.server = (await startReplica(topic, clients, replica.port)).server
          while (!(await serverStates(socket)).some((s) => s.name === `api-${i + 1}` && s.status === 'UP'))
            await sleep(100)
        },
      })),
      producer,
      topic,
      partitions: PARTITIONS,
      ratePerSecond: ROLLING_RATE,
      retryMs: RETRY_MS,
    })
  } finally {
    proxy.kill('SIGTERM')
    for (const { server } of replicas) server.kill('SIGTERM')
    await producer.disconnect().catch(() => undefined)
    await deleteTopic(topic)
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
    const row = await run(topology, churn, CLIENTS, false)
    console.error(
      `[bench]   p50 ${f(row.p50)} p99 ${f(row.p99)} ms, delivered ${row.received}/${row.expected}`,
    )
    rows.push(row)
  }
}
console.error(`[bench] herd: ${HERD_CLIENTS} clients, HAProxy → 2 replicas, SIGKILL of one ...`)
const herd = await run('proxy-2', 'none', HERD_CLIENTS, true)
console.error(
  `[bench] rolling restart: ${ROLLING_CLIENTS} clients, HAProxy → 2 replicas, one after the other ...`,
)
const rolled = await rolling(ROLLING_CLIENTS)

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
    `its streams reconnect with Last-Event-ID ${RETRY_MS} ms after they close; the run reports once all are ` +
    `open again (or ${HERD_WAIT_MS / 1000} s after the last alert)\n`,
)
console.log(
  '| clients | streams cut by the kill | resumed | kill → last stream open again ms | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
console.log(
  `| ${herd.clients} | ${k.streams} | ${k.resumed} | ${f(k.lastBackMs)} | ${herd.received} / ${herd.expected} | ${f(herd.p50)} | ${f(herd.p99)} | ${f(herd.max)} |`,
)
const [first, second] = rolled.restarts
const seq = rolled.sequences
const restartCell = (r: (typeof rolled.restarts)[number] | undefined) =>
  r ? `${r.ended} / ${f(r.lastBackMs)} / ${f(r.restartMs)}` : ''
console.log(
  `\nRolling restart: ${rolled.clients} clients on HAProxy → 2 replicas, ${ROLLING_RATE} alerts/s throughout (${rolled.produced} in all); ` +
    `each replica in turn gets SIGTERM (it drains: its streams resume on the other after ${RETRY_MS} ms), starts again on its port and is back in the pool\n`,
)
console.log(
  '| clients | api-1: streams ended / last back ms / back in pool ms | api-2: same | every client every alert once, in order | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---:|---:|---|---:|---:|---:|---:|')
const whole =
  seq.minReceived === rolled.produced && seq.maxReceived === rolled.produced && seq.wrong === 0
    ? 'yes'
    : `no: ${seq.minReceived}–${seq.maxReceived} of ${rolled.produced}, ${seq.wrong} out of order (${seq.firstWrong ?? ''})`
console.log(
  `| ${rolled.clients} | ${restartCell(first)} | ${restartCell(second)} | ${whole} | ${rolled.received} / ${rolled.expected} | ${f(rolled.latency.percentile(0.5))} | ${f(rolled.latency.percentile(0.99))} | ${f(rolled.latency.max())} |`,
)
process.exit(0)
