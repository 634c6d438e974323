// Produce-to-client latency and server memory of GET /alerts under N concurrent SSE clients.
//
//   node --conditions=development --import tsx bench/alerts.ts                       # 1k and 10k clients, 10 s
//   node --conditions=development --import tsx bench/alerts.ts --tiny                # smoke: 50 clients, 3 s
//   options: --clients 1000,10000 --seconds 10 --rate 100 --rounds 3 (median of each column)
//            --nice=-10 (children's priority, root only)
//
// Per client count: starts the API side (the alerts feature in a minimal Fastify app,
// packages/api/test/alerts/bench-server.ts) on a fresh topic, then a separate client process
// (bench/alerts-client.ts, raw sockets) that opens N streams; then produces `rate` alerts/s for
// `seconds`, each carrying its send time, and reads the latency histogram from the client and
// RSS from the server. Both children run with the open-files limit raised to the hard limit.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { loadavg } from 'node:os'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    clients: { type: 'string' },
    seconds: { type: 'string' },
    rate: { type: 'string' },
    nice: { type: 'string' },
    rounds: { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const CLIENTS = (args.clients ?? (tiny ? '50' : '1000,10000')).split(',').map(Number)
const SECONDS = Number(args.seconds ?? (tiny ? 3 : 10))
const RATE = Number(args.rate ?? 100)
const ROUNDS = Number(args.rounds ?? (tiny ? 1 : 3))
/** Scheduling priority of the two children (e.g. -10 as root), to measure on a busy shared machine. */
const NICE = Number(args.nice ?? 0)
const root = new URL('..', import.meta.url).pathname

function kafkaBrokers(): string {
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS
  const script = `${root}scripts/services/services.sh`
  execFileSync('bash', [script, 'up'], { stdio: ['ignore', 'inherit', 'inherit'] })
  const out = execFileSync('bash', [script, 'env'], { encoding: 'utf8' })
  return /^export KAFKA_BROKERS=(.*)$/m.exec(out)?.[1] ?? '127.0.0.1:29092'
}

function spawnTs(file: string, env: Record<string, string>): ChildProcess {
  const nice = NICE === 0 ? '' : `nice -n ${NICE} `
  const flags = process.env.BENCH_NODE_FLAGS ?? ''
  const command = `ulimit -n "$(ulimit -Hn)"; exec ${nice}node ${flags} --conditions=development --import tsx ${file}`
  return spawn('bash', ['-c', command], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
}

function nextLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', (line) => {
      lines.close()
      resolve(line)
    })
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)))
  })
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

