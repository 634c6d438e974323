import type { Collection, Document } from 'mongodb'
import type { DetectionDocument } from './detection.js'

/** Every MongoDB counter document carries the watermark of what it has counted. */
export interface WatermarkedDocument extends Document {
  _id: string
  /** Highest offset of the partition counted here. */
  through: number
  /** Newest record timestamp counted: tells a re-created topic from a late writer. */
  throughTimestamp: number
}

export interface CounterUpdate {
  inc: Record<string, number>
  set: Record<string, unknown>
}

const MAX_CAS_ATTEMPTS = 10

/**
 * Counts detections of ONE partition into ONE counter document exactly once, by a single-document
 * compare-and-set on its watermark: MongoDB-protocol servers without multi-document transactions
 * (FerretDB) cannot update a counter and mark detections counted atomically otherwise.
 *
 * Batches of a partition start at its committed offset, and everything below that was counted
 * before the commit, so "offset above the watermark" is exactly "not yet counted", whatever the
 * batch boundaries of a redelivery. The one exception is a deleted and re-created topic, whose
 * offsets restart at 0: a fresh detection at or below the watermark that is also newer than
 * anything counted can only be that, so it is counted and the watermark restarts.
 */
export async function countOnce<T extends WatermarkedDocument>(
  counters: Collection<T>,
  _id: string,
  initial: Omit<T, '_id' | 'through' | 'throughTimestamp'>,
  group: readonly DetectionDocument[],
  fresh: ReadonlySet<string>,
  update: (counted: readonly DetectionDocument[]) => CounterUpdate,
): Promise<void> {
  if (group.length === 0) return
  const batchMax = Math.max(...group.map((d) => d.source.offset))
  const batchMaxTimestamp = Math.max(...group.map((d) => d.source.timestamp))
  const filterById = { _id } as unknown as Parameters<Collection<T>['findOne']>[0]
  for (let attempt = 1; attempt <= MAX_CAS_ATTEMPTS; attempt++) {
    const current = (await counters.findOne(filterById, {
      projection: { through: 1, throughTimestamp: 1 },
    })) as WatermarkedDocument | null
    if (!current) {
      // Create the empty counter first so every update below is a compare-and-set on `through`.
      const empty = { ...initial, _id, through: -1, throughTimestamp: -1 }
      await counters
        .insertOne(empty as unknown as Parameters<Collection<T>['insertOne']>[0])
        .catch((err: unknown) => {
          if ((err as { code?: unknown }).code !== 11000) throw err
        })
      continue
    }
    const { through, throughTimestamp } = current
    // A retry after losing the race to another writer counts only what is above the new
    // watermark: the other writer has counted the rest, fresh or not.
    const recreated =
      attempt === 1 &&
      group.some(
        (d) => d.source.offset <= through && d.source.timestamp > throughTimestamp && fresh.has(d._id),
      )
    const seen = new Set<string>()
    // A record twice in one batch is one detection.
    const counted = group.filter(
      (d) =>
        !seen.has(d._id) && seen.add(d._id) && (recreated ? fresh.has(d._id) : d.source.offset > through),
    )
    const nextThrough = recreated ? batchMax : Math.max(through, batchMax)
    const nextTimestamp = recreated ? batchMaxTimestamp : Math.max(throughTimestamp, batchMaxTimestamp)
    if (counted.length === 0 && nextThrough === through) return
    const { inc, set } = counted.length > 0 ? update(counted) : { inc: {}, set: {} }
    const $set = { ...set, through: nextThrough, throughTimestamp: nextTimestamp }
    const change = Object.keys(inc).length > 0 ? { $inc: inc, $set } : { $set }
    const result = await counters.updateOne(
      { _id, through } as unknown as Parameters<Collection<T>['updateOne']>[0],
      change as unknown as Parameters<Collection<T>['updateOne']>[1],
    )
    if (result.matchedCount === 1) return
  }
  throw new Error(`counter ${_id.replaceAll('\u0000', '/')}: too much contention`)
}

/** Field names may not contain `.` or start with `$`; escape them reversibly. */
export function encodeField(key: string): string {
  return key.replaceAll('%', '%25').replaceAll('.', '%2E').replaceAll('$', '%24')
}
export function decodeField(field: string): string {
  return field.replaceAll('%24', '$').replaceAll('%2E', '.').replaceAll('%25', '%')
}

export function groupByPartition<K>(
  documents: readonly DetectionDocument[],
  extra: (document: DetectionDocument) => K,
): Map<string, { key: K; documents: DetectionDocument[] }> {
  const groups = new Map<string, { key: K; documents: DetectionDocument[] }>()
  for (const document of documents) {
    const key = extra(document)
    const id = `${document.source.topic}\u0000${document.source.partition}\u0000${String(key)}`
    const group = groups.get(id)
    if (group) group.documents.push(document)
    else groups.set(id, { key, documents: [document] })
  }
  return groups
}
