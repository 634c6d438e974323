// Webhook delivery: alerts delivered per second to 100 loopback endpoints, and the latency from an
// alert's commit (the producer's ack) to the receiver's 2xx, for the notifier (its own process,
// from source) beside a naive sender (one consumer, one awaited POST per alert and endpoint, in
// order) in the same run.
//
//   node --conditions=development --import tsx bench/webhooks.ts            # 100 endpoints, 500-alert burst, 10 s paced
//   node --conditions=development --import tsx bench/webhooks.ts --tiny     # smoke: 10 endpoints, 30 alerts, 2 s
//   options: --endpoints N --burst N (alerts) --rate R (alerts/s, paced phase) --seconds S --naive-seconds S
//            --delay MS (each endpoint answers after MS, like a receiver doing some work; default 0)
//
// Per sender, a fresh topic: a burst of alerts produced at once (throughput: deliveries/s from the
// first commit to the last 2xx), then a paced phase at `rate` alerts/s (latency per delivery, from
// the ack of the alert's produce request to the receiver's 2xx). The naive sender
// stops its burst after --naive-seconds (it would take minutes) and is measured on what it did.
// Every endpoint answers 204 at once, in this process; the notifier signs, records and retries as
// in production, with WEBHOOK_ALLOW_PRIVATE=true (the receivers are on loopback).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { runMigrations } from '../packages/api/src/users/migrate.js'

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    endpoints: { type: 'string' },
    burst: { type: 'string' },
    rate: { type: 'string' },
    seconds: { type: 'string' },
    'naive-seconds': { type: 'string' },
    delay: { type: 'string' },
  },
})
const tiny = args.tiny ?? false
const ENDPOINTS = Number(args.endpoints ?? (tiny ? 10 : 100))
const BURST = Number(args.burst ?? (tiny ? 30 : 500))
const RATE = Number(args.rate ?? 2)
const SECONDS = Number(args.seconds ?? (tiny ? 2 : 10))
const NAIVE_SECONDS = Number(args['naive-seconds'] ?? (tiny ? 3 : 20))
/** How long each endpoint takes to answer, as a real receiver does (0: at once). */
const DELAY_MS = Number(args.delay ?? 0)
const root = new URL('..', import.meta.url).pathname
const progress = (text: string) => process.stderr.write(`[webhooks] ${text}\n`)

function env(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set (bench/run.ts sets it from the local services)`)
  return value
}

// ------------------------------------------------------------------------------------- receivers
interface Receivers {
  urls: string[]
  /** Per alert id, when each endpoint received it. */
  received: Map<string, number[]>
  requests: number
  close(): Promise<void>
}

async function startReceivers(count: number): Promise<Receivers> {
  const servers: Server[] = []
  const receivers: Receivers = {
    urls: [],
    received: new Map(),
    requests: 0,
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => {}),
  }
  for (let i = 0; i < count; i++) {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: { id: string } }
        // Received when the 2xx goes out, after the endpoint's own time if it takes any.
        const answer = () => {
          res.writeHead(204).end()
          const at = performance.timeOrigin + performance.now()
          receivers.requests++
          const times = receivers.received.get(body.data.id)
          if (times) times.push(at)
          else receivers.received.set(body.data.id, [at])
        }
        if (DELAY_MS > 0) setTimeout(answer, DELAY_MS)
        else answer()
      })
    })
    server.keepAliveTimeout = 60_000
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    servers.push(server)
    receivers.urls.push(`http://127.0.0.1:${(server.address() as { port: number }).port}/hook/${i}`)
  }
  return receivers
}

// ---------------------------------------------------------------------------------------- senders
interface Sender {
  name: string
  start(topic: string): Promise<void>
  stop(): Promise<void>
}

