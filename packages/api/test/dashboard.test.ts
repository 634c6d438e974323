// The dashboard's static assets as the API serves them: where `/` leads, the cache policy of
// index.html versus hashed assets, the CSP on dashboard responses only (Swagger UI keeps working),
// and a clear problem when the assets were never built.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DASHBOARD_CSP } from '../src/plugins/dashboard.js'
import { useTestApp } from './helper.js'

const built = mkdtempSync(join(tmpdir(), 'dashboard-'))
mkdirSync(join(built, 'assets'))
writeFileSync(
  join(built, 'index.html'),
  '<!doctype html><script type="module" src="/dashboard/assets/index-Ab12Cd34.js"></script>',
)
writeFileSync(join(built, 'assets', 'index-Ab12Cd34.js'), 'console.log("dashboard")')
afterAll(() => rmSync(built, { recursive: true, force: true }))

describe('dashboard assets', () => {
  const t = useTestApp({ env: { DASHBOARD_DIR: built } })

  it('leads / to /dashboard/', async () => {
    const root = await t.inject({ method: 'GET', url: '/' })
    expect(root.statusCode).toBe(302)
    expect(root.headers.location).toBe('/dashboard/')
    const bare = await t.inject({ method: 'GET', url: '/dashboard' })
    expect([301, 302]).toContain(bare.statusCode)
    expect(bare.headers.location).toBe('/dashboard/')
  })

  it('serves index.html revalidated every time, under the strict CSP', async () => {
    const page = await t.inject({ method: 'GET', url: '/dashboard/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toContain('text/html')
    expect(page.body).toContain('index-Ab12Cd34.js')
    expect(page.headers['cache-control']).toBe('no-cache')
    expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP)
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline')
    expect(page.headers['x-content-type-options']).toBe('nosniff')
    const again = await t.inject({
      method: 'GET',
      url: '/dashboard/',
      headers: { 'if-none-match': String(page.headers.etag) },
    })
    expect(again.statusCode).toBe(304)
  })

  it('caches hashed assets for a year', async () => {
    const asset = await t.inject({ method: 'GET', url: '/dashboard/assets/index-Ab12Cd34.js' })
    expect(asset.statusCode).toBe(200)
    expect(asset.headers['content-type']).toContain('javascript')
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    expect(asset.headers['content-security-policy']).toBe(DASHBOARD_CSP)
    const missing = await t.inject({ method: 'GET', url: '/dashboard/assets/nope-00000000.js' })
    expect(missing.statusCode).toBe(404)
    expect(missing.headers['content-type']).toContain('application/problem+json')
  })

  it('leaves Swagger UI and the API without the dashboard policy', async () => {
    const docs = await t.inject({ method: 'GET', url: '/docs/' })
    expect(docs.statusCode).toBe(200)
    expect(docs.headers['content-security-policy']).not.toBe(DASHBOARD_CSP)
    const health = await t.inject({ method: 'GET', url: '/healthz' })
    expect(health.headers['content-security-policy']).toBeUndefined()
  })

  it('is not part of the OpenAPI document', async () => {
    const spec = (await t.inject({ method: 'GET', url: '/docs/json' })).json<{ paths: object }>()
    expect(Object.keys(spec.paths).filter((path) => path === '/' || path.startsWith('/dashboard'))).toEqual(
      [],
    )
  })
})

describe('dashboard assets missing', () => {
  const t = useTestApp({ env: { DASHBOARD_DIR: join(built, 'not-built') } })

  it('still starts, and /dashboard/ explains what to build', async () => {
    expect((await t.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    for (const url of ['/dashboard/', '/dashboard', '/dashboard/assets/index-Ab12Cd34.js']) {
      const response = await t.inject({ method: 'GET', url })
      expect(response.statusCode, url).toBe(503)
      expect(response.headers['content-type']).toContain('application/problem+json')
      expect(response.json<{ code: string; detail: string }>()).toMatchObject({
        code: 'DASHBOARD_NOT_BUILT',
        detail: expect.stringContaining('DASHBOARD_DIR'),
      })
    }
    expect((await t.inject({ method: 'GET', url: '/' })).headers.location).toBe('/dashboard/')
  })
})
