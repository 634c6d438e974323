import { createServer, type Server } from 'node:http'
import { checkReadiness } from '@intellisite/common'
import type { Registry } from 'prom-client'
import type { StalledPartition } from './partition-health.js'

export interface HealthChecks {
  /** Consumer joined its group. */
  kafka: () => boolean
  /** The detections store: its backend, and a ping that resolves when it answers. */
  detections: { backend: 'postgres' | 'mongodb'; ping: () => Promise<void> }
  /** Owned partitions that make no progress; any makes the indexer unready. */
  stalled: () => StalledPartition[]
  /** The alert rules changelog has been read to its end (not checked when absent). */
  rules?: () => boolean
}

/**
 * `/healthz` (process alive), `/readyz` (alert rules loaded, Kafka consumer joined, store
 * answering, no stalled partition), `/metrics`.
 */
export function createHealthServer(options: { registry: Registry; checks: HealthChecks }): Server {
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
      // The API's shape and words: a stalled partition is a `partitions` check that is down.
      const stalled = checks.stalled()
      const rulesLoaded = checks.rules?.() ?? true
      checkReadiness(
        {
          ...(checks.rules && { rules: () => rulesLoaded }),
          kafka: checks.kafka,
          partitions: () => stalled.length === 0,
        },
        { detections: { backend: checks.detections.backend, check: checks.detections.ping } },
      ).then((readiness) =>
        json(readiness.status === 'ready' ? 200 : 503, {
          ...readiness,
          ...(!rulesLoaded && { detail: 'loading alert rules' }),
          ...(stalled.length > 0 && { stalled }),
        }),
      )
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
