// Produce-to-client latency and server memory of GET /alerts under N concurrent SSE clients, for
// our fan-out and, in the same run, the obvious one (one write per client per alert) and a bare
// write loop over the same streams.
//
//   node --conditions=development --import tsx bench/alerts.ts                       # 1k and 10k clients, 10 s
//   node --conditions=development --import tsx bench/alerts.ts --tiny                # smoke: 50 clients, 2 s
//   options: --clients 1000,10000 --seconds 10 --rate 100 --rounds 3 (median of each column)
//            --fanouts ours,naive  --churn none,reconnect,stall  --client-procs 2
//            (a fan-out may carry server settings, to compare them in the same run:
//             --fanouts ours,naive,ours@SSE_MAX_FLUSH_DELAY_MS=0+SSE_FLUSH_WRITES_PER_SECOND=0)
//            --nice=-10 (children's priority, root only)
//
// Per client count, churn variant, round and fan-out: starts the API side (the alerts feature in
// a minimal Fastify app, packages/api/test/alerts/bench-server.ts, with BENCH_FANOUT choosing the
// broadcaster) on a fresh topic, then client processes (bench/alerts-client.ts, raw sockets, driven
// by bench/support/sse-clients.ts) that open N streams between them; then produces `rate` alerts/s
// for `seconds`, each carrying its send time, and reads the latency histograms from the clients
// and RSS/CPU from the server. The order of the fan-outs alternates from round to round. Churn
// `reconnect`: 10 % of the streams reconnect with Last-Event-ID every second; `stall`: 1 % stop
// reading (the server must drop them; their queue bound is lowered so that this happens within
// the run). Children run with the open-files limit raised to the hard limit.
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import { LOCAL_KAFKA_BROKERS } from '../packages/common/src/index.js'
import {
  benchAlert,
  type ClientReport,
  nextLine,
  openSseClients,
  SAMPLED_STREAMS,
  type SseClients,
  spawnTs,
} from './support/sse-clients.js'

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    clients: { type: 'string' },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    nice: { type: 'string' },
    rounds: { type: 'string' },
    fanouts: { type: 'string' },
    churn: { type: 'string' },
    'client-procs': { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const CLIENTS = (args.clients ?? (tiny ? '50' : '1000,10000')).split(',').map(Number)
const SECONDS = Number(args.seconds ?? (tiny ? 2 : 10))
const RATE = Number(args.rate ?? 100)
const ROUNDS = Number(args.rounds ?? (tiny ? 1 : 3))
const FANOUTS = (args.fanouts ?? 'ours,naive').split(',')
const CHURN = (args.churn ?? 'none').split(',') as Churn[]
const CLIENT_PROCS = Number(args['client-procs'] ?? 2)
/** Scheduling priority of the children (e.g. -10 as root), to measure on a busy shared machine. */
const NICE = Number(args.nice ?? 0)
const root = new URL('..', import.meta.url).pathname
type Fanout = string
/** `ours` or `naive`, optionally `@VAR=value+VAR=value` for the server's environment. */
function fanoutEnv(fanout: Fanout): Record<string, string> {
  const [base, settings] = fanout.split('@')
  if (base !== 'ours' && base !== 'naive') throw new Error(`--fanouts: ${fanout}?`)
  const env: Record<string, string> = { BENCH_FANOUT: base }
  for (const pair of settings ? settings.split('+') : []) {
    const [name, value] = pair.split('=')
    env[name!] = value ?? ''
  }
  return env
}
type Churn = 'none' | 'reconnect' | 'stall'
const CHURN_ENV: Record<Churn, { server: Record<string, string>; client: Record<string, string> }> = {
  none: { server: {}, client: {} },
  reconnect: { server: {}, client: { BENCH_RECONNECT_FRACTION: '0.1' } },
  // 50 queued frames (half a second of alerts) once the kernel buffers are full.
  stall: { server: { SSE_CLIENT_QUEUE_FRAMES: '50' }, client: { BENCH_STALL_FRACTION: '0.01' } },
}
for (const fanout of FANOUTS) fanoutEnv(fanout)
for (const churn of CHURN) if (!(churn in CHURN_ENV)) throw new Error(`--churn: ${churn}?`)

function kafkaBrokers(): string {
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS
  const script = `${root}scripts/services/services.sh`
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  return /^export KAFKA_BROKERS=(.*)$/m.exec(out)?.[1] ?? LOCAL_KAFKA_BROKERS
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function stats(port: number) {
  const response = await fetch(`http://127.0.0.1:${port}/bench/stats`)
  return (await response.json()) as {
    clients: number
    dropped: number
    sent: number
    rss: number
    heapUsed: number
    cpuMs: number
    loopDelayP99Ms: number
    loopDelayMaxMs: number
    flush?: { metricName?: string; labels: Record<string, string | number>; value: number }[]
  }
}

interface AlertsClientReport extends ClientReport {
  cpuMs: number
  /** From "start" to "report": longer than the run when the server falls behind. */
  wallMs: number
  loopDelayP99Ms: number
  loopDelayMaxMs: number
  count: number
  reconnects: number
}

async function run(kafka: Kafka, brokers: string, clients: number, fanout: Fanout, churn: Churn) {
  const topic = `alerts-bench-${randomUUID()}`
  const server = spawnTs(
    'packages/api/test/alerts/bench-server.ts',
    {
      KAFKA_BROKERS: brokers,
      ALERTS_TOPIC: topic,
      ALERTS_GROUP_PREFIX: 'alerts-bench',
      // Room for a reconnecting stream's new connection before the server has seen the old one close.
      SSE_MAX_CONNECTIONS_PER_USER: String(2 * clients + 10),
      ...CHURN_ENV[churn].server,
      ...fanoutEnv(fanout),
    },
    { nice: NICE },
  )
  let streams: SseClients | undefined
  const admin = kafka.admin()
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  // Reference: the same records read by a bare kafkajs consumer here, i.e. what Kafka alone costs.
  const reference = kafka.consumer({
    groupId: `alerts-bench-reference-${randomUUID()}`,
    maxWaitTimeInMs: 1_000,
  })
  const kafkaOnly: number[] = []
  let measuring = false
  try {
    const { port, token } = JSON.parse(await nextLine(server)) as { port: number; token: string }
    await producer.connect()
    await reference.connect()
    await reference.subscribe({ topic, fromBeginning: false })
    await reference.run({
      eachMessage: async ({ message }) => {
        const now = performance.timeOrigin + performance.now()
        const sentAt = Number(/"model":"t([\d.]+)"/.exec(message.value?.toString() ?? '')?.[1])
        if (measuring && sentAt) kafkaOnly.push(now - sentAt)
      },
    })
    // Warm up (JIT, connections) before the memory baseline.
    await producer.send({ topic, messages: [{ value: JSON.stringify(benchAlert(0, 0)) }] })
    await sleep(500)
    const baseline = await stats(port)
    streams = await openSseClients({
      clients,
      procs: CLIENT_PROCS,
      port,
      token,
      env: CHURN_ENV[churn].client,
      nice: NICE,
    })
    streams.start()
    measuring = true
    const before = await stats(port)
    await fetch(`http://127.0.0.1:${port}/bench/reset`, { method: 'POST' })
    const total = RATE * SECONDS
    const started = performance.now()
    for (let i = 1; i <= total; i++) {
      const due = started + (i * 1000) / RATE
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
      const sentAt = performance.timeOrigin + performance.now()
      await producer.send({
        topic,
        messages: [{ key: String(i), value: JSON.stringify(benchAlert(i, sentAt)) }],
      })
    }
    await sleep(1_000)
    const loaded = await stats(port)
    // Reference, same process, same sockets, same readers: one bare write per stream in a loop.
    const rawSweep = async () =>
      (await (await fetch(`http://127.0.0.1:${port}/bench/raw-sweep`, { method: 'POST' })).json()) as {
        sockets: number
        medianMs: number
        maxMs: number
      }
    const raw = await rawSweep()
    // The same loop while the clients read nothing: the writer's own cost. On loopback the kernel
    // charges the reader's wake-up to the writer; with clients on other machines it would not.
    await streams.all('pause')
    const rawPaused = await rawSweep()
    await streams.all('resume')
    const { reports, latency, expected, received } = await streams.report<AlertsClientReport>(total)
    const wallMs = SECONDS * 1000 + 1000
    return {
      clients,
      connected: streams.connected,
      openMs: streams.openMs,
      expected,
      received,
      p50: latency.percentile(0.5),
      p99: latency.percentile(0.99),
      max: latency.max(),
      loopP99: loaded.loopDelayP99Ms,
      flushP99: histogramQuantile(loaded.flush, 0.99),
      rawSweepSockets: raw.sockets,
      rawSweepMs: raw.medianMs,
      rawSweepMaxMs: raw.maxMs,
      rawSenderMs: rawPaused.medianMs,
      kafkaP99: quantile(kafkaOnly, 0.99),
      dropped: loaded.dropped,
      closedEarly: reports.reduce((a, r) => a + r.closedEarly, 0),
      stalled: streams.stalled,
      reconnects: reports.reduce((a, r) => a + r.reconnects, 0),
      rssMiB: loaded.rss / 2 ** 20,
      serverCpu: (loaded.cpuMs - before.cpuMs) / wallMs,
      clientCpu: reports.reduce((a, r) => a + r.cpuMs / r.wallMs, 0),
      clientCpuMax: Math.max(...reports.map((r) => r.cpuMs / r.wallMs)),
      clientLoopP99: Math.max(...reports.map((r) => r.loopDelayP99Ms)),
      clientLoopMax: Math.max(...reports.map((r) => r.loopDelayMaxMs)),
      procs: streams.procs,
      // Loaded: after the run (queues, buffers, heap growth), over the baseline before any stream.
      rssPerClientKiB: (loaded.rss - baseline.rss) / 1024 / clients,
      heapPerClientKiB: (loaded.heapUsed - baseline.heapUsed) / 1024 / clients,
    }
  } finally {
    await reference.disconnect().catch(() => undefined)
    streams?.kill()
    server.kill('SIGTERM')
    await producer.disconnect().catch(() => undefined)
    await admin.connect()
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined)
    await admin.disconnect()
  }
}

/** Upper bound (ms) of the prom-client histogram bucket holding quantile q. */
function histogramQuantile(
  values: { metricName?: string; labels: Record<string, string | number>; value: number }[] | undefined,
  q: number,
): number {
  const buckets = (values ?? []).filter((v) => v.metricName?.endsWith('_bucket'))
  const total = buckets.find((b) => b.labels.le === '+Inf')?.value ?? 0
  const hit = buckets.find((b) => b.value >= total * q)
  return hit ? Number(hit.labels.le) * 1000 : Number.NaN
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * q) - 1)] ?? Number.NaN
}

