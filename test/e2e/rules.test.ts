// Runtime alert rules across the real stack: the API and the indexer as their own processes from
// source, on the shared Kafka and PostgreSQL. A user's private rule, created through the API, raises
// alerts on that user's stream only, a moment after it is created, and no more once deleted; a shared
// rule reaches everyone; the built-in SUSPICIOUS_VEHICLE rule reads as it always has.
//
// Every detection goes to partition 0 of the detections topic, so every alert lands on one alerts
// partition in production order: an alert received after another proves the stream went past the
// earlier one, which is how "never received" is shown without waiting for long.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { EventSource } from 'eventsource'
import type { Producer } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testKafka } from '../support/kafka.js'
import { TS_NODE_FLAGS } from '../support/node-flags.js'
import { freePort } from '../support/ports.js'
import { createStackScope, stopChild } from '../support/stack-scope.js'
import { waitFor } from '../support/wait.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const BUILTIN_RULE_ID = '00000000-0000-4000-8000-000000000001'

/** An alert as a reader receives it (`alertForReader`): the rules they may see, no owners. */
interface ReceivedAlert {
  id: string
  make: string
  model: string
  category: string
  reason: string
  rules: { id: string; version: number; name: string; scope: string; owner?: string }[]
  receivedAt: number
}

interface Detection {
  Year: number
  Make: string
  Model: string
  Category: string
}

