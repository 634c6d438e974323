/// <reference lib="dom" />
// Callbacks given to page.evaluate / waitForFunction run in the page, hence the DOM types.
// The dashboard in a real browser (Debian's chromium driven by playwright-core) against the real
// system: the indexer and the API run as processes from source on this test's own topics and
// databases, detections go to Kafka, and the page must show what a user would see. A user signs up,
// sees a suspicious detection in the live feed within 2 s, reads the same counts as GET /stats,
// pages the detections, keeps the feed whole across an API restart (alerts produced while it is
// down arrive once each), and is sent back to sign-in when the token expires. Screenshots at laptop
// and phone widths go to the folder printed at the end. Before that, on the same stack and browser,
// another user manages rules (a watch list's CSV in and out) and a webhook delivered by the notifier
// to a receiver on loopback; `SCREENSHOTS=1` saves those two views to docs/images.
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Kafka, Producer } from 'kafkajs'
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signWebhook } from '../../packages/webhooks/src/index.js'
import { buildDashboard, ensureChromium, launchChromium } from '../support/browser.js'
import { testKafka } from '../support/kafka.js'
import { TS_NODE_FLAGS } from '../support/node-flags.js'
import { freePort } from '../support/ports.js'
import { createStackScope } from '../support/stack-scope.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const scope = createStackScope('ui')
const { id, topics } = scope
const screenshots =
  process.env.DASHBOARD_SCREENSHOTS_DIR ?? join(tmpdir(), 'intellisite-dashboard-screenshots')
/** `SCREENSHOTS=1` writes the rules and webhooks views to docs/images (the docs show them). */
const docImages = process.env.SCREENSHOTS === '1' ? join(root, 'docs/images') : null
/** The restarted API issues tokens this short, so the expiry step needs no third start. */
const SHORT_TOKEN_SECONDS = 5

interface Service {
  process: ChildProcess
  output: () => string
  stop(): Promise<void>
}

function startService(name: 'indexer' | 'api' | 'notifier', env: NodeJS.ProcessEnv): Service {
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
let notifier: Service
let receiver: Server
let receiverUrl = ''
const received: { headers: IncomingHttpHeaders; body: string }[] = []
let apiEnv: NodeJS.ProcessEnv
let base = ''
let context: BrowserContext
let userDataDir = ''
let distDir = ''
const pageErrors: string[] = []

beforeAll(async () => {
  // Debian's chromium (apt-get when missing; never a browser download) and this checkout's page.
  const executablePath = ensureChromium()
  distDir = buildDashboard()

  await scope.createDatabase()

  // The webhook receiver: answers 200 and keeps what it got, for the signature check.
  receiver = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => {
      body += chunk.toString()
    })
    request.on('end', () => {
      received.push({ headers: request.headers, body })
      response.writeHead(200).end()
    })
  })
  receiver.listen(0, '127.0.0.1')
  await once(receiver, 'listening')
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`

  const [apiPort, indexerPort, notifierPort] = [await freePort(), await freePort(), await freePort()]
  base = `http://127.0.0.1:${apiPort}`
  const shared = {
    ...process.env,
    ...scope.env,
    // Detections in PostgreSQL, as `npm start` keeps them, in a database the indexer and the API
    // both create on first use as they start together.
    DETECTIONS_STORE_URL: scope.databaseUrl('DATABASE_URL', '_detections'),
    DATABASE_URL: scope.databaseUrl('DATABASE_URL'),
    SUSPICIOUS_VEHICLE: 'SUV',
    // The receiver is on loopback: registration (API) and delivery (notifier) both allow it here only.
    WEBHOOK_ALLOW_PRIVATE: 'true',
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
  notifier = startService('notifier', {
    ...shared,
    NOTIFIER_PORT: String(notifierPort),
    NOTIFIER_HOST: '127.0.0.1',
  })
  kafka = testKafka(id)
  producer = kafka.producer()
  userDataDir = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'))
  const launched = launchChromium(userDataDir, executablePath)
  await Promise.all([
    waitReady(indexer, `http://127.0.0.1:${indexerPort}/readyz`),
    waitReady(apiServer, `${base}/readyz`),
    waitReady(notifier, `http://127.0.0.1:${notifierPort}/readyz`),
    producer.connect(),
  ])
  context = await launched
}, 600_000)

