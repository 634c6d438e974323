import { fileURLToPath } from 'node:url'
import type { Pool } from 'pg'
import Postgrator from 'postgrator'

const MIGRATIONS = fileURLToPath(new URL('../migrations/*.sql', import.meta.url))
/** Any constant works if every indexer and API replica uses it; distinct from the users' lock. */
const MIGRATION_LOCK = 0x1e7ede
/** Not `schema_version`: the API's users migrations may share the database and keep their own. */
export const DETECTIONS_SCHEMA_TABLE = 'detections_schema_version'

/**
 * Brings the detections schema to the newest version. Indexers and APIs may start at once: a
 * session-level advisory lock serialises them, so the second finds the work done.
 */
export async function migrateDetectionsSchema(pool: Pool): Promise<{ version: number; name: string }[]> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    try {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db')
      const postgrator = new Postgrator({
        migrationPattern: MIGRATIONS,
        driver: 'pg',
        database: rows[0]?.db ?? '',
        schemaTable: DETECTIONS_SCHEMA_TABLE,
        execQuery: (query) => client.query(query),
      })
      const applied = await postgrator.migrate()
      return applied.map((m) => ({ version: m.version, name: m.name }))
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK])
    }
  } finally {
    client.release()
  }
}
