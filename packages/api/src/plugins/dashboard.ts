// The operations dashboard (packages/dashboard's build output) at /dashboard/, with `/` leading to
// it. Its responses carry a strict Content-Security-Policy; /docs keeps its own (Swagger UI needs
// inline scripts), which is why the policy is set here and not app-wide.
import { existsSync } from 'node:fs'
import { join, sep } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { sendProblem } from './error-handler.js'

export const DASHBOARD_PATH = '/dashboard/'

/**
 * uPlot sizes its canvas through CSSOM (element.style), which `style-src 'self'` allows; only
 * `<style>` elements and style attributes in markup are blocked.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ')

/** Vite's content-hashed output: a changed file gets a new name, so a year of caching is safe. */
const IMMUTABLE = 'public, max-age=31536000, immutable'

export interface DashboardOptions {
  /** The built dashboard (index.html and assets/). */
  root: string
}

function securityHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', DASHBOARD_CSP)
  reply.header('x-content-type-options', 'nosniff')
  reply.header('referrer-policy', 'no-referrer')
}

export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, { root }) => {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect(DASHBOARD_PATH, 302))

  if (!existsSync(join(root, 'index.html'))) {
    app.log.warn({ root }, 'dashboard assets not found: /dashboard/ answers 503 until they are built')
    // Answered directly: the error handler hides the detail of every 5xx, and this one is for the operator.
    const notBuilt = async (request: FastifyRequest, reply: FastifyReply) =>
      sendProblem(
        request,
        reply,
        503,
        'DASHBOARD_NOT_BUILT',
        'The dashboard is not built on this server: run `pnpm --filter @intellisite/dashboard build` or set DASHBOARD_DIR.',
      )
    app.get('/dashboard', { schema: { hide: true } }, notBuilt)
    app.get('/dashboard/*', { schema: { hide: true } }, notBuilt)
    return
  }

  // `/dashboard` -> `/dashboard/`, so the page's base path is the one its assets were built for.
  app.get('/dashboard', { schema: { hide: true } }, async (_request, reply) =>
    reply.redirect(DASHBOARD_PATH, 301),
  )
  const assets = `${join(root, 'assets')}${sep}`
  await app.register(fastifyStatic, {
    root,
    prefix: DASHBOARD_PATH,
    index: ['index.html'],
    decorateReply: false,
    cacheControl: false,
    etag: true,
    lastModified: true,
    setHeaders(reply, path) {
      securityHeaders(reply)
      // index.html names the current hashed files: always revalidated (ETag makes that a 304).
      reply.header('cache-control', path.startsWith(assets) ? IMMUTABLE : 'no-cache')
    },
  })
}
