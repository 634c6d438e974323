import type { DetectionsCheck, ReadinessCheck } from '@intellisite/common'
import fp from 'fastify-plugin'

/** What GET /readyz checks: each plugin that opens a resource adds the check for it. */
export interface ReadinessChecks {
  /** Named dependency checks; any `down` makes the API not ready. */
  checks: Record<string, ReadinessCheck>
  /** The detections store, reported as `checks.detections` with the backend it runs on. */
  detections?: DetectionsCheck
}

declare module 'fastify' {
  interface FastifyInstance {
    readiness: ReadinessChecks
  }
}

/** Registered before the resource plugins, which fill it in; the health routes read it per request. */
export const readinessPlugin = fp(
  async (app) => {
    app.decorate('readiness', { checks: {} } satisfies ReadinessChecks)
  },
  { name: 'readiness' },
)