afterAll(async () => {
  await context?.close().catch(() => {})
  await producer?.disconnect().catch(() => {})
  await Promise.all([apiServer?.stop(), indexer?.stop(), notifier?.stop()])
  receiver?.close()
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
  it('manages rules and a watch list, and a webhook the notifier delivers to', async () => {
    const started = Date.now()
    // A page of its own (sessionStorage is per page): another user, signed in beside the main flow.
    const page = await context.newPage()
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text()))
        pageErrors.push(message.text())
    })
    page.on('pageerror', (err) => pageErrors.push(err.message))
    const dialogs: string[] = []
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message())
      void dialog.accept()
    })
    const rowOf = (table: string, name: string) => page.locator(`${table} tbody tr`, { hasText: name })

    // A link to the rules view signs in straight into it.
    await page.goto(`${base}/dashboard/#rules`)
    await page.fill('#sign-up-username', `rules-${id}`)
    await page.fill('#sign-up-password', 'correct horse battery')
    await page.click('#sign-up-form button[type=submit]')
    await page.locator('#rules-view').waitFor({ state: 'visible' })
    expect(await page.isVisible('#dashboard-view')).toBe(false)
    expect(await page.getAttribute('#views-nav a[data-view=rules]', 'aria-current')).toBe('page')
    const token = await sessionToken(page)
    const builtin = rowOf('#rules-table', 'SUSPICIOUS_VEHICLE')
    await builtin.waitFor()
    await expect(builtin.textContent()).resolves.toContain('Read-only')
    expect(await builtin.locator('button').count()).toBe(0)

    // Sharing is for admins: the API's 403 is shown next to the form, and nothing is created.
    await page.fill('#rule-name', 'Old Land Cruisers')
    await page.fill('#rule-models', 'Toyota / Land Cruiser')
    await page.fill('#rule-year-max', '2005')
    await page.selectOption('#rule-scope', 'shared')
    await page.click('#rule-submit')
    await waitForText(page, '#rule-form-error', 'admin')
    await page.selectOption('#rule-scope', 'private')
    await page.click('#rule-submit')
    const cruisers = rowOf('#rules-table', 'Old Land Cruisers')
    await cruisers.waitFor()
    await expect(cruisers.textContent()).resolves.toContain('model Toyota Land Cruiser · year ≤ 2005')
    expect(await page.isVisible('#rule-form-error')).toBe(false)

    // Edit (If-Match: version 1), then disable (version 2): each bumps the version the row shows.
    await cruisers.getByRole('button', { name: 'Edit Old Land Cruisers' }).click()
    expect(await page.inputValue('#rule-year-max')).toBe('2005')
    await page.fill('#rule-year-max', '2003')
    await page.click('#rule-submit')
    await page.waitForFunction(() =>
      document.querySelector('#rules-table')?.textContent?.includes('year ≤ 2003'),
    )
    await cruisers.getByRole('button', { name: 'Disable Old Land Cruisers' }).click()
    await cruisers.getByRole('button', { name: 'Enable Old Land Cruisers' }).waitFor()
    const ruleId = (await cruisers.getAttribute('data-rule-id')) ?? ''
    const stored = await call<{ version: number; enabled: boolean; match: unknown }>(
      `/rules/${ruleId}`,
      token,
    )
    expect(stored.body).toMatchObject({
      version: 3,
      enabled: false,
      match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }], year: { max: 2003 } },
    })

    // A watch list: the new rule's panel opens; a bad row is listed by line and changes nothing.
    await page.fill('#rule-name', 'Stolen vehicles')
    await page.check('#rule-watchlist')
    await page.click('#rule-submit')
    await page.locator('#watchlist-panel').waitFor({ state: 'visible' })
    await waitForText(page, '#watchlist-name', 'Stolen vehicles')
    const upload = (name: string, text: string) =>
      page.setInputFiles('#watchlist-file', { name, mimeType: 'text/csv', buffer: Buffer.from(text) })
    await upload('bad.csv', 'make,model,year_min,year_max\nJeep,,2010,\n')
    await page.click('#watchlist-import')
    await waitForText(page, '#watchlist-error', 'line 2')
    await waitForText(page, '#watchlist-count', '0')
    const csv = 'make,model,year_min,year_max\r\nJeep,Wrangler,2010,\r\nMercedes-Benz,"E-Class, Wagon",,\r\n'
    await upload('stolen.csv', csv)
    await page.click('#watchlist-import')
    await waitForText(page, '#watchlist-count', '2')
    expect(await page.isVisible('#watchlist-error')).toBe(false)
    const stolen = rowOf('#rules-table', 'Stolen vehicles')
    await page.waitForFunction(() =>
      document.querySelector('#rules-table')?.textContent?.includes('watch list of 2 entries'),
    )
    // Export: the file the browser saves is what the API holds, named after the rule and version.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#watchlist-export')])
    expect(download.suggestedFilename()).toBe('watchlist-stolen-vehicles-v2.csv')
    const saved = readFileSync((await download.path()) ?? '', 'utf8')
    const stolenId = (await stolen.getAttribute('data-rule-id')) ?? ''
    const exported = await fetch(`${base}/rules/${stolenId}/entries`, {
      headers: { authorization: `Bearer ${token}` },
    })
    expect(saved).toBe(await exported.text())
    expect(saved).toContain('Jeep,Wrangler,2010,')
    expect(saved).toContain('"E-Class, Wagon"')
    if (docImages) {
      await page.screenshot({ path: join(docImages, 'dashboard-rules.png'), fullPage: true })
      // The phone layout, for a look, beside the other screenshots.
      mkdirSync(screenshots, { recursive: true })
      await page.setViewportSize({ width: 390, height: 844 })
      await page.screenshot({ path: join(screenshots, 'dashboard-rules-phone.png'), fullPage: true })
      await page.setViewportSize({ width: 1280, height: 900 })
    }

    // Delete both (each after a confirmation): only the built-in rule is left.
    for (const name of ['Stolen vehicles', 'Old Land Cruisers']) {
      await rowOf('#rules-table', name)
        .getByRole('button', { name: `Delete ${name}` })
        .click()
      await rowOf('#rules-table', name).waitFor({ state: 'detached' })
    }
    expect(dialogs.filter((text) => text.startsWith('Delete the rule'))).toHaveLength(2)
    expect(await page.isVisible('#watchlist-panel')).toBe(false)
    const left = await call<{ items: { name: string }[] }>('/rules', token)
    expect(left.body.items.map((rule) => rule.name)).toEqual(['SUSPICIOUS_VEHICLE'])

    // Webhooks, through the tab: the heading takes the focus.
    await page.click('#views-nav a[data-view=webhooks]')
    await page.locator('#webhooks-view').waitFor({ state: 'visible' })
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('webhooks-title')
    await page.fill('#webhook-url', receiverUrl)
    await page.fill('#webhook-description', 'ops receiver')
    await page.click('#webhook-form button[type=submit]')
    await page.locator('#secret-box').waitFor({ state: 'visible' })
    await waitForText(page, '#secret-title', 'Copy the signing secret now')
    const secret = await page.inputValue('#secret-value')
    expect(secret).toMatch(/^whsec_/)
    const hook = rowOf('#webhooks-table', 'ops receiver')
    await hook.waitFor()
    await expect(hook.textContent()).resolves.toContain('Enabled')
    const listed = await call<{ items: Record<string, unknown>[] }>('/webhooks', token)
    expect(JSON.stringify(listed.body)).not.toContain(secret)

    // A test event: the notifier sends it, the deliveries panel follows it to "delivered".
    await hook.getByRole('button', { name: 'Send a test event to ops receiver' }).click()
    await page.locator('#deliveries-panel').waitFor({ state: 'visible' })
    await page.locator('#deliveries-table tbody tr[data-state=delivered]').waitFor({ timeout: 10_000 })
    const delivery = await page.locator('#deliveries-table tbody tr').first().textContent()
    expect(delivery).toContain('test')
    expect(delivery).toContain('HTTP 200')
    // Signed with the secret the page showed once.
    expect(received).toHaveLength(1)
    const [ping] = received
    expect(JSON.parse(ping!.body)).toMatchObject({ type: 'ping' })
    const expected = signWebhook(
      {
        id: String(ping!.headers['webhook-id']),
        timestampSeconds: Number(ping!.headers['webhook-timestamp']),
        body: ping!.body,
      },
      [secret],
    )
    expect(ping!.headers['webhook-signature']).toBe(expected['webhook-signature'])
    if (docImages) await page.screenshot({ path: join(docImages, 'dashboard-webhooks.png'), fullPage: true })

    // Dismissed, the secret is gone from the page.
    await page.click('#secret-done')
    expect(await page.isVisible('#secret-box')).toBe(false)
    expect(await page.content()).not.toContain(secret)

    // Disabled: the reason shows, a test is refused; re-enabled: back to normal.
    await hook.getByRole('button', { name: 'Disable ops receiver' }).click()
    await waitForText(page, '#webhooks-table', 'Disabled: disabled by its owner')
    await waitForText(page, '#deliveries-disabled', 'Re-enable it')
    expect(await hook.getByRole('button', { name: 'Send a test event to ops receiver' }).isDisabled()).toBe(
      true,
    )
    await hook.getByRole('button', { name: 'Re-enable ops receiver' }).click()
    await hook.getByRole('button', { name: 'Disable ops receiver' }).waitFor()
    expect(await page.isVisible('#deliveries-disabled')).toBe(false)

    // A rotation shows the new secret once, again.
    await hook.getByRole('button', { name: 'Rotate the secret of ops receiver' }).click()
    await page.locator('#secret-box').waitFor({ state: 'visible' })
    const rotated = await page.inputValue('#secret-value')
    expect(rotated).toMatch(/^whsec_/)
    expect(rotated).not.toBe(secret)
    await waitForText(page, '#secret-note', 'previous secret keeps signing')

    await hook.getByRole('button', { name: 'Delete ops receiver' }).click()
    await hook.waitFor({ state: 'detached' })
    expect(await page.isVisible('#deliveries-panel')).toBe(false)
    expect((await call<{ total: number }>('/webhooks', token)).body.total).toBe(0)

    // Signing out forgets the secret and both views.
    await page.click('#sign-out')
    await page.locator('#auth-view').waitFor({ state: 'visible' })
    expect(await page.isVisible('#webhooks-view')).toBe(false)
    expect(await page.isVisible('#secret-box')).toBe(false)
    expect(await page.inputValue('#secret-value')).toBe('')
    expect(await page.locator('#rules-table tbody tr').count()).toBe(0)
    await page.close()
    expect(pageErrors, 'no CSP violation or script error').toEqual([])
    console.log(`dashboard rules and webhooks flow: ${Date.now() - started} ms`)
  }, 60_000)

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
    // The rules it matched, as badges: the built-in one here.
    await expect(newest.locator('.rules .rule').allTextContents()).resolves.toEqual(['SUSPICIOUS_VEHICLE'])

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
