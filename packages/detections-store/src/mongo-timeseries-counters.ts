import type { Collection, Db } from 'mongodb'
import type { DetectionDocument } from './detection.js'
import { countOnce, encodeField, groupByPartition, type WatermarkedDocument } from './mongo-counted-once.js'
import { dimensionValue, type StatsCounters } from './mongo-stats-counters.js'
import {
  STATS_DIMENSIONS,
  type StatsDimension,
  type TimeseriesQuery,
  type TimeseriesResult,
} from './repository.js'
import {
  assembleTimeseries,
  BUCKET_MS,
  type BucketCount,
  checkedTimeseriesRange,
  type GroupBucketCount,
} from './timeseries.js'

const HOUR = BUCKET_MS.hour
const MINUTE = BUCKET_MS.minute

/**
 * One document per (topic, partition, UTC hour) holding that hour's minute counters: `m.m<minute>`
 * = `{ t: total, s: suspicious }` and `g.<dim>.m<minute>.<value key>` = count. Hour and day
 * buckets add minutes up. An hour per document keeps each one small (60 minutes × the values seen)
 * and each update a single-document compare-and-set on the watermark, like the stats counters.
 */
interface BucketDocument extends WatermarkedDocument {
  topic: string
  partition: number
  hour: Date
  m: Record<string, { t?: number; s?: number }>
  g: Partial<Record<StatsDimension, Record<string, Record<string, number>>>>
}

export function createTimeseriesCounters(db: Db, stats: StatsCounters, collectionName = 'detection_buckets') {
  const buckets: Collection<BucketDocument> = db.collection<BucketDocument>(collectionName)

  async function ensureIndexes(): Promise<void> {
    await buckets.createIndex({ hour: 1 }, { name: 'hour' })
  }

  async function apply(documents: readonly DetectionDocument[], fresh: ReadonlySet<string>): Promise<void> {
    const groups = groupByPartition(documents, (d) => Math.floor(d.detectedAt.getTime() / HOUR) * HOUR)
    await Promise.all(
      [...groups.values()].map(({ key: hour, documents: group }) => {
        const { topic, partition } = group[0]!.source
        return countOnce(
          buckets,
          `${topic}\u0000${partition}\u0000${hour}`,
          { topic, partition, hour: new Date(hour), m: {}, g: {} },
          group,
          fresh,
          (counted) => {
            const inc: Record<string, number> = {}
            const add = (field: string) => {
              inc[field] = (inc[field] ?? 0) + 1
            }
            for (const document of counted) {
              const minute = `m${Math.floor((document.detectedAt.getTime() - hour) / MINUTE)}`
              add(`m.${minute}.t`)
              if (document.suspicious) add(`m.${minute}.s`)
              for (const dim of STATS_DIMENSIONS) {
                add(`g.${dim}.${minute}.${encodeField(dimensionValue(document, dim).key)}`)
              }
            }
            return { inc, set: {} }
          },
        )
      }),
    )
  }

  async function read(query: TimeseriesQuery): Promise<TimeseriesResult> {
    const { from, to } = checkedTimeseriesRange(query)
    const dim = query.groupBy
    const counts: BucketCount[] = []
    const groupCounts: GroupBucketCount[] = []
    const labels = dim ? await stats.labels(dim) : new Map<string, string>()
    const projection = dim ? { hour: 1, m: 1, [`g.${dim}`]: 1 } : { hour: 1, m: 1 }
    const cursor = buckets.find(
      { hour: { $gte: new Date(Math.floor(from.getTime() / HOUR) * HOUR), $lt: to } },
      { projection },
    )
    for await (const doc of cursor) {
      const hour = doc.hour.getTime()
      for (const [minute, value] of Object.entries(doc.m ?? {})) {
        counts.push({
          start: hour + Number(minute.slice(1)) * MINUTE,
          total: value.t ?? 0,
          suspicious: value.s ?? 0,
        })
      }
      if (!dim) continue
      for (const [minute, values] of Object.entries(doc.g?.[dim] ?? {})) {
        const start = hour + Number(minute.slice(1)) * MINUTE
        for (const [field, total] of Object.entries(values)) {
          groupCounts.push({ key: field, label: labels.get(field) ?? field, start, total })
        }
      }
    }
    return assembleTimeseries(query, counts, groupCounts)
  }

  return { ensureIndexes, apply, read }
}
