import type { Pool } from 'pg'
import Postgrator from 'postgrator'

export interface AppliedMigration {
  version: number
  name: string
}

export interface MigrationSet {
  /** Glob of the versioned SQL files, e.g. `…/migrations/*.sql` (postgrator's naming). */
  migrationPattern: string
  /** The table that records this set's applied versions; one per set sharing a database. */
  schemaTable: string
  /** Advisory lock key: any constant, the same in every replica that runs this set. */
  lock: number
}

/**
 * Brings a set of migrations to its newest version. Several replicas may start at once: a
 * session-level advisory lock serialises them, so the second finds the work done instead of
 * failing halfway.
 */
export async function migrateUnderLock(pool: Pool, set: MigrationSet): Promise<AppliedMigration[]> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [set.lock])
    try {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db')
      const postgrator = new Postgrator({
        migrationPattern: set.migrationPattern,
        driver: 'pg',
        database: rows[0]?.db ?? '',
        schemaTable: set.schemaTable,
        execQuery: (query) => client.query(query),
      })
      const applied = await postgrator.migrate()
      return applied.map((m) => ({ version: m.version, name: m.name }))
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [set.lock])
    }
  } finally {
    client.release()
  }
}
