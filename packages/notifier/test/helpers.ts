// The notifier's test harness: a users database of its own (the API's migrations), a unique
// alerts topic, receivers on loopback, and the notifier itself, in this process or as a child.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { migrateUnderLock } from '@intellisite/common'
import type { Alert, AlertRule } from '@intellisite/detections-store'
import { generateSecret, type HostResolver } from '@intellisite/webhooks'
import type { Kafka, Producer } from 'kafkajs'
import pg from 'pg'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { onTestFinished } from 'vitest'
import { requireEnv } from '../../../test/support/env.js'
import { testKafka } from '../../../test/support/kafka.js'
import { freePort } from '../../../test/support/ports.js'
import { dropPostgresDatabase } from '../../../test/support/postgres.js'
import { waitFor } from '../../../test/support/wait.js'
import { loadConfig } from '../src/config.js'
import { createNotifierMetrics } from '../src/metrics.js'
import { createNotifier, type Notifier } from '../src/notifier.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))
const API_MIGRATIONS = fileURLToPath(new URL('../../api/migrations/*.sql', import.meta.url))

export interface TestDatabase {
  url: string
  pool: pg.Pool
}

/** A users database of its own with the API's schema (webhook tables included), dropped after the test. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = requireEnv('DATABASE_URL')
  const name = `notifier_test_${randomUUID().replaceAll('-', '')}`
  const admin = new pg.Client({ connectionString: adminUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const pool = new pg.Pool({ connectionString: url.toString(), max: 10 })
  await migrateUnderLock(pool, {
    migrationPattern: API_MIGRATIONS,
    schemaTable: 'schema_version',
    lock: 0x1e7e11,
  })
  onTestFinished(async () => {
    await pool.end()
    await dropPostgresDatabase(adminUrl, name)
  })
  return { url: url.toString(), pool }
}

export async function createUser(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    "INSERT INTO users (username, password_hash) VALUES ($1, 'x') RETURNING id",
    [`u-${randomUUID()}`],
  )
  return rows[0]!.id
}

export interface TestEndpoint {
  id: string
  secret: string
}

/** An endpoint row as the API would create it (the URL check is the API's; tests place any URL). */
export async function createEndpoint(
  pool: pg.Pool,
  owner: string,
  url: string,
  options: { rules?: string[] } = {},
): Promise<TestEndpoint> {
  const secret = generateSecret()
  const { rows } = await pool.query<{ id: string }>(
    'INSERT INTO webhooks (owner, url, secret, rules) VALUES ($1, $2, $3, $4) RETURNING id',
    [owner, url, secret, options.rules ?? null],
  )
  return { id: rows[0]!.id, secret }
}

export interface ReceivedRequest {
  headers: IncomingHttpHeaders
  body: string
  receivedAt: number
}

export interface Receiver {
  url: string
  port: number
  requests: ReceivedRequest[]
  /** Connections accepted, answered or not. */
  connections: number
  /** How to answer each request; 204 by default. */
  respond: (request: ReceivedRequest, response: ServerResponse) => void
  /** Stops listening (connections are then refused) until `start()` again on the same port. */
  stop(): Promise<void>
  start(): Promise<void>
}

/** An HTTP server on 127.0.0.1 that records every request. */
export async function createReceiver(port?: number): Promise<Receiver> {
  let server: Server | undefined
  const receiver: Receiver = {
    url: '',
    port: port ?? (await freePort()),
    requests: [],
    connections: 0,
    respond: (_request, response) => {
      response.writeHead(204).end()
    },
    async start() {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (chunk: Buffer) => chunks.push(chunk))
        req.on('end', () => {
          const received = {
            headers: req.headers,
            body: Buffer.concat(chunks).toString('utf8'),
            receivedAt: Date.now(),
          }
          receiver.requests.push(received)
          receiver.respond(received, res)
        })
      })
      s.keepAliveTimeout = 60_000
      s.on('connection', () => {
        receiver.connections++
      })
      server = s
      s.listen(receiver.port, '127.0.0.1')
      await once(s, 'listening')
    },
    async stop() {
      const s = server
      server = undefined
      if (!s) return
      s.closeAllConnections()
      await new Promise<void>((resolve) => s.close(() => resolve()))
    },
  }
  receiver.url = `http://127.0.0.1:${receiver.port}/hooks`
  await receiver.start()
  onTestFinished(() => receiver.stop())
  return receiver
}

