/// <reference lib="dom" />
// Callbacks given to page.evaluate / waitForFunction run in the page, hence the DOM types.
// The dashboard in a real browser (Debian's chromium driven by playwright-core) against the real
// system: the indexer and the API run as processes from source on this test's own topics and
// databases, detections go to Kafka, and the page must show what a user would see. A user signs up,
// sees a suspicious detection in the live feed within 2 s, reads the same counts as GET /stats,
// pages the detections, keeps the feed whole across an API restart (alerts produced while it is
// down arrive once each), and is sent back to sign-in when the token expires. Screenshots at laptop
// and phone widths go to the folder printed at the end.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Kafka, Producer } from 'kafkajs'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testKafka } from '../support/kafka.js'
import { TS_NODE_FLAGS } from '../support/node-flags.js'
import { freePort } from '../support/ports.js'
import { createStackScope } from '../support/stack-scope.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scope = createStackScope('ui')
const { id, topics } = scope
const screenshots =
  process.env.DASHBOARD_SCREENSHOTS_DIR ?? join(tmpdir(), 'intellisite-dashboard-screenshots')
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
/** The restarted API issues tokens this short, so the expiry step needs no third start. */
const SHORT_TOKEN_SECONDS = 5

interface Service {
  process: ChildProcess
  output: () => string
  stop(): Promise<void>
}

function startService(name: 'indexer' | 'api', env: NodeJS.ProcessEnv): Service {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, `packages/${name}/src/main.ts`], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = once(child, 'exit')
  return {
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const result = await Promise.race([exited.then(() => 'exited'), sleep(20_000).then(() => 'timeout')])
      if (result === 'timeout') {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
}

async function waitReady(service: Service, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (service.process.exitCode !== null) throw new Error(`exited early:\n${service.output()}`)
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok) return
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
  throw new Error(`${url} not ready in ${timeoutMs} ms:\n${service.output()}`)
}

let kafka: Kafka
let producer: Producer
let indexer: Service
let apiServer: Service
let apiEnv: NodeJS.ProcessEnv
let base = ''
let context: BrowserContext
let userDataDir = ''
let distDir = ''
const pageErrors: string[] = []

beforeAll(async () => {
  // Debian's chromium (apt-get when missing; never a browser download) and this checkout's page.
  const executablePath = execFileSync('bash', [join(root, 'scripts/browser/ensure-chromium.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim()
  distDir = mkdtempSync(join(tmpdir(), 'dashboard-dist-'))
  execFileSync(
    process.execPath,
    [
      join(root, 'packages/dashboard/node_modules/vite/bin/vite.js'),
      'build',
      '--outDir',
      distDir,
      '--emptyOutDir',
    ],
    { cwd: join(root, 'packages/dashboard'), stdio: ['ignore', 'ignore', 'inherit'] },
  )

  await scope.createDatabase()

  const [apiPort, indexerPort] = [await freePort(), await freePort()]
  base = `http://127.0.0.1:${apiPort}`
  const shared = {
    ...process.env,
    ...scope.env,
    // Detections in PostgreSQL, as `npm start` keeps them, in a database the indexer and the API
    // both create on first use as they start together.
    DETECTIONS_STORE_URL: scope.databaseUrl('DATABASE_URL', '_detections'),
    DATABASE_URL: scope.databaseUrl('DATABASE_URL'),
    SUSPICIOUS_VEHICLE: 'SUV',
    LOG_LEVEL: 'warn',
    NO_COLOR: '1',
  }
  indexer = startService('indexer', {
    ...shared,
    INDEXER_PORT: String(indexerPort),
    INDEXER_SESSION_TIMEOUT_MS: '6000',
    INDEXER_HEARTBEAT_INTERVAL_MS: '1000',
  })
  apiEnv = {
    ...shared,
    PORT: String(apiPort),
    HOST: '127.0.0.1',
    JWT_SECRET: randomUUID() + randomUUID(),
    BCRYPT_COST: '4',
    AUTH_RATE_LIMIT_MAX: '1000',
    SSE_RETRY_MS: '500',
    DASHBOARD_DIR: distDir,
  }
  apiServer = startService('api', apiEnv)
  kafka = testKafka(id)
  producer = kafka.producer()
  userDataDir = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'))
  const launched = chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  })
  await Promise.all([
    waitReady(indexer, `http://127.0.0.1:${indexerPort}/readyz`),
    waitReady(apiServer, `${base}/readyz`),
    producer.connect(),
  ])
  context = await launched
}, 600_000)

afterAll(async () => {
  await context?.close().catch(() => {})
  await producer?.disconnect().catch(() => {})
  await Promise.all([apiServer?.stop(), indexer?.stop()])
  await scope.cleanup()
  for (const dir of [userDataDir, distDir]) if (dir) rmSync(dir, { recursive: true, force: true })
}, 90_000)

interface Vehicle {
  Year: number
  Make: string
  Model: string
  Category: string
}

const fleet = ['Toyota', 'Mazda', 'Ford', 'Honda', 'Subaru']
let suspiciousSent = 0

async function send(vehicles: Vehicle[]): Promise<void> {
  suspiciousSent += vehicles.filter((v) => v.Category.split(',').some((c) => c.trim() === 'SUV')).length
  await producer.send({
    topic: topics.detections,
    messages: vehicles.map((vehicle) => ({ value: JSON.stringify(vehicle) })),
  })
}

function suspicious(make: string): Vehicle {
  return { Year: 2020, Make: make, Model: 'Probe', Category: 'SUV' }
}

async function call<T>(path: string, token: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, body: (await response.json()) as T }
}

