// The API against its own OpenAPI document, checked by an outside tool: schemathesis generates
// requests from /docs/json (valid and invalid ones, undeclared methods, missing auth) and checks
// every answer against the document with `--checks all`. The API runs as the real process on the
// real services, with a signed-in user so the protected routes are exercised past authentication,
// and with a few alerts on its topic so the event stream has events to check.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testKafka } from '../support/kafka.js'
import { freePort } from '../support/ports.js'
import { createStackScope, stopChild } from '../support/stack-scope.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const here = fileURLToPath(new URL('.', import.meta.url))
const scope = createStackScope('contract')
const { id, topics } = scope
const kafka = () => testKafka(id)

let api: ChildProcess | undefined
let apiOutput = ''
let base = ''
let token = ''
let work = ''

beforeAll(async () => {
  await scope.createDatabase()

  const producer = kafka().producer()
  await producer.connect()
  const kafkaAdmin = kafka().admin()
  await kafkaAdmin.connect()
  await kafkaAdmin.createTopics({
    topics: [{ topic: topics.alerts, numPartitions: 3 }],
    waitForLeaders: true,
  })
  await kafkaAdmin.disconnect()
  await producer.send({
    topic: topics.alerts,
    messages: ['Toyota', 'MAZDA', 'Kia'].map((make, i) => {
      const alert = {
        id: `${id}-${i}`,
        detectedAt: new Date().toISOString(),
        year: 2011 + i,
        make,
        model: 'Some Model',
        category: 'SUV',
        reason: 'category matches SUV',
      }
      return { key: alert.id, value: JSON.stringify(alert), partition: i }
    }),
  })
  await producer.disconnect()

  const port = await freePort()
  base = `http://127.0.0.1:${port}`
  api = spawn(
    process.execPath,
    [
      '--disable-warning=TimeoutNegativeWarning',
      '--conditions=development',
      '--import',
      'tsx',
      'packages/api/src/main.ts',
    ],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DETECTIONS_TOPIC: topics.detections,
        ALERTS_TOPIC: topics.alerts,
        ALERT_RULES_TOPIC: topics.rules,
        ALERTS_GROUP_PREFIX: id,
        DETECTIONS_STORE_URL: scope.databaseUrl('MONGO_URL'),
        DATABASE_URL: scope.databaseUrl('DATABASE_URL'),
        JWT_SECRET: randomUUID() + randomUUID(),
        BCRYPT_COST: '4',
        // Sign-up and log-in are tried hundreds of times; the production limit would answer 429
        // to nearly all of them and leave their logic untested.
        AUTH_RATE_LIMIT_MAX: '1000000',
        LOG_LEVEL: 'warn',
      },
    },
  )
  for (const stream of [api.stdout, api.stderr]) {
    stream?.on('data', (chunk) => {
      apiOutput += chunk
    })
  }
  const deadline = Date.now() + 60_000
  for (;;) {
    if (api.exitCode !== null) throw new Error(`the API exited (${api.exitCode}):\n${apiOutput}`)
    if (Date.now() > deadline) throw new Error(`the API was not ready in 60 s:\n${apiOutput}`)
    const ready = await fetch(`${base}/readyz`).catch(() => undefined)
    if (ready?.ok) break
    await sleep(250)
  }

  const credentials = JSON.stringify({ username: `${id}-user`, password: 'contract-password' })
  const headers = { 'content-type': 'application/json' }
  expect((await fetch(`${base}/users`, { method: 'POST', headers, body: credentials })).status).toBe(201)
  const login = await fetch(`${base}/auth/token`, { method: 'POST', headers, body: credentials })
  token = ((await login.json()) as { access_token: string }).access_token
  work = mkdtempSync(join(tmpdir(), 'schemathesis-'))
}, 120_000)

afterAll(async () => {
  await stopChild(api, 15_000)
  if (work) rmSync(work, { recursive: true, force: true })
  await scope.cleanup()
}, 60_000)

describe('the API contract', () => {
  it('rejects an empty filter on /detections and on /alerts alike', async () => {
    const authorization = `Bearer ${token}`
    for (const url of ['/detections?make=', '/alerts?make=', '/alerts?category=,']) {
      const response = await fetch(`${base}${url}`, { headers: { authorization } })
      expect(response.status, url).toBe(400)
      expect(((await response.json()) as { code: string }).code).toBe('VALIDATION_FAILED')
    }
  })

  it('holds under schemathesis --checks all: no failure', () => {
    const install = spawnSync('bash', [join(here, 'schemathesis.sh')], { encoding: 'utf8', timeout: 300_000 })
    expect(install.status, install.stderr).toBe(0)
    const st = install.stdout.trim()
    const result = spawnSync(
      st,
      [
        '--config-file',
        join(here, 'schemathesis.toml'),
        'run',
        `${base}/docs/json`,
        '--checks',
        'all',
        '--header',
        `Authorization: Bearer ${token}`,
        // About a minute on a shared 2-core machine. A fixed seed keeps CI repeatable;
        // SCHEMATHESIS_SEED=<n> explores other inputs (the output names the seed of every run).
        '--max-examples',
        '25',
        '--seed',
        process.env.SCHEMATHESIS_SEED ?? '20261130',
        '--request-timeout',
        '5',
        '--generation-database',
        'none',
        '--no-color',
      ],
      // Its own scratch directory: schemathesis writes reports and caches next to where it runs.
      { cwd: work, encoding: 'utf8', timeout: 150_000, env: { ...process.env, NO_COLOR: '1' } },
    )
    const output = `${result.stdout}\n${result.stderr}`
    // The failures section names each operation and its request; the tail only the summary.
    const failures = output.indexOf('=== FAILURES ===')
    expect(
      result.status,
      failures >= 0 ? output.slice(failures, failures + 12_000) : output.slice(-6000),
    ).toBe(0)
    // Every operation of the document was tried, whatever their number.
    const selected = /Selected: (\d+)\/(\d+)/.exec(output)
    expect(selected?.[1], output.slice(-3000)).toBe(selected?.[2])
    expect(output).toMatch(new RegExp(`Tested: ${selected?.[1]}\\b`))
    // The closing line: "No issues found in …", or warnings only (e.g. many generated sign-ups
    // refused as duplicates), never a failure or an error.
    const closing = /=+ (.+ in [\d.]+s) =+/.exec(output)?.[1] ?? ''
    expect(closing, output.slice(-3000)).toMatch(/^(No issues found|\d+ warnings?) in/)
  }, 420_000)
})
