import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { collectDefaultMetrics, Histogram, Registry } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    /** Per-app Prometheus registry: other plugins (the alerts stream) register their metrics here. */
    metrics: Registry
  }
  interface FastifyRequest {
    metricsStart?: bigint
  }
}

/** Request durations by route template (never the raw URL: unbounded label values) and status. */
export const metricsPlugin = fp<{ registry?: Registry }>(
  async (app, options) => {
    const registry = options.registry ?? new Registry()
    collectDefaultMetrics({ register: registry })
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration in seconds, by method, route template and status code',
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    })
    app.decorate('metrics', registry)

    app.addHook('onRequest', async (request: FastifyRequest) => {
      request.metricsStart = process.hrtime.bigint()
    })
    app.addHook('onResponse', async (request, reply) => {
      if (request.metricsStart === undefined) return
      const seconds = Number(process.hrtime.bigint() - request.metricsStart) / 1e9
      duration.observe(
        {
          method: request.method,
          route: request.routeOptions.url ?? 'unmatched',
          status_code: String(reply.statusCode),
        },
        seconds,
      )
    })
  },
  { name: 'metrics' },
)
