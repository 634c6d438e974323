import type { Server } from 'node:http'
import {
  checkReadiness,
  createHealthServer,
  type MetricsSource,
  type ReadinessReport,
} from '@intellisite/common'
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
 * The indexer's `/readyz`: alert rules loaded, Kafka consumer joined, store answering, no stalled
 * partition, in the API's shape and words (a stalled partition is a `partitions` check that is down).
 */
export function indexerReadiness(checks: HealthChecks): () => Promise<ReadinessReport> {
  return async () => {
    const stalled = checks.stalled()
    const rulesLoaded = checks.rules?.() ?? true
    const readiness = await checkReadiness(
      {
        ...(checks.rules && { rules: () => rulesLoaded }),
        kafka: checks.kafka,
        partitions: () => stalled.length === 0,
      },
      { detections: { backend: checks.detections.backend, check: checks.detections.ping } },
    )
    return {
      ready: readiness.status === 'ready',
      body: {
        ...readiness,
        ...(!rulesLoaded && { detail: 'loading alert rules' }),
        ...(stalled.length > 0 && { stalled }),
      },
    }
  }
}

/** `/healthz`, `/readyz` (see `indexerReadiness`), `/metrics`. */
export function createIndexerHealthServer(options: {
  registry: MetricsSource
  checks: HealthChecks
}): Server {
  return createHealthServer({ registry: options.registry, readiness: indexerReadiness(options.checks) })
}
