// Two API processes (packages/api/src/main.ts from source, the real app on the real databases and
// Kafka) behind HAProxy rendered from docker/haproxy/haproxy.cfg.template, as `API_REPLICAS=2
// npm start` runs them. Every replica answers alike (one JWT secret; a resume token of one resumes
// on the other); a replica that is not ready leaves the pool and comes back by itself; a rolling
// restart (each replica in turn stopped gracefully and started again) and SIGKILL of a replica send
// their SSE clients, by themselves, to the other replica with no gap and no duplicate; the
// dashboard, in Chromium, keeps its live feed whole across the death of each replica in turn.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { BrowserContext } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RestartableReplica, rollingRestart } from '../../bench/support/rolling-restart.js'
import {
  createAlertsProducer,
  makeAlert,
  PARTITIONS,
  type Received,
  subscribe,
} from '../../packages/api/test/alerts/helpers.js'
import { replicaServers, serverStates, startHaproxy } from '../../scripts/haproxy/haproxy.js'
import { buildDashboard, launchChromium } from '../support/browser.js'
import { testKafka } from '../support/kafka.js'
import { TS_NODE_FLAGS } from '../support/node-flags.js'
import { freePort } from '../support/ports.js'
import { createStackScope, stopChild } from '../support/stack-scope.js'
import { createTcpProxy, type TcpProxy } from '../support/tcp-proxy.js'
import { waitFor } from '../support/wait.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scope = createStackScope('replicas')
const dir = mkdtempSync(join(tmpdir(), 'replicas-test-'))
const socket = join(dir, 'admin.sock')
const secret = randomBytes(32).toString('base64url')
/** SSE clients of the rolling restart; `bench/replicas.ts --rolling-clients 1000` runs it with more. */
const ROLLING_CLIENTS = 60
const RETRY_MS = 300

interface Replica {
  name: string
  port: number
  env: Record<string, string>
  process: ChildProcess
  output: string
}
const replicas: Replica[] = []
let proxy: ChildProcess | undefined
let proxyUrl = ''
/** The dashboard every replica serves, and the browser that opens it (only the dashboard test). */
let dashboardDir = ''
let browser: BrowserContext | undefined
/** Between replica 2 and its detections store: cut to make that replica not ready. */
let storeLink: TcpProxy | undefined

async function startReplica(name: string, env: Record<string, string>, port?: number): Promise<Replica> {
  port ??= await freePort()
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, 'packages/api/src/main.ts'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...scope.env,
      ...env,
      HOST: '127.0.0.1',
      PORT: String(port),
      JWT_SECRET: secret,
      TRUST_PROXY: 'true',
      BCRYPT_COST: '4',
      LOG_LEVEL: 'warn',
      // EventSource waits this long before reconnecting; quick heartbeats keep the test short.
      SSE_RETRY_MS: String(RETRY_MS),
      SSE_HEARTBEAT_MS: '1000',
      // One user holds every stream of the rolling restart, all on one replica while the other is down.
      SSE_MAX_CONNECTIONS_PER_USER: String(ROLLING_CLIENTS + 10),
    },
  })
  const replica: Replica = { name, port, env, process: child, output: '' }
  const keep = (chunk: Buffer) => {
    replica.output = (replica.output + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return replica
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok
  } catch {
    return false
  }
}

