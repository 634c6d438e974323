import type { Collection, Db } from 'mongodb'
import type { DetectionDocument } from './detection.js'
import type { MaintenanceResult, RetentionPolicy } from './repository.js'

const TTL_INDEX = 'retention_ttl'
/** `NotImplemented`: FerretDB 1.x answers a TTL index so. */
const NOT_IMPLEMENTED = 238

/**
 * Detections retention on MongoDB: a TTL index on `detectedAt`, so the server's TTL monitor
 * (every 60 s) deletes what is older than the window, in the background, document by document.
 * A server without TTL indexes (FerretDB 1.x) gets a `deleteMany` of the expired detections on
 * each maintenance pass instead. Counters and time-series buckets are kept: `/stats` counts all
 * time, and the buckets are small.
 */
export function createMongoRetention(db: Db, detections: Collection<DetectionDocument>) {
  async function ttlIndex(): Promise<{ expireAfterSeconds?: number } | undefined> {
    const indexes = await detections.indexes().catch(() => [])
    return indexes.find((index) => index.name === TTL_INDEX)
  }

  async function apply(policy: RetentionPolicy, now: Date): Promise<MaintenanceResult> {
    const existing = await ttlIndex()
    if (policy.detectionsMs === null) {
      if (existing) await detections.dropIndex(TTL_INDEX)
      return { ran: true, dropped: [] }
    }
    const seconds = Math.ceil(policy.detectionsMs / 1000)
    try {
      if (!existing) {
        await detections.createIndex({ detectedAt: 1 }, { name: TTL_INDEX, expireAfterSeconds: seconds })
      } else if (existing.expireAfterSeconds !== seconds) {
        await db.command({
          collMod: detections.collectionName,
          index: { name: TTL_INDEX, expireAfterSeconds: seconds },
        })
      }
      return { ran: true, dropped: [] }
    } catch (err) {
      if ((err as { code?: unknown }).code !== NOT_IMPLEMENTED) throw err
    }
    const { deletedCount } = await detections.deleteMany({
      detectedAt: { $lt: new Date(now.getTime() - policy.detectionsMs) },
    })
    return { ran: true, dropped: deletedCount > 0 ? [`${deletedCount} detections`] : [] }
  }

  return { apply }
}
