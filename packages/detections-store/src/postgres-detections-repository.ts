import type { Pool, PoolClient } from 'pg'
import { cursorPosition, pageOf } from './cursor.js'
import { type Detection, type DetectionDocument, normalizeKey } from './detection.js'
import { copyInto } from './postgres-copy.js'
import {
  ADD_COUNTERS,
  addCountersParams,
  batchCounters,
  DETECTION_COLUMNS,
  INSERT_NEW_FROM_STAGING,
  STAGING_TABLE,
  stagingRows,
  tokenRows,
} from './postgres-insert.js'
import { migrateDetectionsSchema } from './postgres-migrate.js'
import {
  createDayPartitions,
  daysAhead,
  isMissingPartition,
  maintainPartitions,
} from './postgres-partitions.js'
import { prepared } from './postgres-prepared.js'
import { createPostgresTimeseries } from './postgres-timeseries.js'
import type {
  DetectionFilters,
  DetectionsRepository,
  InsertResult,
  ListQuery,
  ListResult,
  MaintenanceResult,
  RetentionPolicy,
  StatsDimension,
  StatsResult,
  TimeseriesQuery,
  TimeseriesResult,
} from './repository.js'

const SELECTED_COLUMNS = 'd.id, d.detected_at, d.year, d.make, d.model, d.category, d.suspicious'

interface DetectionRow {
  id: string
  detected_at: Date
  year: number
  make: string
  model: string
  category: string
  suspicious: boolean
}

function toDetection(row: DetectionRow): Detection {
  return {
    id: row.id,
    year: row.year,
    make: row.make,
    model: row.model,
    category: row.category,
    detectedAt: row.detected_at,
    suspicious: row.suspicious,
  }
}

/** Deadlocks between concurrent batches are rare (key-ordered upserts) but retried here at once. */
const DEADLOCK = '40P01'
const UNIQUE_VIOLATION = '23505'
const codeOf = (err: unknown) => (err as { code?: string }).code

/**
 * A batch's transaction holds its rows' unique keys and its counters until it commits, and the
 * next owner of a partition writes the same rows. A writer frozen mid-batch (a long GC pause, a
 * stopped VM) would hold them for as long as it stays frozen, so the server ends such a session
 * after this long, idle between statements or stuck in one (a COPY waiting for data). The frozen
 * writer's batch then fails when it wakes, and Kafka's fencing keeps it from committing.
 */
const BATCH_STALL_TIMEOUT_MS = 10_000
const BEGIN_BATCH =
  `BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${BATCH_STALL_TIMEOUT_MS}; ` +
  `SET LOCAL statement_timeout = ${BATCH_STALL_TIMEOUT_MS}`

/**
 * FROM and WHERE for a filter. A category token drives the query from its own newest-first index
 * (the token table), every other filter from the detections' index for it; either way the
 * ORDER BY below follows an index, so a page reads about `limit` rows at any depth.
 */
function selection(filters: DetectionFilters, params: unknown[]) {
  const where: string[] = []
  const param = (value: unknown) => {
    params.push(value)
    return `$${params.length}`
  }
  const byToken = filters.category !== undefined
  const order = byToken ? 't' : 'd'
  // Joined on the whole key, partition key included, so each token row probes one day's index.
  const from = byToken
    ? 'detection_category_tokens t JOIN detections d ON d.detected_at = t.detected_at AND d.id = t.id'
    : 'detections d'
  if (filters.category !== undefined) where.push(`t.token = ${param(normalizeKey(filters.category))}`)
  if (filters.make !== undefined) where.push(`d.make_key = ${param(normalizeKey(filters.make))}`)
  if (filters.model !== undefined) where.push(`d.model_key = ${param(normalizeKey(filters.model))}`)
  if (filters.year !== undefined) where.push(`d.year = ${param(filters.year)}`)
  if (filters.from !== undefined) where.push(`${order}.detected_at >= ${param(filters.from)}`)
  if (filters.to !== undefined) where.push(`${order}.detected_at < ${param(filters.to)}`)
  return { from, where, order, param }
}

