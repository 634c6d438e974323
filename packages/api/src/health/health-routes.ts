import { type CheckStatus, checkReadiness, type ReadinessCheck } from '@intellisite/common'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

export type { CheckStatus, ReadinessCheck }

export interface HealthRoutesOptions {
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

/** /readyz runs the checks the resource plugins added to `app.readiness` (see plugins/readiness.ts). */
export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (app, { timeoutMs }) => {
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
      const { checks, detections } = app.readiness
      const readiness = await checkReadiness(checks, { detections, timeoutMs })
      return reply.code(readiness.status === 'ready' ? 200 : 503).send(readiness)
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