describe('alert rules on the real stack: API -> rules changelog -> indexer -> alerts -> SSE', () => {
  const scope = createStackScope('rules')
  const children: ChildProcess[] = []
  let output = ''
  let api = ''
  let indexerMetrics = ''
  let producer: Producer | undefined
  const streams: EventSource[] = []

  function start(name: string, env: Record<string, string>) {
    const child = spawn(process.execPath, [...TS_NODE_FLAGS, `packages/${name}/src/main.ts`], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (chunk) => (output += chunk))
    children.push(child)
    return child
  }

  async function ready(url: string) {
    await waitFor(
      async () => {
        if (children.some((c) => c.exitCode !== null)) throw new Error(`a process exited:\n${output}`)
        return (await fetch(url).catch(() => null))?.ok === true
      },
      { timeoutMs: 60_000, intervalMs: 200, what: () => `${url}\n${output.slice(-3000)}` },
    )
  }

  beforeAll(async () => {
    const [apiPort, indexerPort] = [await freePort(), await freePort()]
    api = `http://127.0.0.1:${apiPort}`
    indexerMetrics = `http://127.0.0.1:${indexerPort}/metrics`
    const env = {
      ...scope.env,
      DATABASE_URL: await scope.createDatabase(),
      DETECTIONS_STORE_URL: scope.databaseUrl('DATABASE_URL', '_detections'),
      SUSPICIOUS_VEHICLE: 'SUV',
      HOST: '127.0.0.1',
      INDEXER_HOST: '127.0.0.1',
      NO_COLOR: '1',
      LOG_LEVEL: 'warn',
    }
    // The indexer first: it creates the topics (the API's rules publisher creates the changelog).
    start('indexer', { ...env, INDEXER_PORT: String(indexerPort) })
    start('api', {
      ...env,
      PORT: String(apiPort),
      BCRYPT_COST: '4',
      JWT_SECRET: randomUUID() + randomUUID(),
      ADMIN_USERNAME: `admin-${scope.id}`,
      ADMIN_PASSWORD: 'correct horse battery',
    })
    producer = testKafka(scope.id).producer()
    await Promise.all([
      ready(`http://127.0.0.1:${indexerPort}/readyz`),
      ready(`${api}/readyz`),
      producer.connect(),
    ])
  }, 90_000)

  afterAll(async () => {
    for (const stream of streams) stream.close()
    await producer?.disconnect()
    await Promise.all(children.map((child) => stopChild(child, 15_000)))
    await scope.cleanup()
  }, 60_000)

  async function call<T>(path: string, init: RequestInit & { token?: string } = {}) {
    const headers = new Headers(init.headers)
    if (init.token) headers.set('authorization', `Bearer ${init.token}`)
    if (init.body) headers.set('content-type', 'application/json')
    const response = await fetch(`${api}${path}`, { ...init, headers })
    const text = await response.text()
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T }
  }

  async function login(username: string, signUp = true): Promise<string> {
    const credentials = { username, password: 'correct horse battery' }
    if (signUp)
      expect((await call('/users', { method: 'POST', body: JSON.stringify(credentials) })).status).toBe(201)
    const token = await call<{ access_token: string }>('/auth/token', {
      method: 'POST',
      body: JSON.stringify(credentials),
    })
    expect(token.status).toBe(200)
    return token.body.access_token
  }

  /** The reader's live stream, recording every alert with the time it arrived. */
  async function follow(token: string): Promise<ReceivedAlert[]> {
    const received: ReceivedAlert[] = []
    const source = new EventSource(`${api}/alerts`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } }),
    })
    streams.push(source)
    source.addEventListener('alert', (event) =>
      received.push({ ...JSON.parse(event.data), receivedAt: performance.now() }),
    )
    await new Promise<void>((resolve, reject) => {
      source.onopen = () => resolve()
      source.onerror = (event) => reject(new Error(`alerts stream: ${event.message ?? 'error'}`))
    })
    return received
  }

  /** Rule records the indexer has applied from the changelog, by kind. */
  async function applied(kind: 'upsert' | 'delete'): Promise<number> {
    const text = await (await fetch(indexerMetrics)).text()
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`indexer_rule_records_applied_total{kind="${kind}"}`))
    return line ? Number(line.split(' ').at(-1)) : 0
  }

  /** Produces one detection (partition 0) and returns when the broker has it, and its send time. */
  async function produce(detection: Detection): Promise<number> {
    const sentAt = performance.now()
    await producer?.send({
      topic: scope.topics.detections,
      messages: [{ value: JSON.stringify(detection), partition: 0 }],
    })
    return sentAt
  }

  const arrival = async (alerts: ReceivedAlert[], predicate: (a: ReceivedAlert) => boolean, what: string) => {
    await waitFor(() => alerts.some(predicate), { timeoutMs: 15_000, intervalMs: 10, what })
    return alerts.find(predicate)!
  }

  it("delivers a private rule's alerts to its owner only, shared rules to everyone, and stops when deleted", async () => {
    const [tokenA, tokenB, tokenAdmin] = [
      await login(`a-${scope.id}`),
      await login(`b-${scope.id}`),
      await login(`admin-${scope.id}`, false),
    ]
    const [alertsA, alertsB] = [await follow(tokenA), await follow(tokenB)]

    // A Supra coupe: only A's rule matches it (the built-in rule wants an SUV).
    const supra: Detection = { Year: 1998, Make: 'TOYOTA', Model: 'supra', Category: 'Coupe' }
    const upserts = await applied('upsert')
    const created = await call<{ id: string; version: number; name: string }>('/rules', {
      method: 'POST',
      token: tokenA,
      body: JSON.stringify({ name: 'my Supra', match: { model: [{ make: 'Toyota', model: 'Supra' }] } }),
    })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    const rule = created.body
    await waitFor(async () => (await applied('upsert')) > upserts, { what: 'the indexer applying the rule' })

    const sentAt = await produce(supra)
    const forA = await arrival(alertsA, (a) => a.rules.some((r) => r.id === rule.id), "A's alert")
    expect(forA.receivedAt - sentAt, 'produce -> SSE, rule in force').toBeLessThan(2_000)
    expect(forA).toMatchObject({
      make: 'TOYOTA',
      model: 'supra',
      category: 'Coupe',
      reason: 'matches rule my Supra',
    })
    expect(forA.rules).toEqual([{ id: rule.id, version: 1, name: 'my Supra', scope: 'private' }])

    // B's stream is live: it receives a shared rule's alert produced after A's, never A's.
    await sleep(500)
    const shared = await call<{ id: string }>('/rules', {
      method: 'POST',
      token: tokenAdmin,
      body: JSON.stringify({ name: 'every Lotus', scope: 'shared', match: { make: ['Lotus'] } }),
    })
    expect(shared.status, JSON.stringify(shared.body)).toBe(201)
    await waitFor(async () => (await applied('upsert')) > upserts + 1, {
      what: 'the indexer applying the shared rule',
    })
    await produce({ Year: 2010, Make: 'Lotus', Model: 'Evora', Category: 'Coupe' })
    const lotus = (a: ReceivedAlert) => a.rules.some((r) => r.id === shared.body.id)
    await arrival(alertsB, lotus, "B's shared alert")
    await arrival(alertsA, lotus, "A's shared alert")
    expect(alertsB.filter((a) => a.id === forA.id)).toEqual([])
    expect(alertsB.flatMap((a) => a.rules).filter((r) => r.id === rule.id)).toEqual([])

    // Deleted: a new Supra alerts nobody. The SUV after it proves A's stream went past it.
    const deletes = await applied('delete')
    expect((await call(`/rules/${rule.id}`, { method: 'DELETE', token: tokenA })).status).toBe(204)
    await waitFor(async () => (await applied('delete')) > deletes, { what: 'the indexer removing the rule' })
    await produce(supra)
    await produce({ Year: 2015, Make: 'Jeep', Model: 'Cherokee', Category: 'SUV' })
    const suv = (a: ReceivedAlert) => a.category === 'SUV'
    await arrival(alertsA, suv, "A's SUV alert")
    expect(alertsA.filter((a) => a.model === 'supra')).toHaveLength(1)

    // The built-in rule, for a client that knows nothing of rules: the alert as it always was.
    const builtin = await arrival(alertsB, suv, "B's SUV alert")
    expect(builtin).toMatchObject({
      make: 'Jeep',
      model: 'Cherokee',
      year: 2015,
      reason: 'category matches SUV',
    })
    expect(builtin.rules).toEqual([
      { id: BUILTIN_RULE_ID, version: 1, name: 'SUSPICIOUS_VEHICLE', scope: 'shared' },
    ])
    expect(alertsB.map((a) => a.make)).toEqual(['Lotus', 'Jeep'])
  }, 60_000)
})