export function createPostgresDetectionsRepository(pool: Pool): DetectionsRepository {
  async function ensureIndexes(): Promise<void> {
    await migrateDetectionsSchema(pool)
    // Today and the days ahead, so that the first inserts find their partitions.
    await createDayPartitions(pool, daysAhead(Date.now()))
  }

  /**
   * The whole batch in one transaction. The fast path COPYs the rows and their token rows straight
   * into their tables and adds the batch's counts (summed per key here) to the counters: a batch
   * with no row already stored, which is every batch but a redelivery. A row already there makes
   * the COPY fail on the unique index (a concurrent writer of the same rows makes it wait for that
   * writer's commit first), and the batch goes again through {@link INSERT_NEW_FROM_STAGING}, which
   * counts only the rows it inserted. Either way each detection is stored and counted once.
   */
  async function writeBatch(
    client: PoolClient,
    documents: readonly DetectionDocument[],
  ): Promise<InsertResult> {
    await client.query(BEGIN_BATCH)
    let fresh: readonly DetectionDocument[] = documents
    try {
      await copyInto(client, `detections (${DETECTION_COLUMNS})`, stagingRows(documents))
      await copyInto(client, 'detection_category_tokens (token, detected_at, id)', tokenRows(documents))
    } catch (err) {
      if (codeOf(err) !== UNIQUE_VIOLATION) throw err
      await client.query('ROLLBACK')
      await client.query(BEGIN_BATCH)
      await client.query(
        `CREATE TEMP TABLE IF NOT EXISTS ${STAGING_TABLE} (LIKE detections) ON COMMIT DELETE ROWS`,
      )
      await copyInto(client, STAGING_TABLE, stagingRows(documents))
      const { rows } = await client.query<{ id: string }>(INSERT_NEW_FROM_STAGING)
      const inserted = new Set(rows.map((row) => row.id))
      // A record twice in one batch is one detection: its first copy is the one counted.
      fresh = documents.filter((d) => inserted.delete(d._id))
    }
    if (fresh.length > 0) await client.query(ADD_COUNTERS, addCountersParams(batchCounters(fresh)))
    await client.query('COMMIT')
    return { inserted: fresh.length, duplicates: documents.length - fresh.length }
  }

  async function insertBatch(documents: readonly DetectionDocument[]): Promise<InsertResult> {
    if (documents.length === 0) return { inserted: 0, duplicates: 0 }
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect()
      let broken: Error | undefined
      // A connection lost between two statements of the transaction emits here (and fails the
      // next statement); unheard, it would crash the process.
      const lost = (err: Error) => {
        broken = err
      }
      client.on('error', lost)
      try {
        return await writeBatch(client, documents)
      } catch (err) {
        // The transaction rolled back whole, so running it again is the same as running it once.
        await client.query('ROLLBACK').catch((rollbackFailed: Error) => {
          broken = rollbackFailed
        })
        if (attempt >= 5) throw err
        if (isMissingPartition(err)) {
          // A day not created ahead (a late or early record, or a store that was never maintained).
          await createDayPartitions(
            pool,
            documents.map((d) => d.detectedAt.getTime()),
          )
          continue
        }
        if (codeOf(err) !== DEADLOCK) throw err
      } finally {
        client.off('error', lost)
        client.release(broken)
      }
    }
  }

  async function list(query: ListQuery): Promise<ListResult> {
    const params: unknown[] = []
    const { from, where, order, param } = selection(query.filters ?? {}, params)
    let offset = ''
    if (query.cursor !== undefined) {
      const position = cursorPosition(query.cursor)
      const at = param(position.detectedAt)
      // The plain bound lets the planner skip every day newer than the cursor (a row comparison
      // does not prune partitions).
      where.push(
        `${order}.detected_at <= ${at}`,
        `(${order}.detected_at, ${order}.id) < (${at}, ${param(position.id)})`,
      )
    } else if (query.skip) {
      offset = ` OFFSET ${param(query.skip)}`
    }
    // One extra row tells whether a next page exists without a count.
    const limit = param(query.limit + 1)
    const filters = query.filters ?? {}
    const tokenOnly =
      filters.category !== undefined &&
      filters.make === undefined &&
      filters.model === undefined &&
      filters.year === undefined
    const condition = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''
    // A token page picks its `limit` token rows first, then fetches each detection by its key: as a
    // plain join the planner costs a probe of every day's partition per row and prefers a hash join
    // over all detections. `LIMIT 1` keeps the lookup a per-row probe (it is not flattened).
    const text = tokenOnly
      ? `SELECT ${SELECTED_COLUMNS} FROM (
           SELECT t.detected_at, t.id FROM detection_category_tokens t${condition}
           ORDER BY t.detected_at DESC, t.id DESC LIMIT ${limit}${offset}
         ) AS t CROSS JOIN LATERAL (
           SELECT * FROM detections d WHERE d.detected_at = t.detected_at AND d.id = t.id LIMIT 1
         ) AS d
         ORDER BY t.detected_at DESC, t.id DESC`
      : `SELECT ${SELECTED_COLUMNS} FROM ${from}${condition}
         ORDER BY ${order}.detected_at DESC, ${order}.id DESC LIMIT ${limit}${offset}`
    const { rows } = await pool.query<DetectionRow>(prepared(text, params))
    return pageOf(rows, query.limit, toDetection, (row) => ({ detectedAt: row.detected_at, id: row.id }))
  }

  /**
   * Unfiltered and single make/model/category-token/year counts come from the counters: the
   * all-time stats while nothing has been dropped, else the day counts from the first kept day
   * (days and partitions share their UTC bounds, so these are exactly the rows still stored).
   */
  async function count(filters: DetectionFilters = {}): Promise<number> {
    const set = Object.entries(filters).filter(([, v]) => v !== undefined)
    const [name, value] = set[0] ?? []
    if (set.length === 0 || (set.length === 1 && name !== 'from' && name !== 'to')) {
      const dim = name === undefined ? '' : name === 'category' ? 'token' : name
      const key = name === undefined ? '' : name === 'year' ? String(value) : normalizeKey(String(value))
      const { rows } = await pool.query<{ n: string }>(
        prepared(
          `SELECT CASE WHEN r.kept_from IS NULL THEN
           (SELECT coalesce(sum(count), 0) FROM detection_stats
            WHERE dim = coalesce(nullif($1, ''), 'make') AND ($1 = '' OR value_key = $2))
         ELSE
           (SELECT coalesce(sum(total), 0) FROM detection_days
            WHERE dim = $1 AND value_key = $2 AND start >= r.kept_from)
         END AS n
         FROM (SELECT (SELECT kept_from FROM detection_retention WHERE what = 'detections') AS kept_from) AS r`,
          [dim, key],
        ),
      )
      return Number(rows[0]?.n ?? 0)
    }
    const params: unknown[] = []
    const { from, where } = selection(filters, params)
    const { rows } = await pool.query<{ n: string }>(
      prepared(`SELECT count(*) AS n FROM ${from} WHERE ${where.join(' AND ')}`, params),
    )
    return Number(rows[0]?.n ?? 0)
  }

  async function stats(dim: StatsDimension): Promise<StatsResult> {
    const { rows } = await pool.query<{ value: string; count: string }>(
      `SELECT min(label) AS value, sum(count) AS count FROM detection_stats WHERE dim = $1
       GROUP BY value_key HAVING sum(count) > 0
       ORDER BY sum(count) DESC, min(label) COLLATE "C"`,
      [dim],
    )
    const items = rows.map((row) => ({ value: row.value, count: Number(row.count) }))
    return { total: items.reduce((sum, item) => sum + item.count, 0), items }
  }

  const series = createPostgresTimeseries(pool)
  async function timeseries(query: TimeseriesQuery): Promise<TimeseriesResult> {
    return series.read(query)
  }

  async function maintain(policy: RetentionPolicy, now = new Date()): Promise<MaintenanceResult> {
    return maintainPartitions(pool, policy, now)
  }

  async function ping(): Promise<void> {
    await pool.query('SELECT 1')
  }

  return { ensureIndexes, insertBatch, list, count, stats, timeseries, ping, maintain }
}
