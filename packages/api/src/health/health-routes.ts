import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

export type CheckStatus = 'up' | 'down' | 'disabled'
export type ReadinessCheck = () => Promise<CheckStatus> | CheckStatus

export interface HealthRoutesOptions {
  /** Named dependency checks; any `down` makes the API not ready. */
  checks: Record<string, ReadinessCheck>
  /** The detections store, reported as `checks.detections` with the backend it runs on. */
  detections?: { backend: 'postgres' | 'mongodb'; check: ReadinessCheck }
  timeoutMs?: number
}

const checkStatus = z.enum(['up', 'down', 'disabled'])
const detectionsCheck = z
  .object({ backend: z.enum(['postgres', 'mongodb']), status: checkStatus })
  .describe('The detections store: which backend serves /detections and /stats, and whether it answers')
const readinessSchema = z
  .object({
    status: z.enum(['ready', 'unavailable']),
    checks: z
      .record(z.string(), z.union([checkStatus, detectionsCheck]))
      .describe(
        'Each dependency: up, down, or disabled (not configured); `detections` also names its backend',
      ),
  })
  .meta({
    id: 'Readiness',
    examples: [
      {
        status: 'ready',
        checks: { postgres: 'up', detections: { backend: 'postgres', status: 'up' }, kafka: 'up' },
      },
    ],
  })

async function run(check: ReadinessCheck, timeoutMs: number): Promise<CheckStatus> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<CheckStatus>((resolve) => {
    timer = setTimeout(() => resolve('down'), timeoutMs)
  })
  try {
    return await Promise.race([Promise.resolve().then(check), timeout])
  } catch {
    return 'down'
  } finally {
    clearTimeout(timer)
  }
}

export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (
  app,
  { checks: namedChecks, detections, timeoutMs = 2000 },
) => {
  const checks = detections ? { ...namedChecks, detections: detections.check } : namedChecks
  app.get(
    '/healthz',
    {
      logLevel: 'warn',
      schema: {
        tags: ['operations'],
        operationId: 'getHealth',
        summary: 'Liveness: the process is up and serving HTTP',
        response: { 200: z.object({ status: z.literal('ok') }).meta({ examples: [{ status: 'ok' }] }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  )

  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      schema: {
        tags: ['operations'],
        operationId: 'getReadiness',
        summary: 'Readiness: PostgreSQL, the detections store and Kafka are reachable',
        description:
          '503 while any dependency is down, so a load balancer stops routing here until it recovers.',
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (_request, reply) => {
      const names = Object.keys(checks)
      const results = await Promise.all(names.map((name) => run(checks[name]!, timeoutMs)))
      const statuses: Record<string, CheckStatus | { backend: 'postgres' | 'mongodb'; status: CheckStatus }> =
        Object.fromEntries(names.map((name, i) => [name, results[i]!]))
      if (detections && statuses.detections !== undefined) {
        statuses.detections = { backend: detections.backend, status: statuses.detections as CheckStatus }
      }
      const ready = results.every((status) => status !== 'down')
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: statuses })
    },
  )

  app.get(
    '/metrics',
    {
      logLevel: 'warn',
      schema: {
        tags: ['operations'],
        operationId: 'getMetrics',
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: { 200: z.string().describe('Prometheus text format 0.0.4') },
      },
    },
    async (_request, reply) => {
      const body = await app.metrics.metrics()
      return reply.type(app.metrics.contentType).send(body)
    },
  )
}
