import type { PoolClient } from 'pg'
import type { TimeseriesBucket } from './repository.js'
import { BUCKET_MS } from './timeseries.js'

/**
 * Bucket rows are counted per shard (the source partition) so that indexers of different
 * partitions never update the same row. Once a bucket is closed nobody but a late record writes
 * it, and reads of the past would sum three rows where one would do: maintenance folds a closed
 * bucket's shard rows into its shard-0 row.
 */
const FOLDED: readonly { width: TimeseriesBucket; table: string; chunkMs: number }[] = [
  // Chunks bound one transaction's rows and locks; the first pass over a large store has a month
  // of minutes to fold.
  { width: 'minute', table: 'detection_minutes', chunkMs: BUCKET_MS.day },
  { width: 'hour', table: 'detection_hours', chunkMs: 30 * BUCKET_MS.day },
  { width: 'day', table: 'detection_days', chunkMs: 1000 * BUCKET_MS.day },
]
/** A bucket is folded once it ended this long ago: records a few minutes late still find it open. */
export const FOLD_GRACE_MS = 5 * 60_000

/**
 * Moves the shard rows of `[from, to)` into shard 0, in one statement. It never waits for a writer
 * (rows a writer holds are skipped, for the next pass) and takes row locks in key order, as the
 * writers do, so it cannot deadlock with them. A writer that bumps a row being moved waits for the
 * move, finds the row gone and inserts it anew: the count is neither lost nor counted twice.
 */
const fold = (table: string) => `
WITH moved AS (
  DELETE FROM ${table} AS t USING (
    SELECT dim, start, value_key, shard FROM ${table}
    WHERE start >= $1 AND start < $2 AND shard <> 0
    ORDER BY dim, start, value_key, shard
    FOR UPDATE SKIP LOCKED
  ) AS locked
  WHERE (t.dim, t.start, t.value_key, t.shard) = (locked.dim, locked.start, locked.value_key, locked.shard)
  RETURNING t.dim, t.start, t.value_key, t.total, t.suspicious
)
INSERT INTO ${table} (dim, start, value_key, shard, total, suspicious)
SELECT dim, start, value_key, 0, sum(total), sum(suspicious) FROM moved
GROUP BY dim, start, value_key
ORDER BY dim, start, value_key
ON CONFLICT (dim, start, value_key, shard) DO UPDATE SET
  total = ${table}.total + excluded.total,
  suspicious = ${table}.suspicious + excluded.suspicious`

/** Folds one width's shard rows of `[from, to)` into shard 0 (see {@link fold}). */
export async function foldShards(
  client: PoolClient,
  width: TimeseriesBucket,
  from: Date,
  to: Date,
): Promise<void> {
  const { table } = FOLDED.find((f) => f.width === width)!
  await client.query(fold(table), [from, to])
}

/**
 * Folds every width's buckets closed since the last pass, a chunk per transaction, recording how
 * far it got with each chunk. A late record written into a bucket already folded stays a shard
 * row of its own: reads sum the shards anyway, so it costs a row, not a wrong count.
 */
export async function foldClosedBuckets(client: PoolClient, now: Date): Promise<void> {
  const { rows } = await client.query<{ width: TimeseriesBucket; folded_to: Date }>(
    'SELECT width, folded_to FROM detection_folded',
  )
  const foldedTo = new Map(rows.map((row) => [row.width, row.folded_to.getTime()]))
  for (const { width, table, chunkMs } of FOLDED) {
    const closed = Math.floor((now.getTime() - FOLD_GRACE_MS) / BUCKET_MS[width]) * BUCKET_MS[width]
    let from = foldedTo.get(width) ?? (await oldestStart(client, table)) ?? closed
    while (from < closed) {
      const to = Math.min(from + chunkMs, closed)
      await client.query('BEGIN')
      try {
        await foldShards(client, width, new Date(from), new Date(to))
        await client.query(
          `INSERT INTO detection_folded (width, folded_to) VALUES ($1, $2)
           ON CONFLICT (width) DO UPDATE SET folded_to = excluded.folded_to`,
          [width, new Date(to)],
        )
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {})
        throw err
      }
      from = to
    }
  }
}

/** The first pass only: where a table's buckets start (a scan, since no index leads with start). */
async function oldestStart(client: PoolClient, table: string): Promise<number | undefined> {
  const { rows } = await client.query<{ start: Date | null }>(`SELECT min(start) AS start FROM ${table}`)
  return rows[0]?.start?.getTime()
}
