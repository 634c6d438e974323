import { fileURLToPath } from 'node:url'
import { type AppliedMigration, migrateUnderLock } from '@intellisite/common'
import type { Pool } from 'pg'

const MIGRATIONS = fileURLToPath(new URL('../migrations/*.sql', import.meta.url))
/** Any constant works if every indexer and API replica uses it; distinct from the users' lock. */
const MIGRATION_LOCK = 0x1e7ede
/** Not `schema_version`: the API's users migrations may share the database and keep their own. */
export const DETECTIONS_SCHEMA_TABLE = 'detections_schema_version'

/** Brings the detections schema to the newest version; indexers and APIs may run it at once. */
export function migrateDetectionsSchema(pool: Pool): Promise<AppliedMigration[]> {
  return migrateUnderLock(pool, {
    migrationPattern: MIGRATIONS,
    schemaTable: DETECTIONS_SCHEMA_TABLE,
    lock: MIGRATION_LOCK,
  })
}
