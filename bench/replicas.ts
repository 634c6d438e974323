// GET /alerts through HAProxy: what the proxy costs, what a second replica buys, and the reconnect
// herd when one of two replicas dies. Reuses bench/alerts.ts's parts: the alerts feature in a
// minimal app (packages/api/test/alerts/bench-server.ts, one process per replica, all on one
// topic and one JWT secret) and its raw-socket clients (bench/alerts-client.ts, in 2 processes,
// driven by bench/support/sse-clients.ts).
//
//   node --conditions=development --import tsx bench/replicas.ts            # 10,000 clients; herd 5,000
//   node --conditions=development --import tsx bench/replicas.ts --tiny     # 50 clients, 2 s
//   options: --clients 10000 --herd-clients 5000 --rolling-clients 1000 --seconds 10 --rate 100
//            --topologies direct-1,proxy-1,proxy-2 --churn none,reconnect --haproxy-max-streams N
//
// Latency: produce -> Kafka -> replica -> (HAProxy) -> client, on about 1,000 sampled streams; an
// alert not there 1 s after the last one was produced counts as slower than any (∞). Churn
// `reconnect`: 10 % of the streams reconnect with Last-Event-ID every second. Herd: two replicas
// behind HAProxy; a third of the way through, SIGKILL of the second one; each of its streams
// reconnects with Last-Event-ID 500 ms after it closed (the `retry:` the replicas send), through
// the proxy, onto the survivor; once all are open again, the run waits until every client has
// every alert (or 20 s); reported: how long until the last one was open again, each client's
// check of every alert (as in the rolling restart: alerts missing, received twice, out of
// partition order; clients that got every alert once, in order), and the alerts' latency over the
// whole run (resumed streams get what they missed by replay). Rolling
// restart (bench/support/rolling-restart.ts, which test/e2e/replicas.test.ts runs with 60 clients
// on the real API): 1,000 clients on HAProxy → 2 replicas while each replica in turn is stopped
// (SIGTERM: it drains, its streams resume on the other), started again on its port and back in
// the pool; every client checks that it got every alert once, in partition order; reported per
// restart: how long until the last of its streams was open again.
//
// HAProxy holds both sides of each stream, 2 open files: where one process may not open enough for
// a run (the hard limit; --haproxy-max-streams N: N streams), the run starts several on one port
// (SO_REUSEPORT); every table says how many served each row and the most streams each held.
import { type ChildProcess, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { replicaServers, serverStates, startHaproxy } from '../scripts/haproxy/haproxy.js'
import { startServices } from '../scripts/services/services-env.js'
import { type MergedSequences, partitionOf } from './support/alert-sequence.js'
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
    'haproxy-max-streams': { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const CLIENTS = Number(args.clients ?? (tiny ? 50 : 10_000))
const HERD_CLIENTS = Number(args['herd-clients'] ?? (tiny ? 50 : 5_000))
const ROLLING_CLIENTS = Number(args['rolling-clients'] ?? (tiny ? 50 : 1_000))
/** How long the herd may take to resume after the last alert before the run reports anyway. */
const HERD_WAIT_MS = 60_000
/** Then how long every client may take to have every alert before the run reports anyway. */
const HERD_SETTLE_MS = 20_000
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

// Both sides of each stream are sockets of HAProxy's, so one process holds about half as many
// streams as it may open files: it gets the hard limit, which a sandbox may forbid raising, even
// to root. A run that needs more streams gets more processes on the same port (HAProxy binds with
// SO_REUSEPORT: the kernel spreads new connections over them). --haproxy-max-streams sets a
// smaller limit per process, to take that path with few clients.
const OPEN_FILES = Number(execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024
const PROXY_STREAMS = args['haproxy-max-streams']
  ? Number(args['haproxy-max-streams'])
  : Math.floor((OPEN_FILES - 100) / 2)
const PROXY_STREAMS_WHY = args['haproxy-max-streams']
  ? '--haproxy-max-streams'
  : `2 sockets per stream, at most ${OPEN_FILES} open files per process here (the hard limit)`
/** Processes for `clients` streams, 10 % over: the kernel's spread over them is not exact. */
const proxyProcesses = (clients: number) => Math.max(1, Math.ceil((clients * 1.1) / PROXY_STREAMS))

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
  /** The HAProxy processes and the most streams each held at once. */
  proxy?: number[]
  killed?: { streams: number; resumed: number; lastBackMs: number; sequences: MergedSequences }
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

/**
 * HAProxy in `dir` in front of `ports`, as many processes as `clients` streams take, all on one
 * port, each with its own runtime socket; resolves once every one has the replicas UP.
 */
async function startProxy(dir: string, ports: number[], clients: number) {
  const port = 20_000 + Math.floor(Math.random() * 20_000)
  const count = proxyProcesses(clients)
  const maxconn = Math.min(2 * clients + 1_000, PROXY_STREAMS)
  if (count > 1)
    console.error(
      `[bench]   ${count} HAProxy processes, ${PROXY_STREAMS} streams each at most (${PROXY_STREAMS_WHY})`,
    )
  const sockets = Array.from({ length: count }, (_, i) => join(dir, `admin-${i + 1}.sock`))
  const procs = sockets.map((socket, i) =>
    startHaproxy(
      join(dir, `haproxy-${i + 1}.cfg`),
      {
        bind: `127.0.0.1:${port}`,
        servers: replicaServers(ports),
        global: [`maxconn ${maxconn}`, `stats socket ${socket} mode 600 level admin`],
      },
      { stdio: 'ignore', openFiles: OPEN_FILES },
    ),
  )
  const proxy = {
    port,
    /** Whether every process has `server` UP (each health-checks the replicas on its own). */
    async up(server: string) {
      const states = await Promise.all(sockets.map((s) => serverStates(s).catch(() => [])))
      return states.every((list) => list.some((s) => s.name === server && s.status === 'UP'))
    },
    /**
     * Samples each process's streams every 500 ms until the function it returns is called, which
     * resolves to the most each one held at once.
     */
    watchStreams() {
      const most = sockets.map(() => 0)
      let watching = true
      const sampling = (async () => {
        while (watching) {
          const states = await Promise.all(sockets.map((s) => serverStates(s).catch(() => [])))
          states.forEach((list, i) => {
            most[i] = Math.max(
              most[i]!,
              list.reduce((a, s) => a + s.sessions, 0),
            )
          })
          await sleep(500)
        }
      })()
      return async () => {
        watching = false
        await sampling
        return most
      }
    },
    kill() {
      for (const proc of procs) proc.kill('SIGTERM')
    },
  }
  const allUp = async () => {
    for (let n = 1; n <= ports.length; n++) if (!(await proxy.up(`api-${n}`))) return false
    return true
  }
  for (let i = 0; i < 100 && !(await allUp()); i++) await sleep(100)
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return proxy
    await sleep(100)
  }
  // The run goes on (its row shows no stream open); this says which side was missing.
  const states = await Promise.all(sockets.map((s) => serverStates(s).catch((err: Error) => err.message)))
  console.error(
    `[bench]   HAProxy on port ${port} never answered /readyz: exit codes ${procs.map((p) => p.exitCode)}, servers ${JSON.stringify(states)}`,
  )
  return proxy
}

/** A topic of `PARTITIONS` partitions, for runs whose clients check every alert. */
async function createTopic(topic: string): Promise<void> {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }] })
  await admin.disconnect()
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
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined
  const dir = mkdtempSync(join(tmpdir(), 'replicas-bench-'))
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  try {
    // The herd's clients check every alert: alert n goes to partition `partitionOf(n)`.
    if (kill) await createTopic(topic)
    const ports: number[] = []
    let token = ''
    for (let i = 0; i < replicaCount; i++) {
      const replica = await startReplica(topic, clients)
      servers.push(replica.server)
      ports.push(replica.port)
      token = replica.token
    }
    if (topology.startsWith('proxy')) proxy = await startProxy(dir, ports, clients)
    const port = proxy?.port ?? ports[0]!
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
      checkPartitions: kill ? PARTITIONS : undefined,
    })
    const proxyStreams = proxy?.watchStreams()
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
      const partition = kill ? partitionOf(i, PARTITIONS) : undefined
      await producer.send({
        topic,
        messages: [{ key: String(i), value: JSON.stringify(benchAlert(i, sentAt)), partition }],
      })
    }
    // After a kill: once the herd is back, until every client has every alert (bounded).
    if (kill) await untilResumed(streams)
    else await sleep(1_000)
    const checked = kill
      ? await streams.checkedReport<ReplicasClientReport>(total, HERD_SETTLE_MS)
      : undefined
    const { reports, latency, expected, received } =
      checked ?? (await streams.report<ReplicasClientReport>(total))
    const proxyMost = await proxyStreams?.()
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
      proxy: proxyMost,
      killed: checked
        ? {
            streams: reports.reduce((a, r) => a + r.closedEarly, 0),
            resumed: reports.reduce((a, r) => a + r.resumed, 0),
            lastBackMs: lastResumedAt > 0 ? lastResumedAt - killedAt : Number.NaN,
            sequences: checked.sequences,
          }
        : undefined,
    }
  } finally {
    streams?.kill()
    proxy?.kill()
    for (const server of servers) server.kill('SIGTERM')
    await producer.disconnect().catch(() => undefined)
    await deleteTopic(topic)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The rolling restart of bench/support/rolling-restart.ts on two bench-server replicas. */
async function rolling(clients: number): Promise<RollingRestartResult & { proxy: number[] }> {
  const topic = `replicas-bench-${randomUUID()}`
  const dir = mkdtempSync(join(tmpdir(), 'replicas-bench-'))
  await createTopic(topic)
  const replicas = [await startReplica(topic, clients), await startReplica(topic, clients)]
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  const proxy = await startProxy(
    dir,
    replicas.map((r) => r.port),
    clients,
  )
  try {
    await producer.connect()
    const proxyStreams = proxy.watchStreams()
    const result = await rollingRestart({
      port: proxy.port,
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
          while (!(await proxy.up(`api-${i + 1}`))) await sleep(100)
        },
      })),
      producer,
      topic,
      partitions: PARTITIONS,
      ratePerSecond: ROLLING_RATE,
      retryMs: RETRY_MS,
    })
    return { ...result, proxy: await proxyStreams() }
  } finally {
    proxy.kill()
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
/** How many HAProxy processes served a run, and the most streams each held at once. */
const proxyCell = (most: number[] | undefined) => (most ? `${most.length} (${most.join(' + ')})` : '–')
const rows: Run[] = []
for (const churn of CHURN) {
  for (const topology of TOPOLOGIES) {
    console.error(
      `[bench] ${CLIENTS} clients, ${topology}, churn ${churn}, ${RATE} alerts/s for ${SECONDS} s ...`,
    )
    const row = await run(topology, churn, CLIENTS, false)
    console.error(
      `[bench]   p50 ${f(row.p50)} p99 ${f(row.p99)} ms, delivered ${row.received}/${row.expected}, HAProxy processes ${proxyCell(row.proxy)}`,
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
  '| clients | churn | path | HAProxy processes (most streams each) | connected | open all ms | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  console.log(
    `| ${r.clients} | ${r.churn === 'reconnect' ? '10 %/s reconnect' : 'none'} | ${LABEL[r.topology] ?? r.topology} | ${proxyCell(r.proxy)} | ${r.connected} | ${r.openMs} | ${r.received} / ${r.expected} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} |`,
  )
}
console.log(
  `\nHAProxy processes, in every table: one holds at most ${PROXY_STREAMS} streams here (${PROXY_STREAMS_WHY}); ` +
    'a run that needs more (its clients, 10 % over) gets as many processes as that takes, all bound to one port ' +
    '(SO_REUSEPORT: the kernel spreads new connections over them); in brackets, the most streams each held at once.',
)
const k = herd.killed!
console.log(
  `\nReconnect herd: ${herd.clients} clients on HAProxy → 2 replicas, SIGKILL of one after ${f(SECONDS / 3)} s; ` +
    `its streams reconnect with Last-Event-ID ${RETRY_MS} ms after they close; once all are open again (or ` +
    `${HERD_WAIT_MS / 1000} s after the last alert), the run waits until every client has every alert (at most ` +
    `${HERD_SETTLE_MS / 1000} s); every client checks that it got every alert once, in partition order ` +
    `(${PARTITIONS} partitions): missing, duplicates and out of order are alerts over all clients\n`,
)
console.log(
  '| clients | HAProxy processes (most streams each) | streams cut by the kill | resumed | kill → last stream open again ms | missing | duplicates | out of order | clients with every alert once, in order | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
console.log(
  `| ${herd.clients} | ${proxyCell(herd.proxy)} | ${k.streams} | ${k.resumed} | ${f(k.lastBackMs)} | ${k.sequences.missing} | ${k.sequences.duplicates} | ${k.sequences.outOfOrder} | ${k.sequences.complete} / ${k.sequences.streams} | ${herd.received} / ${herd.expected} | ${f(herd.p50)} | ${f(herd.p99)} | ${f(herd.max)} |`,
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
  '| clients | HAProxy processes (most streams each) | api-1: streams ended / last back ms / back in pool ms | api-2: same | every client every alert once, in order | delivered / expected (sampled) | p50 ms | p99 ms | max ms |',
)
console.log('|---:|---:|---:|---:|---|---:|---:|---:|---:|')
const whole =
  seq.complete === rolled.clients
    ? 'yes'
    : `no: ${seq.complete} of ${rolled.clients} clients; ${seq.missing} missing, ${seq.duplicates} duplicates, ${seq.outOfOrder} out of order (first: ${seq.firstWrong ?? 'none'})`
console.log(
  `| ${rolled.clients} | ${proxyCell(rolled.proxy)} | ${restartCell(first)} | ${restartCell(second)} | ${whole} | ${rolled.received} / ${rolled.expected} | ${f(rolled.latency.percentile(0.5))} | ${f(rolled.latency.percentile(0.99))} | ${f(rolled.latency.max())} |`,
)
process.exit(0)