function notifierSender(databaseUrl: string): Sender {
  let child: ChildProcess | undefined
  const port = 19_000 + Math.floor(Math.random() * 1_000)
  return {
    name: 'notifier',
    async start(topic) {
      child = spawn(
        process.execPath,
        [
          '--disable-warning=TimeoutNegativeWarning',
          '--conditions=development',
          '--import',
          'tsx',
          'packages/notifier/src/main.ts',
        ],
        {
          cwd: root,
          stdio: ['ignore', 'ignore', 'inherit'],
          env: {
            ...process.env,
            DATABASE_URL: databaseUrl,
            ALERTS_TOPIC: topic,
            NOTIFIER_GROUP_ID: `bench-notifier-${randomUUID()}`,
            NOTIFIER_FROM_BEGINNING: 'true',
            NOTIFIER_HOST: '127.0.0.1',
            NOTIFIER_PORT: String(port),
            WEBHOOK_ALLOW_PRIVATE: 'true',
            LOG_LEVEL: 'error',
          },
        },
      )
      const deadline = Date.now() + 60_000
      for (;;) {
        const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
        if (ok) return
        if (Date.now() > deadline) throw new Error('the notifier did not become ready')
        await new Promise((r) => setTimeout(r, 200))
      }
    },
    async stop() {
      if (!child || child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    },
  }
}

/** The obvious implementation: one consumer, and for each alert one awaited POST per endpoint, in order. */
function naiveSender(kafka: Kafka, urls: string[]): Sender {
  let consumer = kafka.consumer({ groupId: `bench-naive-${randomUUID()}` })
  return {
    name: 'naive (await each POST)',
    async start(topic) {
      consumer = kafka.consumer({ groupId: `bench-naive-${randomUUID()}` })
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ message }) => {
          const body = JSON.stringify({ type: 'alert', data: JSON.parse(String(message.value)) })
          for (const url of urls) {
            await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
          }
        },
      })
    },
    async stop() {
      await consumer.disconnect()
    },
  }
}

// ------------------------------------------------------------------------------------------- runs
interface Result {
  sender: string
  burstAlerts: number
  burstDeliveries: number
  burstSeconds: number
  pacedDeliveries: number
  latencies: number[]
}

function alert(i: number) {
  return {
    id: `bench-${i}-${randomUUID()}`,
    detectedAt: new Date().toISOString(),
    year: 2015,
    make: 'Toyota',
    model: 'RAV4',
    category: 'SUV',
    reason: 'category matches SUV',
    rules: [
      { id: '00000000-0000-4000-8000-000000000001', version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' },
    ],
  }
}

async function run(kafka: Kafka, sender: Sender, receivers: Receivers, burstCap: number): Promise<Result> {
  const admin = kafka.admin()
  await admin.connect()
  const topics: string[] = []
  const newTopic = async () => {
    const name = `bench.webhooks.${randomUUID()}`
    await admin.createTopics({ topics: [{ topic: name, numPartitions: 3 }], waitForLeaders: true })
    topics.push(name)
    return name
  }
  let topic = await newTopic()
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  receivers.received.clear()
  const committed = new Map<string, number>()
  const publish = async (alerts: ReturnType<typeof alert>[]) => {
    await producer.send({ topic, messages: alerts.map((a) => ({ key: a.id, value: JSON.stringify(a) })) })
    const at = performance.timeOrigin + performance.now()
    for (const a of alerts) committed.set(a.id, at)
  }
  await sender.start(topic)
  progress(`${sender.name}: burst of ${BURST} alerts x ${receivers.urls.length} endpoints`)
  const burst = Array.from({ length: BURST }, (_, i) => alert(i))
  for (let i = 0; i < burst.length; i += 500) await publish(burst.slice(i, i + 500))
  const burstStart = Math.min(...burst.map((a) => committed.get(a.id)!))
  const deadline = Date.now() + burstCap * 1000
  const deliveredOf = (alerts: { id: string }[]) =>
    alerts.reduce((sum, a) => sum + (receivers.received.get(a.id)?.length ?? 0), 0)
  const full = BURST * receivers.urls.length
  while (deliveredOf(burst) < full && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  const burstDeliveries = deliveredOf(burst)
  const lastAt = Math.max(...burst.flatMap((a) => receivers.received.get(a.id) ?? [0]))
  const burstSeconds = (Math.min(lastAt, performance.timeOrigin + performance.now()) - burstStart) / 1000
  const burstAlerts = burst.filter(
    (a) => (receivers.received.get(a.id)?.length ?? 0) >= receivers.urls.length,
  ).length

  let pacedDeliveries = 0
  const latencies: number[] = []
  // The paced phase on a topic of its own, the sender started afresh: no backlog left in its way.
  await sender.stop()
  topic = await newTopic()
  await sender.start(topic)
  {
    progress(`${sender.name}: paced, ${RATE} alerts/s for ${SECONDS} s`)
    const paced: ReturnType<typeof alert>[] = []
    const started = Date.now()
    for (let tick = 0; tick < RATE * SECONDS; tick++) {
      const a = alert(BURST + tick)
      paced.push(a)
      await publish([a])
      const next = started + ((tick + 1) * 1000) / RATE
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())))
    }
    const settle = Date.now() + 30_000
    while (deliveredOf(paced) < paced.length * receivers.urls.length && Date.now() < settle)
      await new Promise((r) => setTimeout(r, 100))
    for (const a of paced)
      for (const at of receivers.received.get(a.id) ?? []) latencies.push(at - committed.get(a.id)!)
    pacedDeliveries = latencies.length
  }
  await sender.stop()
  await producer.disconnect()
  await admin.deleteTopics({ topics }).catch(() => {})
  await admin.disconnect()
  return { sender: sender.name, burstAlerts, burstDeliveries, burstSeconds, pacedDeliveries, latencies }
}