async function run(kafka: Kafka, brokers: string, clients: number) {
  const topic = `alerts-bench-${randomUUID()}`
  const server = spawnTs('packages/api/test/alerts/bench-server.ts', {
    KAFKA_BROKERS: brokers,
    ALERTS_TOPIC: topic,
    ALERTS_GROUP_PREFIX: 'alerts-bench',
    SSE_MAX_CONNECTIONS_PER_USER: String(clients + 10),
  })
  let client: ChildProcess | undefined
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
    await producer.send({ topic, messages: [{ value: JSON.stringify(alert(0, 0)) }] })
    await sleep(500)
    const baseline = await stats(port)
    const opening = Date.now()
    const real = spawnTs('bench/alerts-client.ts', {
      BENCH_CLIENTS: String(clients),
      BENCH_PORT: String(port),
      BENCH_TOKEN: token,
    })
    client = real
    const opened = JSON.parse(await nextLine(real)) as { connected: number; failed: number; sampled: number }
    const openMs = Date.now() - opening
    real.stdin!.write('start\n')
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
      await producer.send({ topic, messages: [{ key: String(i), value: JSON.stringify(alert(i, sentAt)) }] })
    }
    await sleep(1_000)
    const loaded = await stats(port)
    // Reference, same process, same sockets, same reader: one bare write per stream in a loop.
    const rawSweep = async () =>
      (await (await fetch(`http://127.0.0.1:${port}/bench/raw-sweep`, { method: 'POST' })).json()) as {
        sockets: number
        medianMs: number
      }
    const raw = await rawSweep()
    // The same loop while the client reads nothing: the writer's own cost. On loopback the kernel
    // charges the reader's wake-up to the writer; with clients on other machines it would not.
    real.stdin!.write('pause\n')
    await nextLine(real)
    const rawPaused = await rawSweep()
    real.stdin!.write('resume\n')
    await nextLine(real)
    real.stdin!.write('report\n')
    const report = JSON.parse(await nextLine(real)) as {
      count: number
      p50: number
      p99: number
      max: number
      closedEarly: number
      cpuMs: number
    }
    return {
      clients,
      connected: opened.connected,
      openMs,
      expected: opened.sampled * total,
      received: report.count,
      p50: report.p50,
      p99: report.p99,
      loopP99: loaded.loopDelayP99Ms,
      flushP50: histogramQuantile(loaded.flush, 0.5),
      flushP99: histogramQuantile(loaded.flush, 0.99),
      rawSweepMs: raw.medianMs,
      rawSenderMs: rawPaused.medianMs,
      kafkaP50: quantile(kafkaOnly, 0.5),
      kafkaP99: quantile(kafkaOnly, 0.99),
      max: report.max,
      dropped: loaded.dropped,
      rssMiB: loaded.rss / 2 ** 20,
      serverCpu: (loaded.cpuMs - before.cpuMs) / (SECONDS * 1000 + 1000),
      clientCpu: report.cpuMs / (SECONDS * 1000 + 1000),
      // Open: streams connected, no alerts yet; loaded: after the run (queues, buffers, heap growth).
      rssPer1kOpenMiB: ((before.rss - baseline.rss) / 2 ** 20 / clients) * 1000,
      rssPer1kMiB: ((loaded.rss - baseline.rss) / 2 ** 20 / clients) * 1000,
    }
  } finally {
    await reference.disconnect().catch(() => undefined)
    client?.kill()
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

function alert(seq: number, sentAt: number) {
  return {
    id: `bench-${seq}-${randomUUID()}`,
    detectedAt: new Date().toISOString(),
    year: 2015,
    make: 'Toyota',
    model: `t${sentAt.toFixed(3)}`,
    category: 'SUV',
    reason: 'category matches SUV',
  }
}

const brokers = kafkaBrokers()
const kafka = new Kafka({ clientId: 'alerts-bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING })
const loadBefore = loadavg()
  .map((n) => n.toFixed(2))
  .join(' ')
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
const rows: Row[] = []
for (const clients of CLIENTS) {
  const rounds: Row[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    console.error(
      `[bench] ${clients} clients, ${RATE} alerts/s for ${SECONDS} s, round ${round}/${ROUNDS} ...`,
    )
    rounds.push(await run(kafka, brokers, clients))
  }
  rows.push(medianRow(rounds))
}
const f = (n: number) => n.toFixed(1)
const pct = (n: number) => `${Math.round(n * 100)} %`
const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')
console.log(
  `\nGET /alerts: ${RATE} alerts/s for ${SECONDS} s, produce -> Kafka -> API -> SSE client latency, median of ${ROUNDS} round(s) per column`,
)
console.log(`(children at nice ${NICE}; load average before: ${loadBefore}, after: ${load()})\n`)
console.log(
  '| clients | connected (open time) | delivered / expected (sampled streams) | p50 ms | p99 ms | max ms | Kafka-only p50 / p99 ms | server loop delay p99 ms | fan-out sweep p50 / p99 ms (≤ bucket) | raw write loop ms (reference) | p99 / raw loop | same loop, readers paused ms | dropped | server RSS MiB | RSS per 1k clients MiB (open / loaded) | server CPU | client CPU |',
)
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const r of rows) {
  console.log(
    `| ${r.clients} | ${r.connected} (${(r.openMs / 1000).toFixed(1)} s) | ${r.received} / ${r.expected} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.max)} | ${f(r.kafkaP50)} / ${f(r.kafkaP99)} | ${f(r.loopP99)} | ${r.flushP50} / ${r.flushP99} | ${f(r.rawSweepMs)} | ${(r.p99 / r.rawSweepMs).toFixed(2)} | ${f(r.rawSenderMs)} | ${r.dropped} | ${f(r.rssMiB)} | ${f(r.rssPer1kOpenMiB)} / ${f(r.rssPer1kMiB)} | ${pct(r.serverCpu)} | ${pct(r.clientCpu)} |`,
  )
}
process.exit(0)