async function post<T>(path: string, body: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${proxyUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return { status: response.status, body: (await response.json()) as T }
}

const statusOf = async (name: string) => (await serverStates(socket)).find((s) => s.name === name)?.status

/** Replica `index`, to be stopped and started again on its port, back in the pool. */
function restartable(index: number): RestartableReplica {
  const { name } = replicas[index]!
  return {
    name,
    stop: () => stopChild(replicas[index]!.process, 20_000),
    async start() {
      const { env, port } = replicas[index]!
      replicas[index] = await startReplica(name, env, port)
      await waitFor(() => ready(`http://127.0.0.1:${port}/readyz`), {
        timeoutMs: 60_000,
        what: `${name} ready`,
      })
      await waitFor(async () => (await statusOf(name)) === 'UP', { timeoutMs: 15_000, what: `${name} UP` })
    },
  }
}

beforeAll(async () => {
  await scope.createDatabase()
  const detections = new URL(scope.databaseUrl('DATABASE_URL', '_detections'))
  storeLink = await createTcpProxy({ host: detections.hostname, port: Number(detections.port) })
  const throughLink = new URL(detections)
  throughLink.host = `127.0.0.1:${storeLink.port}`
  dashboardDir = buildDashboard()
  const common = { DATABASE_URL: scope.databaseUrl('DATABASE_URL'), DASHBOARD_DIR: dashboardDir }
  // One after the other: both would run the same migrations and create the same store at once.
  replicas.push(await startReplica('api-1', { ...common, DETECTIONS_STORE_URL: detections.toString() }))
  await waitFor(() => ready(`http://127.0.0.1:${replicas[0]!.port}/readyz`), {
    timeoutMs: 60_000,
    what: 'api-1 ready',
  })
  replicas.push(await startReplica('api-2', { ...common, DETECTIONS_STORE_URL: throughLink.toString() }))
  const proxyPort = await freePort()
  proxyUrl = `http://127.0.0.1:${proxyPort}`
  proxy = startHaproxy(
    join(dir, 'haproxy.cfg'),
    {
      bind: `127.0.0.1:${proxyPort}`,
      servers: replicaServers(replicas.map((r) => r.port)),
      global: [`stats socket ${socket} mode 600 level admin`],
    },
    { stdio: 'ignore' },
  )
  await waitFor(() => ready(`http://127.0.0.1:${replicas[1]!.port}/readyz`), {
    timeoutMs: 60_000,
    what: 'api-2 ready',
  })
  await waitFor(
    async () => (await serverStates(socket).catch(() => [])).filter((s) => s.status === 'UP').length === 2,
    { timeoutMs: 10_000 },
  )
}, 120_000)

afterAll(async () => {
  await browser?.close().catch(() => undefined)
  await Promise.all(replicas.map((r) => stopChild(r.process, 10_000)))
  await stopChild(proxy, 5_000)
  await storeLink?.close()
  for (const path of [dir, dashboardDir]) if (path) rmSync(path, { recursive: true, force: true })
  await scope.cleanup()
}, 60_000)

describe('API replicas behind HAProxy', () => {
  let token = ''
  const credentials = { username: `u${scope.id}`, password: 'replica-password' }

  it('answer alike: a token from one is valid on every replica, a malformed Last-Event-ID is a 400 through the proxy', async () => {
    expect((await post('/users', credentials)).status).toBe(201)
    const login = await post<{ access_token: string }>('/auth/token', credentials)
    expect(login.status).toBe(200)
    token = login.body.access_token
    for (const { name, port } of replicas) {
      const response = await fetch(`http://127.0.0.1:${port}/detections?limit=1`, {
        headers: { authorization: `Bearer ${token}` },
      })
      expect(response.status, name).toBe(200)
    }
    const bad = await fetch(`${proxyUrl}/alerts`, {
      headers: { authorization: `Bearer ${token}`, 'last-event-id': 'not a token!' },
    })
    expect(bad.status).toBe(400)
    expect(bad.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(await bad.json()).toMatchObject({ code: 'INVALID_LAST_EVENT_ID' })
  })

  it('takes a replica out of the pool while it is not ready (its detections store is cut off), and back', async () => {
    storeLink!.pause('refuse')
    try {
      await waitFor(async () => (await statusOf('api-2'))?.startsWith('DOWN') === true, {
        timeoutMs: 15_000,
        what: 'api-2 DOWN',
      })
      expect((await fetch(`http://127.0.0.1:${replicas[1]!.port}/readyz`)).status).toBe(503)
      // Every request now reaches api-1 only: none fails.
      for (let i = 0; i < 6; i++) expect((await fetch(`${proxyUrl}/readyz`)).status).toBe(200)
    } finally {
      storeLink!.resume()
    }
    await waitFor(async () => (await statusOf('api-2')) === 'UP', {
      timeoutMs: 15_000,
      what: 'api-2 back UP',
    })
  }, 40_000)

  it('rolling restart: every SSE client resumes on the other replica each time, every alert once, in partition order', async () => {
    const producer = testKafka(`replicas-${scope.id}`).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      const result = await rollingRestart({
        port: Number(new URL(proxyUrl).port),
        token,
        clients: ROLLING_CLIENTS,
        procs: 1,
        replicas: replicas.map((_, i) => restartable(i)),
        producer,
        topic: scope.topics.alerts,
        partitions: PARTITIONS,
        ratePerSecond: 20,
        retryMs: RETRY_MS,
      })
      console.log(
        `[replicas] rolling restart, ${ROLLING_CLIENTS} clients, ${result.produced} alerts: ${result.restarts
          .map(
            (r) => `${r.replica} ended ${r.ended} streams, the last back after ${r.lastBackMs.toFixed(0)} ms`,
          )
          .join('; ')}; alert p99 ${result.latency.percentile(0.99).toFixed(0)} ms`,
      )
      // leastconn spreads the streams: each restart ends some, and every one of them comes back.
      for (const restart of result.restarts) expect(restart.ended, restart.replica).toBeGreaterThan(0)
      expect(result.restarts.reduce((a, r) => a + r.ended, 0)).toBeGreaterThanOrEqual(ROLLING_CLIENTS)
      expect(result.sequences).toEqual({
        streams: ROLLING_CLIENTS,
        minReceived: result.produced,
        maxReceived: result.produced,
        wrong: 0,
        firstWrong: undefined,
        missing: 0,
        duplicates: 0,
        outOfOrder: 0,
        complete: ROLLING_CLIENTS,
      })
    } finally {
      await producer.disconnect()
    }
  }, 60_000)

  it('the dashboard keeps its live feed when the replica serving it dies: each replica SIGKILLed in turn', async () => {
    browser = await launchChromium(join(dir, 'chromium'))
    const page = await browser.newPage()
    await page.goto(`${proxyUrl}/dashboard/`)
    await page.fill('#sign-in-username', credentials.username)
    await page.fill('#sign-in-password', credentials.password)
    await page.click('#sign-in-form button[type=submit]')
    const live = () =>
      page.waitForFunction(() => document.querySelector('#conn-state')?.textContent?.includes('live'), null, {
        timeout: 15_000,
      })
    await live()
    const producer = await createAlertsProducer(scope.topics.alerts)
    const sent: string[] = []
    const produce = async (label: string) => {
      const alerts = Array.from({ length: 3 }, (_, i) =>
        makeAlert(sent.length + i, { make: `${label}-${i}`, detectedAt: new Date().toISOString() }),
      )
      sent.push(...alerts.map((a) => a.id))
      await producer.send(alerts)
      await page.waitForFunction(
        (ids) => ids.every((id) => document.querySelector(`#feed-list li[data-alert-id="${id}"]`)),
        sent,
        { timeout: 15_000 },
      )
    }
    await produce('Before')
    // The page's stream is on one of the two (which one, HAProxy's counts do not tell apart from
    // the page's other connections): kill each in turn, so that one of the kills cuts it.
    for (const [index, replica] of replicas.entries()) {
      replica.process.kill('SIGKILL')
      await produce(`After-${replica.name}`)
      await restartable(index).start()
    }
    await live()
    await new Promise((resolve) => setTimeout(resolve, 500)) // a duplicate would arrive now
    const shown = await page.$$eval('#feed-list li', (items) =>
      items.map((item) => (item as HTMLElement).dataset.alertId ?? ''),
    )
    expect(new Set(shown).size, 'no alert twice').toBe(shown.length)
    expect(await page.getAttribute('#feed-list', 'data-duplicates'), 'duplicates the API sent').toBeNull()
    for (const id of sent)
      expect(
        shown.filter((s) => s === id),
        id,
      ).toHaveLength(1)
    const feedText = (await page.locator('#feed-list').textContent()) ?? ''
    for (const replica of replicas) expect(feedText).toContain(`After-${replica.name}-2`)
    // Its stream would count among the sessions of the next test's replicas.
    await browser.close()
    browser = undefined
  }, 60_000)

  it('SIGKILL of a replica: every SSE client resumes on the survivor, no gap, no duplicate, partition order', async () => {
    const producer = await createAlertsProducer(scope.topics.alerts)
    const partitionOf = new Map<string, number>()
    const sent: ReturnType<typeof makeAlert>[] = []
    const send = async (count: number) => {
      const batch = Array.from({ length: count }, (_, i) => makeAlert(sent.length + i + 1))
      // The producer spreads a batch over the partitions in turn, continuing from the last one.
      for (const [i, alert] of batch.entries()) partitionOf.set(alert.id, (sent.length + i) % PARTITIONS)
      sent.push(...batch)
      await producer.send(batch)
    }
    const clients: (Received & { opens: number[] })[] = []
    for (let i = 0; i < 3; i++) {
      const client = Object.assign(subscribe(`${proxyUrl}/alerts`, token), { opens: [] as number[] })
      client.source.addEventListener('open', () => client.opens.push(performance.now()))
      clients.push(client)
    }
    await waitFor(() => clients.every((c) => c.opens.length === 1), {
      timeoutMs: 10_000,
      what: 'clients open',
    })
    await send(30)
    await Promise.all(clients.map((c) => c.waitFor(30)))

    // Kill the replica that holds the most streams (leastconn put 2 on one and 1 on the other). A
    // stream an earlier test closed can still count for a moment: wait until only these 3 do.
    let states = await serverStates(socket)
    await waitFor(
      async () => {
        states = await serverStates(socket)
        return states.reduce((sum, state) => sum + state.sessions, 0) === clients.length
      },
      { timeoutMs: 15_000, what: () => `HAProxy counting only the ${clients.length} streams` },
    )
    const busiest = states.reduce((a, b) => (b.sessions > a.sessions ? b : a))
    const victim = replicas.find((r) => r.name === busiest.name)!
    expect(busiest.sessions).toBeGreaterThanOrEqual(2)
    const killedAt = performance.now()
    victim.process.kill('SIGKILL')
    // Alerts keep coming while the clients reconnect.
    for (let i = 0; i < 10; i++) {
      await send(6)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await Promise.all(clients.map((c) => c.waitFor(sent.length, 20_000)))
    await new Promise((resolve) => setTimeout(resolve, 500)) // a duplicate would arrive now

    const moved = clients.filter((c) => c.opens.length > 1)
    expect(moved.length).toBe(busiest.sessions)
    const backMs = moved.map((c) => c.opens.find((t) => t > killedAt)! - killedAt)
    console.log(
      `[replicas] ${busiest.name} killed with ${busiest.sessions} of 3 streams: each back on the survivor after ` +
        `${backMs.map((ms) => `${ms.toFixed(0)} ms`).join(', ')}; the last after ${Math.max(...backMs).toFixed(0)} ms`,
    )
    for (const client of clients) {
      expect(client.events.filter((e) => e.type !== 'alert')).toEqual([])
      const ids = client.alerts.map((a) => a.id)
      expect(new Set(ids).size, 'no duplicate').toBe(ids.length)
      expect(ids.length, 'no gap').toBe(sent.length)
      for (let p = 0; p < PARTITIONS; p++) {
        const inOrder = sent.filter((a) => partitionOf.get(a.id) === p).map((a) => a.id)
        expect(
          ids.filter((id) => partitionOf.get(id) === p),
          `partition ${p} in order`,
        ).toEqual(inOrder)
      }
    }
    await waitFor(async () => (await statusOf(victim.name))?.startsWith('DOWN') === true, {
      timeoutMs: 10_000,
    })
  }, 40_000)
})
