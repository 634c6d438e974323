import type { PoolClient } from 'pg'
import type { TimeseriesBucket } from './repository.js'
import { BUCKET_MS, floorTo } from './timeseries.js'

/**
 * Bucket rows are counted per shard (the source partition) so that indexers of different
 * partitions never update the same row. Once a bucket is closed nobody but a late record writes
 * it, and reads of the past would read a row per bucket and shard where far fewer do: maintenance
 * moves a closed minute or hour bucket into its value's run (an array of the hour's minutes or of
 * the day's hours, see migration 004), and folds a closed day's shard rows into its shard-0 row.
 */
const FOLDED: readonly {
  width: TimeseriesBucket
  table: string
  /** The runs the closed buckets move into, and the width of one run; none for days. */
  runs?: { table: string; width: TimeseriesBucket }
  chunkMs: number
}[] = [
  // Chunks bound one transaction's rows and locks; the first pass over a large store has a month
  // of minutes to fold.
  {
    width: 'minute',
    table: 'detection_minutes',
    runs: { table: 'detection_minute_runs', width: 'hour' },
    chunkMs: BUCKET_MS.day,
  },
  {
    width: 'hour',
    table: 'detection_hours',
    runs: { table: 'detection_hour_runs', width: 'day' },
    chunkMs: 30 * BUCKET_MS.day,
  },
  { width: 'day', table: 'detection_days', chunkMs: 1000 * BUCKET_MS.day },
]

/** The runs each width's closed buckets are moved into (minutes by the hour, hours by the day). */
export const RUNS: Partial<Record<TimeseriesBucket, { table: string; width: TimeseriesBucket }>> =
  Object.fromEntries(FOLDED.flatMap((f) => (f.runs ? [[f.width, f.runs]] : [])))

/** A bucket is folded once it ended this long ago: records a few minutes late still find it open. */
export const FOLD_GRACE_MS = 5 * 60_000

/**
 * Locks the rows of `[from, to)` that no writer holds, in key order as the writers take them (so
 * it cannot deadlock with them, and never waits for one: rows a writer holds are left for the next
 * pass), deletes them and returns their counts. A writer that bumps a row being moved waits for
 * the move, finds the row gone and inserts it anew: the count is neither lost nor counted twice.
 */
const moved = (table: string, shards: string) => `
moved AS (
  DELETE FROM ${table} AS t USING (
    SELECT dim, start, value_key, shard FROM ${table}
    WHERE start >= $1 AND start < $2${shards}
    ORDER BY dim, start, value_key, shard
    FOR UPDATE SKIP LOCKED
  ) AS locked
  WHERE (t.dim, t.start, t.value_key, t.shard) = (locked.dim, locked.start, locked.value_key, locked.shard)
  RETURNING t.dim, t.start, t.value_key, t.total, t.suspicious
)`

/** Two runs added element by element. */
const addRuns = (a: string, b: string) =>
  `ARRAY(SELECT x + y FROM unnest(${a}, ${b}) WITH ORDINALITY AS u(x, y, i) ORDER BY i)`

/** Moves the buckets of `[from, to)`, every shard, into their values' runs, in one statement. */
const foldIntoRuns = (table: string, runs: string, width: TimeseriesBucket, runWidth: TimeseriesBucket) => {
  const step = BUCKET_MS[width] / 1000
  const length = BUCKET_MS[runWidth] / BUCKET_MS[width]
  return `
WITH ${moved(table, '')},
cells AS (
  SELECT dim, value_key, run, (extract(epoch FROM start - run) / ${step})::int + 1 AS i, total, suspicious
  FROM (SELECT *, date_bin('${step * length} seconds', start, timestamptz 'epoch') AS run FROM moved) AS m
)
INSERT INTO ${runs} (dim, start, value_key, totals, suspicious)
SELECT dim, run, value_key, detection_run(array_agg(i), array_agg(total), ${length}),
  detection_run(array_agg(i), array_agg(suspicious), ${length})
FROM cells
GROUP BY dim, run, value_key
ORDER BY dim, run, value_key
ON CONFLICT (dim, start, value_key) DO UPDATE SET
  totals = ${addRuns(`${runs}.totals`, 'excluded.totals')},
  suspicious = ${addRuns(`${runs}.suspicious`, 'excluded.suspicious')}`
}