export const SHARED_RULE: AlertRule = {
  id: '00000000-0000-4000-8000-000000000001',
  version: 1,
  name: 'SUSPICIOUS_VEHICLE',
  scope: 'shared',
}

export function testAlert(n: number, rules: AlertRule[] = [SHARED_RULE]): Alert {
  return {
    id: `det-${n}-${randomUUID().slice(0, 8)}`,
    detectedAt: new Date().toISOString(),
    year: 2015,
    make: 'Toyota',
    model: 'RAV4',
    category: 'SUV',
    reason: 'category matches SUV',
    rules,
  }
}

export interface AlertsTopic {
  name: string
  kafka: Kafka
  producer: Producer
  publish(alerts: readonly Alert[]): Promise<void>
}

/** A unique alerts topic and a producer for it (plain, not transactional: read_committed reads those too). */
export async function createAlertsTopic(partitions = 3): Promise<AlertsTopic> {
  const kafka = testKafka('notifier-test')
  const name = `test.alerts.${randomUUID()}`
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }], waitForLeaders: true })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  onTestFinished(async () => {
    await producer.disconnect()
    await admin.deleteTopics({ topics: [name] }).catch(() => {})
    await admin.disconnect()
  })
  return {
    name,
    kafka,
    producer,
    async publish(alerts) {
      for (let i = 0; i < alerts.length; i += 1_000) {
        await producer.send({
          topic: name,
          messages: alerts.slice(i, i + 1_000).map((a) => ({ key: a.id, value: JSON.stringify(a) })),
        })
      }
    },
  }
}

/** Settings for a test: the loopback receivers need WEBHOOK_ALLOW_PRIVATE, and a compressed retry schedule. */
export function notifierEnv(database: TestDatabase, topic: string, env: Record<string, string> = {}) {
  return {
    KAFKA_BROKERS: requireEnv('KAFKA_BROKERS'),
    DATABASE_URL: database.url,
    ALERTS_TOPIC: topic,
    NOTIFIER_GROUP_ID: `notifier-test-${randomUUID()}`,
    NOTIFIER_FROM_BEGINNING: 'true',
    NOTIFIER_PORT: '0',
    NOTIFIER_HOST: '127.0.0.1',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    WEBHOOK_RETRY_SCHEDULE: '200ms,400ms,800ms,1s,1s,1s,1s,1s',
    WEBHOOK_POLL_INTERVAL: '50ms',
    WEBHOOK_CONNECT_TIMEOUT: '1s',
    WEBHOOK_RESPONSE_TIMEOUT: '2s',
    WEBHOOK_TOTAL_TIMEOUT: '3s',
    LOG_LEVEL: 'warn',
    ...env,
  }
}

export interface RunningNotifier {
  notifier: Notifier
  registry: Registry
  logs: string[]
  stop(): Promise<void>
}

/** The notifier in this process, stopped after the test. */
export async function startNotifier(
  env: Record<string, string>,
  options: { resolve?: HostResolver } = {},
): Promise<RunningNotifier> {
  const config = loadConfig(env)
  const logs: string[] = []
  const logger = pino({ level: config.logLevel }, { write: (line: string) => void logs.push(line) })
  const pool = new pg.Pool({ connectionString: config.databaseUrl, max: 10 })
  const registry = new Registry()
  const metrics = createNotifierMetrics(registry)
  const notifier = createNotifier({
    kafka: testKafka('notifier'),
    pool,
    config,
    logger,
    metrics,
    ...(options.resolve && { resolve: options.resolve }),
    onFatalError: (err) => logs.push(`fatal: ${String(err)}`),
  })
  await notifier.start()
  await waitFor(() => notifier.kafkaReady(), { what: 'the notifier to join its group' })
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    await notifier.stop()
    await pool.end()
  }
  onTestFinished(stop)
  return { notifier, registry, logs, stop }
}

/** The notifier as a child process (`src/main.ts` through tsx), for tests that kill it. */
export function spawnNotifier(env: Record<string, string>): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '--disable-warning=TimeoutNegativeWarning',
      '--conditions=development',
      '--import',
      'tsx',
      'packages/notifier/src/main.ts',
    ],
    { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4_000)
  })
  ;(child as ChildProcess & { stderrTail: () => string }).stderrTail = () => stderr
  return child
}

/** Waits for a delivery state count in the database. */
export async function deliveryStates(pool: pg.Pool): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ state: string; n: string }>(
    'SELECT state, count(*) AS n FROM webhook_deliveries GROUP BY state',
  )
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]))
}
