import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'
import type { StalledPartition } from './partition-health.js'

export interface HealthChecks {
  /** Consumer joined its group. */
  kafka: () => boolean
  /** The detections store: its backend, and a ping that resolves when it answers. */
  detections: { backend: string; ping: () => Promise<void> }
  /** Owned partitions that make no progress; any makes the indexer unready. */
  stalled: () => StalledPartition[]
}

const PING_TIMEOUT_MS = 2_000

async function check(probe: () => boolean | Promise<void>): Promise<'up' | 'down'> {
  try {
    const result = await Promise.race<boolean | undefined>([
      (async () => (await probe()) ?? undefined)(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS).unref(),
      ),
    ])
    return result === false ? 'down' : 'up'
  } catch {
    return 'down'
  }
}

/** `/healthz` (process alive), `/readyz` (Kafka consumer joined, store answering, no stalled partition), `/metrics`. */
export function createHealthServer(options: { registry: Registry; checks: HealthChecks }): Server {
  const { registry, checks } = options
  return createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
      response.end(JSON.stringify(body))
    }
    if (request.method !== 'GET' && request.method !== 'HEAD')
      return json(405, { error: 'method not allowed' })
    if (path === '/healthz') return json(200, { status: 'ok' })
    if (path === '/readyz') {
      Promise.all([check(checks.kafka), check(checks.detections.ping)]).then(([kafka, store]) => {
        const stalled = checks.stalled()
        const partitions = stalled.length === 0 ? 'ok' : 'stalled'
        const ready = kafka === 'up' && store === 'up' && partitions === 'ok'
        json(ready ? 200 : 503, {
          status: ready ? 'ready' : 'not ready',
          // Shaped like the API's: the store's check names the backend it runs on.
          checks: { kafka, detections: { backend: checks.detections.backend, status: store }, partitions },
          ...(stalled.length > 0 && { stalled }),
        })
      })
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