const sessionToken = (page: Page) =>
  page.evaluate(
    () =>
      (JSON.parse(sessionStorage.getItem('intellisite.session') ?? '{}') as { token?: string }).token ?? '',
  )

const feedIds = (page: Page) =>
  page.$$eval('#feed-list li', (items) => items.map((item) => (item as HTMLElement).dataset.alertId ?? ''))

const tableIds = (page: Page) =>
  page.$$eval('#det-table tbody tr', (rows) =>
    rows.map((row) => (row as HTMLElement).dataset.detectionId ?? ''),
  )

async function waitForText(page: Page, selector: string, text: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction(
    ([s, t]) => document.querySelector(s!)?.textContent?.includes(t!) ?? false,
    [selector, text],
    { timeout },
  )
}

describe('dashboard in chromium', () => {
  it('signs up, shows live alerts, counts and pages, survives an API restart, and signs out on expiry', async () => {
    const started = Date.now()
    mkdirSync(screenshots, { recursive: true })
    // 45 detections, 9 of them suspicious, before anyone looks: enough for two and a half pages.
    await send(
      Array.from({ length: 45 }, (_, i) => ({
        Year: 2010 + (i % 7),
        Make: fleet[Math.floor(i / 3) % fleet.length]!,
        Model: `Model ${i % 3}`,
        Category: i % 5 === 0 ? 'SUV, Pickup' : 'Sedan',
      })),
    )

    const page = context.pages()[0] ?? (await context.newPage())
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text()))
        pageErrors.push(message.text())
    })
    page.on('pageerror', (err) => pageErrors.push(err.message))

    // `/` leads to the dashboard; sign up through the form (which also signs in).
    await page.goto(`${base}/`)
    expect(new URL(page.url()).pathname).toBe('/dashboard/')
    await expect(page.locator('#auth-view').isVisible()).resolves.toBe(true)
    const username = `user-${id}`
    const password = 'correct horse battery'
    await page.fill('#sign-up-username', username)
    await page.fill('#sign-up-password', password)
    await page.click('#sign-up-form button[type=submit]')
    await page.locator('#dashboard-view').waitFor({ state: 'visible' })
    expect(await page.isVisible('#auth-view')).toBe(false)
    await waitForText(page, '#conn-state', 'live')
    await waitForText(page, '#user-name', username)
    const token = await sessionToken(page)
    expect(token).not.toBe('')

    // A suspicious detection reaches the feed within 2 s of being produced.
    const probe = `Probe${id.slice(-6)}`
    const sentAt = Date.now()
    await send([suspicious(probe)])
    await page.locator('#feed-list li', { hasText: probe }).waitFor({ timeout: 2_000 })
    const feedLatencyMs = Date.now() - sentAt
    const newest = page.locator('#feed-list li').first()
    await expect(newest.textContent()).resolves.toContain(probe)
    await expect(newest.textContent()).resolves.toContain('SUV')

    // Feed filters reopen the stream with them: one make, then none again.
    await page.waitForFunction((n) => document.querySelectorAll('#feed-list li').length === n, suspiciousSent)
    await page.fill('#feed-filters input[name=make]', probe.toUpperCase())
    await page.click('#feed-filters button[type=submit]')
    await waitForText(page, '#conn-state', 'live')
    await page.locator('#feed-list li', { hasText: probe }).waitFor()
    await sleep(500)
    expect(await page.locator('#feed-list li').count()).toBe(1)
    await page.fill('#feed-filters input[name=make]', '')
    await page.click('#feed-filters button[type=submit]')
    await page.waitForFunction((n) => document.querySelectorAll('#feed-list li').length === n, suspiciousSent)

    // The bar chart's numbers are GET /stats's, for make and then category.
    const statsRows = () =>
      page.$$eval('#stats-table tbody tr:not(.others)', (rows) =>
        rows.map((row) => ({
          value: row.querySelector('th')?.textContent ?? '',
          count: Number(row.querySelector('td')?.textContent),
        })),
      )
    for (const dimension of ['make', 'category'] as const) {
      await page.selectOption('#stats-group', dimension)
      await waitForText(page, '#stats-total', '46', 12_000)
      await waitForText(page, '#stats-dimension', dimension)
      const stats = await call<{ total: number; items: { value: string; count: number }[] }>(
        `/stats?group_by=${dimension}`,
        token,
      )
      expect(stats.body.total).toBe(46)
      expect(await statsRows()).toEqual(stats.body.items.slice(0, 15))
    }

    // The time series counts the same detections in the last hour's minutes.
    const timeseries = await call<{ points: { total: number; suspicious: number }[] }>(
      '/stats/timeseries?bucket=minute',
      token,
    )
    expect(timeseries.status).toBe(200)
    expect(timeseries.body.points).toHaveLength(60)
    expect(timeseries.body.points.reduce((sum, point) => sum + point.total, 0)).toBe(46)
    expect(timeseries.body.points.reduce((sum, point) => sum + point.suspicious, 0)).toBe(10)
    const chartSums = () =>
      page.evaluate(() =>
        [2, 3].map((column) =>
          Array.from(document.querySelectorAll(`#ts-table tbody tr td:nth-child(${column})`)).reduce(
            (sum, cell) => sum + Number(cell.textContent),
            0,
          ),
        ),
      )
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll('#ts-table tbody tr td:nth-child(2)')).reduce(
          (sum, cell) => sum + Number(cell.textContent),
          0,
        ) === 46,
      undefined,
      { timeout: 12_000 },
    )
    expect(await chartSums()).toEqual([46, 10])
    expect(await page.locator('#ts-table tbody tr').count()).toBe(60)
    expect(await page.getAttribute('#ts-chart', 'aria-label')).toContain('46 detections and 10 alerts')
    expect(await page.locator('#ts-chart canvas').count()).toBeGreaterThan(0)

    // The detections table: the total, then next and previous through the cursor stack.
    await page.click('#det-filters button[type=submit]')
    await waitForText(page, '#det-total', '46')
    const first = await tableIds(page)
    expect(first).toHaveLength(20)
    const listed = await call<{ items: { id: string }[] }>('/detections?limit=20', token)
    expect(first).toEqual(listed.body.items.map((item) => item.id))
    await page.click('#det-next')
    await waitForText(page, '#det-page', '2')
    await page.waitForFunction(() => !(document.querySelector('#det-prev') as HTMLButtonElement).disabled)
    const second = await tableIds(page)
    expect(second).toHaveLength(20)
    expect(second.filter((detection) => first.includes(detection))).toEqual([])
    await page.click('#det-next')
    await waitForText(page, '#det-page', '3')
    await page.waitForFunction(() => document.querySelectorAll('#det-table tbody tr').length === 6)
    expect(await page.isDisabled('#det-next')).toBe(true)
    await page.click('#det-prev')
    await waitForText(page, '#det-page', '2')
    await page.waitForFunction(() => !(document.querySelector('#det-next') as HTMLButtonElement).disabled)
    expect(await tableIds(page)).toEqual(second)
    await page.click('#det-prev')
    await waitForText(page, '#det-page', '1')
    await page.waitForFunction(() => (document.querySelector('#det-prev') as HTMLButtonElement).disabled)
    expect(await tableIds(page)).toEqual(first)
    // Filters go to the API: one make's detections only.
    await page.fill('#det-filters input[name=make]', probe.toLowerCase())
    await page.click('#det-filters button[type=submit]')
    await waitForText(page, '#det-total', '1')
    await page.fill('#det-filters input[name=make]', '')
    await page.click('#det-filters button[type=submit]')
    await waitForText(page, '#det-total', '46')

    await page.screenshot({ path: join(screenshots, 'dashboard-laptop.png'), fullPage: true })
    await page.setViewportSize({ width: 390, height: 844 })
    await page.screenshot({ path: join(screenshots, 'dashboard-phone.png'), fullPage: true })
    await page.setViewportSize({ width: 1280, height: 900 })

    // Restart the API; alerts produced while it is down arrive after it is back, each once.
    await page.waitForFunction((n) => document.querySelectorAll('#feed-list li').length === n, suspiciousSent)
    const beforeRestart = await feedIds(page)
    await apiServer.stop()
    await waitForText(page, '#conn-state', 'reconnecting')
    const whileDown = Array.from({ length: 5 }, (_, i) => `Down${i}${id.slice(-4)}`)
    await send(whileDown.map(suspicious))
    await sleep(1_000)
    apiServer = startService('api', { ...apiEnv, JWT_EXPIRES_IN: String(SHORT_TOKEN_SECONDS) })
    await waitReady(apiServer, `${base}/readyz`)
    await waitForText(page, '#conn-state', 'live', 15_000)
    await page.waitForFunction(
      (n) => document.querySelectorAll('#feed-list li').length >= n,
      suspiciousSent,
      {
        timeout: 10_000,
      },
    )
    // A moment for a duplicate to show up, if one were coming.
    await sleep(1_000)
    const afterRestart = await feedIds(page)
    expect(new Set(afterRestart).size, 'no alert twice').toBe(afterRestart.length)
    // The page drops a repeated id as a belt; the API must not have sent one in the first place.
    expect(await page.getAttribute('#feed-list', 'data-duplicates'), 'duplicates the API sent').toBeNull()
    expect(afterRestart).toHaveLength(suspiciousSent)
    expect(afterRestart.slice(whileDown.length)).toEqual(beforeRestart)
    const feedText = (await page.locator('#feed-list').textContent()) ?? ''
    for (const make of whileDown) expect(feedText).toContain(make)
    // Screen readers get a summary of new alerts, not each one.
    await waitForText(page, '#feed-announcer', 'new alert', 12_000)

    // The restarted API issues short tokens: sign in again and wait for the session to end by itself.
    await page.click('#sign-out')
    await page.locator('#auth-view').waitFor({ state: 'visible' })
    await page.fill('#sign-in-username', username)
    await page.fill('#sign-in-password', password)
    await page.click('#sign-in-form button[type=submit]')
    await waitForText(page, '#conn-state', 'live')
    await page.locator('#auth-view').waitFor({ state: 'visible', timeout: (SHORT_TOKEN_SECONDS + 5) * 1000 })
    await waitForText(page, '#auth-message', 'expired')
    await waitForText(page, '#conn-state', 'signed out')
    expect(await page.evaluate(() => sessionStorage.getItem('intellisite.session'))).toBeNull()
    // Nothing of the session stays on screen or in the page.
    expect(await page.isVisible('#dashboard-view')).toBe(false)
    expect(await page.isVisible('#sign-out')).toBe(false)
    expect(await page.locator('#feed-list li').count()).toBe(0)
    expect(await page.locator('#stats-table tbody tr').count()).toBe(0)
    expect(await page.locator('#det-table tbody tr').count()).toBe(0)
    await page.screenshot({ path: join(screenshots, 'dashboard-expired.png') })

    expect(pageErrors, 'no CSP violation or script error').toEqual([])
    console.log(
      `dashboard browser test: feed latency ${feedLatencyMs} ms, whole flow ${Date.now() - started} ms; screenshots in ${screenshots}`,
    )
  }, 120_000)
})
