import type { Pool, PoolClient } from 'pg'
import { foldClosedBuckets } from './postgres-fold.js'
import type { MaintenanceResult, RetentionPolicy } from './repository.js'

const DAY_MS = 86_400_000
/** Days created ahead of today, so a day's first insert never waits for its partition. */
export const DAYS_AHEAD = 3
/** Any constant the same in every process; distinct from the migration lock. */
const MAINTENANCE_LOCK = 0x1e7edf

/** Tables partitioned by UTC day, with what their retention is called in `detection_retention`. */
const PARTITIONED = [
  { table: 'detections', what: 'detections' },
  { table: 'detection_category_tokens', what: 'detections' },
  { table: 'detection_minutes', what: 'minute' },
  { table: 'detection_minute_runs', what: 'minute' },
  { table: 'detection_hours', what: 'hour' },
  { table: 'detection_hour_runs', what: 'hour' },
] as const
type Kept = (typeof PARTITIONED)[number]['what']

/** Today and the {@link DAYS_AHEAD} days after it, as the start of each UTC day. */
export const daysAhead = (now: number) =>
  Array.from({ length: DAYS_AHEAD + 1 }, (_, i) => floorToDay(now) + i * DAY_MS)

export const floorToDay = (ms: number) => ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS)

/** Creates the day partitions (of every partitioned table) that hold these instants, if missing. */
export async function createDayPartitions(db: Pool | PoolClient, instants: Iterable<number>): Promise<void> {
  const days = [...new Set([...instants].map(floorToDay))].map((day) => new Date(day))
  if (days.length === 0) return
  await db.query('SELECT detections_day_partitions(t, $1::timestamptz[]) FROM unnest($2::text[]) AS t', [
    days,
    PARTITIONED.map((p) => p.table),
  ])
}

/** The insert found no partition for a row: its day has not been created yet (or was dropped). */
export const NO_PARTITION = '23514'
export const isMissingPartition = (err: unknown) =>
  (err as { code?: string }).code === NO_PARTITION &&
  /no partition of relation/.test((err as { message?: string }).message ?? '')

const PARTITION_NAME = /^(.+)_p(\d{4})(\d{2})(\d{2})$/

interface Partition {
  table: string
  name: string
  /** Start of its UTC day, epoch ms. */
  day: number
  detachPending: boolean
}

async function partitions(client: PoolClient): Promise<Partition[]> {
  const { rows } = await client.query<{ parent: string; name: string; pending: boolean }>(
    `SELECT p.relname AS parent, c.relname AS name, i.inhdetachpending AS pending
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
     WHERE p.relname = ANY($1) AND p.relnamespace = 'public'::regnamespace`,
    [PARTITIONED.map((p) => p.table)],
  )
  return rows.flatMap((row) => {
    const match = PARTITION_NAME.exec(row.name)
    if (!match || match[1] !== row.parent) return []
    const day = Date.UTC(Number(match[2]), Number(match[3]) - 1, Number(match[4]))
    return [{ table: row.parent, name: row.name, day, detachPending: row.pending }]
  })
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * Detaches a partition without blocking readers or writers of its table (`CONCURRENTLY` waits for
 * the queries that use it instead of locking them out), then drops it: a file unlink, whatever
 * the row count. A detach interrupted halfway is finished by the next run.
 */
async function dropPartition(client: PoolClient, partition: Partition): Promise<void> {
  const detach = partition.detachPending ? 'FINALIZE' : 'CONCURRENTLY'
  await client.query(
    `ALTER TABLE ${quote(partition.table)} DETACH PARTITION ${quote(partition.name)} ${detach}`,
  )
  await client.query(`DROP TABLE ${quote(partition.name)}`)
}

/**
 * One maintenance pass: today's and the next {@link DAYS_AHEAD} days' partitions, then every day
 * partition wholly older than its kind's retention dropped, then the buckets closed since the last
 * pass folded into one row each. `detection_retention` records where
 * each kind now starts, before the drop, so a reader never takes a half-dropped range for zeros.
 */
export async function maintainPartitions(
  pool: Pool,
  policy: RetentionPolicy,
  now: Date,
): Promise<MaintenanceResult> {
  const client = await pool.connect()
  let broken: Error | undefined
  // A connection lost between two statements emits here; unheard, it would crash the process.
  const lost = (err: Error) => {
    broken = err
  }
  client.on('error', lost)
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
      MAINTENANCE_LOCK,
    ])
    if (!rows[0]?.locked) return { ran: false, dropped: [] }
    try {
      await createDayPartitions(client, daysAhead(now.getTime()))
      const keep: Record<Kept, number | null> = {
        detections: policy.detectionsMs,
        minute: policy.minuteBucketsMs,
        hour: policy.hourBucketsMs,
      }
      const what = new Map<string, Kept>(PARTITIONED.map((p) => [p.table, p.what]))
      const expired = (await partitions(client)).filter((partition) => {
        const ms = keep[what.get(partition.table)!]
        // A day goes when all of it is older than the window: its end is at or before now - keep.
        return partition.detachPending || (ms !== null && partition.day + DAY_MS <= now.getTime() - ms)
      })
      const keptFrom = new Map<Kept, number>()
      for (const partition of expired) {
        const kind = what.get(partition.table)!
        keptFrom.set(kind, Math.max(keptFrom.get(kind) ?? 0, partition.day + DAY_MS))
      }
      if (keptFrom.size > 0) {
        await client.query(
          `INSERT INTO detection_retention (what, kept_from)
           SELECT * FROM unnest($1::text[], $2::timestamptz[])
           ON CONFLICT (what) DO UPDATE SET kept_from = greatest(detection_retention.kept_from, excluded.kept_from)`,
          [[...keptFrom.keys()], [...keptFrom.values()].map((ms) => new Date(ms))],
        )
      }
      for (const partition of expired) await dropPartition(client, partition)
      await foldClosedBuckets(client, now)
      return { ran: true, dropped: expired.map((p) => p.name) }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MAINTENANCE_LOCK]).catch(() => {})
    }
  } finally {
    client.off('error', lost)
    client.release(broken)
  }
}

/** Where each kind of data starts after retention; absent when nothing of it was dropped. */
export async function keptFrom(pool: Pool): Promise<Partial<Record<Kept, Date>>> {
  const { rows } = await pool.query<{ what: Kept; kept_from: Date }>(
    'SELECT what, kept_from FROM detection_retention',
  )
  return Object.fromEntries(rows.map((row) => [row.what, row.kept_from]))
}