/** Moves a closed day's shard rows into its shard-0 row, in one statement. */
const foldIntoShardZero = (table: string) => `
WITH ${moved(table, ' AND shard <> 0')}
INSERT INTO ${table} (dim, start, value_key, shard, total, suspicious)
SELECT dim, start, value_key, 0, sum(total), sum(suspicious) FROM moved
GROUP BY dim, start, value_key
ORDER BY dim, start, value_key
ON CONFLICT (dim, start, value_key, shard) DO UPDATE SET
  total = ${table}.total + excluded.total,
  suspicious = ${table}.suspicious + excluded.suspicious`

/**
 * Folds one width's closed buckets of `[from, to)`: minutes and hours into their runs (whose day
 * partitions it creates first), days into shard 0. Returns how many runs or shard-0 rows it wrote.
 */
export async function foldBuckets(
  client: PoolClient,
  width: TimeseriesBucket,
  from: Date,
  to: Date,
): Promise<number> {
  const { table, runs } = FOLDED.find((f) => f.width === width)!
  if (!runs) return (await client.query(foldIntoShardZero(table), [from, to])).rowCount ?? 0
  const days: Date[] = []
  for (let day = floorTo(from.getTime(), BUCKET_MS.day); day < to.getTime(); day += BUCKET_MS.day) {
    days.push(new Date(day))
  }
  await client.query('SELECT detections_day_partitions($1, $2::timestamptz[])', [runs.table, days])
  return (await client.query(foldIntoRuns(table, runs.table, width, runs.width), [from, to])).rowCount ?? 0
}

/**
 * Folds every width's closed buckets, a chunk per transaction. Minutes and hours leave their table
 * when folded, so whatever is left there below the closed ones is not folded yet, wherever it
 * starts: a record that arrived late, or a backlog replayed from the start of the topic, is folded
 * by the next pass like the rest. Days stay in their table (in shard 0): they fold from the mark
 * the last pass recorded, and a day's shard row written after its fold stays a row of its own
 * (reads add the shards, so it costs a row, not a wrong count).
 */
export async function foldClosedBuckets(client: PoolClient, now: Date): Promise<void> {
  const { rows } = await client.query<{ width: TimeseriesBucket; folded_to: Date }>(
    'SELECT width, folded_to FROM detection_folded',
  )
  const foldedTo = new Map(rows.map((row) => [row.width, row.folded_to.getTime()]))
  const record = (width: TimeseriesBucket, to: number) =>
    client.query(
      `INSERT INTO detection_folded (width, folded_to) VALUES ($1, $2)
       ON CONFLICT (width) DO UPDATE SET folded_to = excluded.folded_to`,
      [width, new Date(to)],
    )
  for (const { width, table, runs, chunkMs } of FOLDED) {
    const closed = Math.floor((now.getTime() - FOLD_GRACE_MS) / BUCKET_MS[width]) * BUCKET_MS[width]
    const mark = runs ? undefined : foldedTo.get(width)
    let from = mark ?? (await oldestStart(client, table)) ?? closed
    // Days with nothing to fold on a first pass: the mark is set all the same, or a late record
    // written before the next pass would be taken for the oldest day of a store never folded.
    if (!runs && mark === undefined && from >= closed) await record(width, closed)
    const emptied = new Set<number>()
    while (from < closed) {
      const to = Math.min(from + chunkMs, closed)
      await client.query('BEGIN')
      try {
        const moved = await foldBuckets(client, width, new Date(from), new Date(to))
        await record(width, to)
        await client.query('COMMIT')
        if (runs && moved > 0) {
          for (let day = floorTo(from, BUCKET_MS.day); day < to; day += BUCKET_MS.day) emptied.add(day)
        }
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
      from = to
    }
    // The rows moved out are dead row versions until a vacuum: every read of the open buckets
    // would step over them in the index (at 10M detections, a day's minutes are 200,000 of them),
    // and autovacuum comes when it will. VACUUM waits for no writer and blocks none.
    for (const day of emptied) {
      await client.query(`VACUUM ${partitionName(table, day)}`).catch((err: { code?: string }) => {
        // A day no longer there has nothing left to vacuum.
        if (err.code !== UNDEFINED_TABLE) throw err
      })
    }
  }
}

const UNDEFINED_TABLE = '42P01'
const partitionName = (table: string, day: number) =>
  `${table}_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`

/**
 * Where a table's buckets start: a scan, since no index leads with start. Minutes and hours hold
 * only what is not folded yet (open buckets, late records), so it stays small once folded; days
 * are asked on a first pass only.
 */
async function oldestStart(client: PoolClient, table: string): Promise<number | undefined> {
  const { rows } = await client.query<{ start: Date | null }>(`SELECT min(start) AS start FROM ${table}`)
  return rows[0]?.start?.getTime()
}
