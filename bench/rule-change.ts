// Rule change → first match: how long after the API answers a rule change the first alert naming
// the new version is on the alerts topic, with detections flowing at a steady rate. The API and the
// indexer run as their own processes from source, on a fresh database and fresh topics.
//
//   node --conditions=development --import tsx bench/rule-change.ts            # 30 changes of each kind
//   node --conditions=development --import tsx bench/rule-change.ts --tiny     # smoke: 3 of each
//   options: --changes N --rate R (detections/s, default 200)
//
// Every detection is a Toyota Supra coupe (the built-in rule, SUV, never matches it), produced at
// `rate` per second. Each change creates a private rule on make Toyota (201: version 1), disables it
// (version 2), waits, and enables it again (200: version 3), then deletes it. Timed from the API's
// answer to: the record on the rules changelog (the API's outbox relay), and the first alert
// naming that version on the alerts topic (read_committed: the indexer's transaction committed).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Kafka, logLevel } from 'kafkajs'
import pg from 'pg'
import { TS_NODE_FLAGS } from '../test/support/node-flags.js'

const { values: args } = parseArgs({
  options: {
    tiny: { type: 'boolean', default: false },
    changes: { type: 'string' },
    rate: { type: 'string' },
    /** A setting of the indexer for this run, e.g. `--indexer-env KAFKA_RETRY_INITIAL_MS=25`; repeatable. */
    'indexer-env': { type: 'string', multiple: true },
  },
})
const CHANGES = Number(args.changes ?? (args.tiny ? 3 : 30))
const RATE = Number(args.rate ?? 200)
const root = new URL('..', import.meta.url).pathname
const progress = (text: string) => process.stderr.write(`[rule-change] ${text}\n`)

