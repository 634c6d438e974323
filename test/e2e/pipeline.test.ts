// The whole system as `npm start` runs it (scripts/pipeline.ts): it starts the indexer,
// the API and the producer as real processes from source. A user then signs up, logs in, watches the
// detections page and the stats grow, and follows /alerts with a real EventSource client, which must
// receive the SUV alerts — each one a stored detection, none twice. Everything runs on free ports with
// its own topics, consumer groups and databases, removed afterwards. It runs once per detections
// store backend (PostgreSQL, the default, and MongoDB).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS } from '../support/detections-stores.js'
import { TS_NODE_FLAGS } from '../support/node-flags.js'
import { freePort } from '../support/ports.js'
import { createStackScope, stopChild } from '../support/stack-scope.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
/** The API of the pipeline under test (one per backend, one at a time). */
let api = ''

/** The alert contract (detections-store `alertSchema`), restated so this test sees what a client sees. */
interface Alert {
  id: string
  detectedAt: string
  year: number
  make: string
  model: string
  category: string
  reason: string
  /** The rules the detection matched; here only the built-in SUSPICIOUS_VEHICLE rule. */
  rules: { id: string; version: number; name: string; scope: string }[]
}

interface Page {
  items: { id: string; category: string; suspicious: boolean; make: string }[]
  total: number
  skip: number
  limit: number
}
interface Stats {
  group_by: string
  total: number
  items: { value: string; count: number }[]
}

async function call<T>(
  path: string,
  init: RequestInit & { token?: string } = {},
): Promise<{ status: number; body: T }> {
  const headers = new Headers(init.headers)
  if (init.token) headers.set('authorization', `Bearer ${init.token}`)
  if (init.body) headers.set('content-type', 'application/json')
  const response = await fetch(`${api}${path}`, { ...init, headers })
  return { status: response.status, body: (await response.json()) as T }
}