const brokers = kafkaBrokers()
const kafka = new Kafka({ clientId: 'alerts-bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING })
const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')
const loadBefore = load()
type Row = Awaited<ReturnType<typeof run>>
/** Column by column, the median over the rounds (the machine is shared and noisy). */
function medianRow(rounds: Row[]): Row {
  const out = { ...rounds[0]! }
  for (const key of Object.keys(out) as (keyof Row)[]) {
    const values = rounds.map((r) => r[key]).sort((a, b) => a - b)
    out[key] = values[Math.floor((values.length - 1) / 2)]!
  }
  return out
}
const results: { clients: number; churn: Churn; rows: Map<Fanout, Row>; rounds: Map<Fanout, Row[]> }[] = []
for (const clients of CLIENTS) {
  for (const churn of CHURN) {
    const rounds = new Map<Fanout, Row[]>(FANOUTS.map((f) => [f, []]))
    for (let round = 1; round <= ROUNDS; round++) {
      const order = round % 2 === 1 ? FANOUTS : [...FANOUTS].reverse()
      for (const fanout of order) {
        console.error(
          `[bench] ${clients} clients, churn ${churn}, ${fanout} fan-out, ${RATE} alerts/s for ${SECONDS} s, round ${round}/${ROUNDS} ...`,
        )
        const row = await run(kafka, brokers, clients, fanout, churn)
        console.error(
          `[bench]   p50 ${row.p50.toFixed(1)} p99 ${row.p99.toFixed(1)} max ${row.max.toFixed(1)} ms, bare loop ${row.rawSweepMs.toFixed(1)} ms, delivered ${row.received}/${row.expected}`,
        )
        rounds.get(fanout)!.push(row)
      }
    }
    results.push({
      clients,
      churn,
      rounds,
      rows: new Map([...rounds].map(([fanout, rows]) => [fanout, medianRow(rows)])),
    })
  }
}
const f = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '∞')
const pct = (n: number) => `${Math.round(n * 100)} %`
const CHURN_LABEL: Record<Churn, string> = {
  none: 'none',
  reconnect: '10 %/s reconnect',
  stall: '1 % stop reading',
}
console.log(
  `\nGET /alerts: ${RATE} alerts/s for ${SECONDS} s, produce -> Kafka -> API -> SSE client latency, median of ${ROUNDS} round(s) per column; ` +
    `clients in ${CLIENT_PROCS} processes, latency parsed on about ${SAMPLED_STREAMS} streams`,
)
console.log(`(children at nice ${NICE}; load average before: ${loadBefore}, after: ${load()})`)
console.log(
  '(∞: some sampled alerts had not arrived 1 s after the last one was produced; they count as slower than any that did)\n',
)
console.log(
  '| clients | churn | fan-out | delivered / expected (sampled streams) | p50 ms | p99 ms | max ms | p99 ÷ naive | p99 ÷ bare loop | p99 of each round ms | dropped by server | server CPU | server RSS MiB | RSS / heap per client KiB | client CPU (busiest process) | client loop delay p99 / max ms | Kafka-only p99 ms |',
)
console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|')
for (const { clients, churn, rows, rounds } of results) {
  const naive = rows.get('naive')
  // The bare loop runs in the server process over the sockets it holds; a fan-out that hands its
  // sockets to other processes is compared with the loop measured by another fan-out of the group.
  const ref = [...rows.values()].find((r) => r.rawSweepSockets >= r.connected) ?? rows.values().next().value!
  for (const [fanout, r] of rows) {
    const versusNaive = naive && fanout !== 'naive' ? (r.p99 / naive.p99).toFixed(2) : '—'
    const each = rounds
      .get(fanout)!
      .map((x) => f(x.p99))
      .join(', ')
    const churnNote =
      churn === 'reconnect'
        ? ` (${r.reconnects} reconnects)`
        : churn === 'stall'
          ? ` (${r.stalled} stalled)`
          : ''
    console.log(
      `| ${clients} | ${CHURN_LABEL[churn]}${churnNote} | ${fanout} | ${r.received} / ${r.expected} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${versusNaive} | ${Number.isFinite(r.p99) ? (r.p99 / ref.rawSweepMs).toFixed(2) : '∞'} | ${each} | ${r.dropped} | ${pct(r.serverCpu)} | ${f(r.rssMiB)} | ${f(r.rssPerClientKiB)} / ${f(r.heapPerClientKiB)} | ${pct(r.clientCpu)} (${pct(r.clientCpuMax)}) | ${f(r.clientLoopP99)} / ${f(r.clientLoopMax)} | ${f(r.kafkaP99)} |`,
    )
  }
  console.log(
    `| ${clients} | ${CHURN_LABEL[churn]} | bare write loop: one pass over the same streams, median / max of 21 | readers paused: ${f(ref.rawSenderMs)} ms | ${f(ref.rawSweepMs)} | — | ${f(ref.rawSweepMaxMs)} | — | 1.00 | — | — | — | — | — | — | — | — |`,
  )
}
process.exit(0)