function env(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set (bench/run.ts sets it from the local services)`)
  return value
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

const id = randomUUID().replaceAll('-', '').slice(0, 12)
const topics = {
  DETECTIONS_TOPIC: `bench-rule-change-${id}.detections`,
  ALERTS_TOPIC: `bench-rule-change-${id}.alerts`,
  DLQ_TOPIC: `bench-rule-change-${id}.dlq`,
  ALERT_RULES_TOPIC: `bench-rule-change-${id}.rules`,
}
const dbName = `bench_rule_change_${id}`
const adminUrl = env('DATABASE_URL')
const dbUrl = (name: string) => {
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}
const kafka = new Kafka({
  clientId: 'bench-rule-change',
  brokers: env('KAFKA_BROKERS').split(','),
  logLevel: logLevel.NOTHING,
})
const children: ChildProcess[] = []
let output = ''

function start(name: string, extra: Record<string, string>) {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, `packages/${name}/src/main.ts`], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...topics,
      INDEXER_GROUP_ID: `bench-rule-change-${id}`,
      ALERTS_GROUP_PREFIX: `bench-rule-change-${id}`,
      DATABASE_URL: dbUrl(dbName),
      DETECTIONS_STORE_URL: dbUrl(`${dbName}_detections`),
      SUSPICIOUS_VEHICLE: 'SUV',
      HOST: '127.0.0.1',
      INDEXER_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...extra,
    },
  })
  for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk) => (output += chunk))
  children.push(child)
}

async function ready(url: string) {
  const deadline = Date.now() + 120_000
  for (;;) {
    if ((await fetch(url).catch(() => null))?.ok) return
    if (Date.now() > deadline || children.some((c) => c.exitCode !== null))
      throw new Error(`${url} not ready:\n${output.slice(-3000)}`)
    await sleep(200)
  }
}

interface Change {
  kind: 'create' | 'enable'
  /** From the API's answer to the record on the changelog, and to the first alert naming the version. */
  changelogMs: number
  alertMs: number
}

const loadBefore = loadavg()
  .map((n) => n.toFixed(2))
  .join(' ')
const admin = new pg.Client({ connectionString: adminUrl })
await admin.connect()
await admin.query(`CREATE DATABASE ${dbName}`)
const changes: Change[] = []
const kafkaAdmin = kafka.admin()
await kafkaAdmin.connect()
const producer = kafka.producer()
const alertsConsumer = kafka.consumer({ groupId: `bench-rule-change-${id}-alerts`, maxWaitTimeInMs: 100 })
const rulesConsumer = kafka.consumer({ groupId: `bench-rule-change-${id}-rules`, maxWaitTimeInMs: 100 })
let producing = true
try {
  const [apiPort, indexerPort] = [await freePort(), await freePort()]
  const api = `http://127.0.0.1:${apiPort}`
  const indexerEnv = Object.fromEntries(
    (args['indexer-env'] ?? []).map((kv) => kv.split('=', 2) as [string, string]),
  )
  start('indexer', { ...indexerEnv, INDEXER_PORT: String(indexerPort) })
  start('api', { PORT: String(apiPort), BCRYPT_COST: '4', JWT_SECRET: randomUUID() + randomUUID() })
  await Promise.all([ready(`http://127.0.0.1:${indexerPort}/readyz`), ready(`${api}/readyz`)])

  /** When each `rule@version` was first seen: on the changelog, on the alerts topic. */
  const seen = { changelog: new Map<string, number>(), alerts: new Map<string, number>() }
  const note = (map: Map<string, number>, key: string) => {
    if (!map.has(key)) map.set(key, performance.now())
  }
  await rulesConsumer.connect()
  await rulesConsumer.subscribe({ topic: topics.ALERT_RULES_TOPIC, fromBeginning: true })
  await rulesConsumer.run({
    eachMessage: async ({ message }) => {
      if (!message.value) return
      const { rule } = JSON.parse(message.value.toString()) as { rule: { id: string; version: number } }
      note(seen.changelog, `${rule.id}@${rule.version}`)
    },
  })
  await alertsConsumer.connect()
  await alertsConsumer.subscribe({ topic: topics.ALERTS_TOPIC, fromBeginning: true })
  await alertsConsumer.run({
    eachMessage: async ({ message }) => {
      const alert = JSON.parse(message.value?.toString() ?? '{}') as {
        rules?: { id: string; version: number }[]
      }
      for (const rule of alert.rules ?? []) note(seen.alerts, `${rule.id}@${rule.version}`)
    },
  })

  await producer.connect()
  const detection = JSON.stringify({ Year: 1998, Make: 'Toyota', Model: 'Supra', Category: 'Coupe' })
  const produced = (async () => {
    // Ticks of 10 ms, each sending what the rate owes since the start.
    const t0 = performance.now()
    let sent = 0
    while (producing) {
      const owed = Math.floor(((performance.now() - t0) / 1000) * RATE) - sent
      if (owed > 0) {
        await producer.send({
          topic: topics.DETECTIONS_TOPIC,
          messages: Array.from({ length: owed }, () => ({ value: detection })),
        })
        sent += owed
      }
      await sleep(10)
    }
    return sent
  })()

  const call = async (path: string, init: RequestInit & { token?: string } = {}) => {
    const headers = new Headers(init.headers)
    if (init.token) headers.set('authorization', `Bearer ${init.token}`)
    if (init.body) headers.set('content-type', 'application/json')
    const response = await fetch(`${api}${path}`, { ...init, headers })
    const answeredAt = performance.now()
    const text = await response.text()
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${response.status} ${text}`)
    return { answeredAt, body: (text ? JSON.parse(text) : undefined) as { id: string; version: number } }
  }
  const credentials = JSON.stringify({ username: 'bench', password: 'correct horse battery' })
  await call('/users', { method: 'POST', body: credentials })
  const token = (await call('/auth/token', { method: 'POST', body: credentials })).body as unknown as {
    access_token: string
  }
  const auth = token.access_token

  const until = async (map: Map<string, number>, key: string) => {
    const deadline = performance.now() + 30_000
    while (!map.has(key)) {
      if (performance.now() > deadline) throw new Error(`${key} never seen:\n${output.slice(-3000)}`)
      await sleep(2)
    }
    return map.get(key)!
  }
  const measure = async (kind: Change['kind'], answeredAt: number, key: string) => {
    const [changelog, alert] = [await until(seen.changelog, key), await until(seen.alerts, key)]
    changes.push({ kind, changelogMs: changelog - answeredAt, alertMs: alert - answeredAt })
  }

  // Detections flow before the first change is timed.
  await sleep(2_000)
  for (let i = 0; i < CHANGES; i++) {
    const created = await call('/rules', {
      method: 'POST',
      token: auth,
      body: JSON.stringify({ name: `rule ${i}`, match: { make: ['Toyota'] } }),
    })
    const ruleId = created.body.id
    await measure('create', created.answeredAt, `${ruleId}@1`)
    await call(`/rules/${ruleId}`, { method: 'PATCH', token: auth, body: JSON.stringify({ enabled: false }) })
    await until(seen.changelog, `${ruleId}@2`)
    await sleep(300)
    const enabled = await call(`/rules/${ruleId}`, {
      method: 'PATCH',
      token: auth,
      body: JSON.stringify({ enabled: true }),
    })
    await measure('enable', enabled.answeredAt, `${ruleId}@3`)
    await call(`/rules/${ruleId}`, { method: 'DELETE', token: auth })
    await sleep(200)
    if ((i + 1) % 10 === 0) progress(`${i + 1}/${CHANGES} changes`)
  }
  producing = false
  progress(`${await produced} detections produced`)
  // A transaction begun while the broker still completes the previous one is refused
  // (CONCURRENT_TRANSACTIONS) and retried by kafkajs after KAFKA_RETRY_INITIAL_MS or more.
  const refused = output.split('\n').filter((line) => line.includes('another concurrent operation')).length
  progress(`transactional sends retried for CONCURRENT_TRANSACTIONS: ${refused}`)
} finally {
  producing = false
  await Promise.all([alertsConsumer.disconnect(), rulesConsumer.disconnect(), producer.disconnect()]).catch(
    () => {},
  )
  for (const child of children) {
    child.kill('SIGTERM')
    if (child.exitCode === null) await Promise.race([once(child, 'exit'), sleep(15_000)])
  }
  await kafkaAdmin.deleteTopics({ topics: Object.values(topics) }).catch(() => {})
  const groups = (await kafkaAdmin.listGroups()).groups.map((g) => g.groupId)
  await kafkaAdmin.deleteGroups(groups.filter((g) => g.startsWith(`bench-rule-change-${id}`))).catch(() => {})
  await kafkaAdmin.disconnect()
  for (const name of [dbName, `${dbName}_detections`])
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {})
  await admin.end()
}

const quantile = (values: number[], q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}
const ms = (n: number) => n.toFixed(0)
const lines = [
  '',
  `Rule change → first match: ${CHANGES} changes of each kind on one API and one indexer (their own ` +
    `processes), detections at ${RATE}/s all matching the rule while it is enabled. Timed from the API's ` +
    'answer (201 for a new rule, 200 for a PATCH enabling one) to the rule version on the changelog ' +
    "(the API's outbox relay) and to the first alert naming it on the alerts topic (read_committed), " +
    `both seen by consumers of this process (fetch wait 100 ms). Load average before: ${loadBefore}.${
      args['indexer-env'] ? ` Indexer settings: ${args['indexer-env'].join(' ')}.` : ''
    } Target: p99 ≤ 1 s.`,
  '',
  '| change | n | → changelog p50 ms | → changelog p99 ms | → first alert p50 ms | → first alert p99 ms | max ms |',
  '|---|---:|---:|---:|---:|---:|---:|',
]
for (const kind of ['create', 'enable'] as const) {
  const rows = changes.filter((c) => c.kind === kind)
  const alert = rows.map((c) => c.alertMs)
  const changelog = rows.map((c) => c.changelogMs)
  lines.push(
    `| ${kind === 'create' ? 'POST /rules (201)' : 'PATCH enabled: true (200)'} | ${rows.length} | ` +
      `${ms(quantile(changelog, 0.5))} | ${ms(quantile(changelog, 0.99))} | ${ms(quantile(alert, 0.5))} | ` +
      `${ms(quantile(alert, 0.99))} | ${ms(Math.max(...alert))} |`,
  )
}
console.log(lines.join('\n'))