describe.each(BACKENDS)('pipeline on the %s detections store: producer -> indexer -> API', (backend) => {
  const scope = createStackScope('e2e')
  const { id } = scope

  let pipeline: ChildProcess | undefined
  let output = ''
  let pipelineExit: Promise<number | null> | undefined

  beforeAll(async () => {
    await scope.createDatabase()

    const [apiPort, indexerPort, notifierPort] = [await freePort(), await freePort(), await freePort()]
    api = `http://127.0.0.1:${apiPort}`
    pipeline = spawn(
      process.execPath,
      [...TS_NODE_FLAGS, 'scripts/pipeline.ts', '--', '--rate', '40', '--seed', id],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          PORT: String(apiPort),
          INDEXER_PORT: String(indexerPort),
          NOTIFIER_PORT: String(notifierPort),
          ...scope.env,
          MONGO_URL: scope.databaseUrl('MONGO_URL'),
          // PostgreSQL: a database of its own, which the store creates on first use.
          DETECTIONS_STORE_URL:
            backend === 'postgres'
              ? scope.databaseUrl('DATABASE_URL', '_detections')
              : scope.databaseUrl('MONGO_URL'),
          DATABASE_URL: scope.databaseUrl('DATABASE_URL'),
          SUSPICIOUS_VEHICLE: 'SUV',
          BCRYPT_COST: '4',
          JWT_SECRET: randomUUID() + randomUUID(),
          NO_COLOR: '1',
        },
      },
    )
    pipelineExit = once(pipeline, 'exit').then(([code]) => code as number | null)
    pipeline.stdout?.on('data', (chunk) => {
      output += chunk
    })
    pipeline.stderr?.on('data', (chunk) => {
      output += chunk
    })
    const deadline = Date.now() + 100_000
    while (!output.includes('[pipeline] ready.')) {
      if (pipeline.exitCode !== null) throw new Error(`pipeline exited (${pipeline.exitCode}):\n${output}`)
      if (Date.now() > deadline) throw new Error(`pipeline not ready in 100 s:\n${output}`)
      await sleep(200)
    }
  }, 150_000)

  afterAll(async () => {
    await stopChild(pipeline, 40_000)
    await scope.cleanup()
  }, 90_000)

  it('lets a new user log in, page detections and stats as they grow, and receive the SUV alerts live', async () => {
    const credentials = { username: `user-${id}`, password: 'correct horse battery' }
    const created = await call<{ id: string; username: string }>('/users', {
      method: 'POST',
      body: JSON.stringify(credentials),
    })
    expect(created.status, JSON.stringify(created.body)).toBe(201)
    expect(created.body.username).toBe(credentials.username)

    const login = await call<{ access_token: string; token_type: string }>('/auth/token', {
      method: 'POST',
      body: JSON.stringify(credentials),
    })
    expect(login.status).toBe(200)
    expect(login.body.token_type).toBe('bearer')
    const token = login.body.access_token

    expect((await call('/detections')).status).toBe(401)

    // Follow the alert stream the way a browser would, the token in the Authorization header.
    const alerts: Alert[] = []
    const source = new EventSource(`${api}/alerts`, {
      fetch: (input, init) =>
        fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } }),
    })
    source.addEventListener('alert', (event) => alerts.push(JSON.parse(event.data)))
    try {
      const first = await call<Page>('/detections?limit=5', { token })
      expect(first.status).toBe(200)
      const firstStats = await call<Stats>('/stats', { token })
      expect(firstStats.status).toBe(200)

      // The producer sends 40/s: within seconds the page, the stats and the stream all move.
      const deadline = Date.now() + 45_000
      let page = first.body
      while ((page.total < first.body.total + 40 || alerts.length < 5) && Date.now() < deadline) {
        await sleep(500)
        page = (await call<Page>('/detections?limit=1000', { token })).body
      }
      expect(page.total).toBeGreaterThanOrEqual(first.body.total + 40)
      expect(alerts.length, output.slice(-3000)).toBeGreaterThanOrEqual(5)

      const ready = await call<{ checks: { detections: { backend: string; status: string } } }>('/readyz')
      expect(ready.body.checks.detections).toEqual({ backend, status: 'up' })
      // The time series counts exactly what /stats counts. The producer keeps sending, and on
      // MongoDB the two counters of a batch are written side by side, not atomically, so one may
      // be a batch ahead for a moment: they must agree, exactly, in some moment when /stats does
      // not move from just before to just after the series (a lost count would never agree).
      const seriesTotal = async () => {
        const series = await call<{ points: { total: number }[] }>(
          `/stats/timeseries?bucket=hour&from=${new Date(Date.now() - 3_600_000).toISOString()}`,
          { token },
        )
        expect(series.status).toBe(200)
        return series.body.points.reduce((sum, p) => sum + p.total, 0)
      }
      const quiet = Date.now() + 30_000
      let compared: { before: number; series: number; after: number } | undefined
      while (Date.now() < quiet) {
        const before = (await call<Stats>('/stats', { token })).body.total
        const series = await seriesTotal()
        const after = (await call<Stats>('/stats', { token })).body.total
        compared = { before, series, after }
        if (before === after && series === after) break
        await sleep(100)
      }
      expect(compared?.before).toBe(compared?.after)
      expect(compared?.series).toBe(compared?.after)
      expect(compared?.series).toBeGreaterThanOrEqual(page.total)
      const stats = await call<Stats>('/stats', { token })
      expect(stats.status).toBe(200)
      expect(stats.body.group_by).toBe('make')
      expect(stats.body.total).toBeGreaterThanOrEqual(page.total)
      expect(stats.body.total).toBeGreaterThan(firstStats.body.total)
      expect(stats.body.items.reduce((sum, item) => sum + item.count, 0)).toBe(stats.body.total)

      // Stored detections are classified by the rule; the alerts are SUVs, each a stored one, once.
      for (const item of page.items) {
        expect(item.suspicious, item.category).toBe(
          item.category.split(',').some((token) => token.trim().toLowerCase() === 'suv'),
        )
      }
      const stored = new Set(
        (await call<Page>('/detections?limit=1000', { token })).body.items.map((d) => d.id),
      )
      const received = alerts
      expect(new Set(received.map((a) => a.id)).size).toBe(received.length)
      for (const alert of received) {
        expect(Object.keys(alert).sort()).toEqual([
          'category',
          'detectedAt',
          'id',
          'make',
          'model',
          'reason',
          'rules',
          'year',
        ])
        expect(alert.rules).toEqual([
          {
            id: '00000000-0000-4000-8000-000000000001',
            version: 1,
            name: 'SUSPICIOUS_VEHICLE',
            scope: 'shared',
          },
        ])
        expect(new Date(alert.detectedAt).toISOString()).toBe(alert.detectedAt)
        expect(alert.category.split(',').map((c: string) => c.trim().toLowerCase())).toContain('suv')
        expect(stored.has(alert.id), `alert ${alert.id} is a stored detection`).toBe(true)
      }
    } finally {
      source.close()
    }

    // Ctrl-C: the pipeline stops its children in order and exits cleanly.
    pipeline?.kill('SIGINT')
    expect(await pipelineExit).toBe(0)
    expect(output).toContain('stopping: producer first')
    expect(output).toMatch(/\[producer\].*done/)
    expect(output).toMatch(/local services are still running/)
  }, 120_000)
})
