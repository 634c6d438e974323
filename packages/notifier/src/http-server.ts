import { createServer, type Server } from 'node:http'
import { checkReadiness, type ReadinessCheck } from '@intellisite/common'
import type { Registry } from 'prom-client'

/** `/healthz` (process alive), `/readyz` (each dependency named, 503 when one is down), `/metrics`. */
export function createHealthServer(options: {
  registry: Registry
  checks: { kafka: ReadinessCheck; postgres: ReadinessCheck }
}): Server {
  const { registry, checks } = options
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
      response.end(JSON.stringify(body))
    }
    if (request.method !== 'GET' && request.method !== 'HEAD')
      return json(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' })
    if (path === '/healthz') return json(200, { status: 'ok' })
    if (path === '/readyz') {
      checkReadiness(checks).then((readiness) => json(readiness.status === 'ready' ? 200 : 503, readiness))
      return
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': registry.contentType })
          response.end(text)
        },
        (err: unknown) => json(500, { error: String(err) }),
      )
      return
    }
    json(404, { error: 'not found' })
  })
}