// ------------------------------------------------------------------------------------------- main
const adminUrl = env('DATABASE_URL')
const dbName = `bench_webhooks_${randomUUID().replaceAll('-', '')}`
const admin = new pg.Client({ connectionString: adminUrl })
await admin.connect()
await admin.query(`CREATE DATABASE ${dbName}`)
const dbUrl = new URL(adminUrl)
dbUrl.pathname = `/${dbName}`
const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 })
const kafka = new Kafka({
  clientId: 'bench-webhooks',
  brokers: env('KAFKA_BROKERS').split(','),
  logLevel: logLevel.NOTHING,
})
const receivers = await startReceivers(ENDPOINTS)
const loadBefore = loadavg()
  .map((n) => n.toFixed(2))
  .join(' ')
const results: Result[] = []
try {
  await runMigrations(pool)
  const { rows } = await pool.query<{ id: string }>(
    "INSERT INTO users (username, password_hash) VALUES ('bench', 'x') RETURNING id",
  )
  for (const url of receivers.urls) {
    await pool.query(
      "INSERT INTO webhooks (owner, url, secret) VALUES ($1, $2, 'whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaGJlbmNo')",
      [rows[0]!.id, url],
    )
  }
  results.push(await run(kafka, notifierSender(dbUrl.toString()), receivers, 600))
  results.push(await run(kafka, naiveSender(kafka, receivers.urls), receivers, NAIVE_SECONDS))
} finally {
  await receivers.close()
  await pool.end()
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
  await admin.end()
}

const pct = (values: number[], q: number) => {
  if (values.length === 0) return '—'
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(0)
}
console.log(
  `${ENDPOINTS} endpoints on loopback (HTTP servers in the bench process, 204 ${DELAY_MS > 0 ? `after ${DELAY_MS} ms` : 'at once'}). Burst: ${BURST} alerts ` +
    `produced at once, timed from the first ack to the last 2xx (the naive sender is stopped after ` +
    `${NAIVE_SECONDS} s). Paced: ${RATE} alerts/s for ${SECONDS} s, latency per delivery from the alert's ack to ` +
    `the receiver's 2xx. Notifier defaults (128 in flight, 8 per endpoint), signing and recording every ` +
    `attempt in PostgreSQL; load average before: ${loadBefore}, after: ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}.`,
)
console.log('')
console.log(
  '| sender | burst alerts fully delivered | burst deliveries | deliveries/s | alerts/s (to every endpoint) | paced deliveries | p50 ms | p99 ms |',
)
console.log('|---|---:|---:|---:|---:|---:|---:|---:|')
for (const r of results) {
  console.log(
    `| ${r.sender} | ${r.burstAlerts} | ${r.burstDeliveries} | ${(r.burstDeliveries / r.burstSeconds).toFixed(0)} | ` +
      `${(r.burstDeliveries / ENDPOINTS / r.burstSeconds).toFixed(1)} | ${r.pacedDeliveries} | ${pct(r.latencies, 0.5)} | ${pct(r.latencies, 0.99)} |`,
  )
}
process.exit(0)
