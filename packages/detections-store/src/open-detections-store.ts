import pg from 'pg'
import { openMongoDetectionsStore } from './mongo-detections-store.js'
import { createPostgresDetectionsRepository } from './postgres-detections-repository.js'
import type { DetectionsRepository } from './repository.js'

export type DetectionsBackend = 'postgres' | 'mongodb'

export interface DetectionsStore {
  repository: DetectionsRepository
  backend: DetectionsBackend
  close(): Promise<void>
}

/** What the store logs: a pino logger fits. */
export interface StoreLogger {
  warn(object: object, message: string): void
  info(object: object, message: string): void
}

export interface OpenDetectionsStoreOptions {
  logger?: StoreLogger
  /** Name reported to the server (MongoDB appName, PostgreSQL application_name). */
  appName?: string
  /** How long an operation waits for an unreachable server before it fails (and is retried). */
  connectTimeoutMs?: number
  /** PostgreSQL pool size. */
  maxConnections?: number
}

/** The backend a store URL selects: its scheme. */
export function detectionsBackendOf(url: string): DetectionsBackend {
  const scheme = new URL(url).protocol.replace(/:$/, '')
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres'
  if (scheme === 'mongodb' || scheme === 'mongodb+srv') return 'mongodb'
  throw new Error(`unsupported detections store URL scheme '${scheme}:' (postgres:// or mongodb://)`)
}

/**
 * Connects to the detections store a URL names (`postgres://` or `mongodb://`). Connections are
 * lazy: a server that is down at start-up is retried by each operation, as a later outage is.
 * The caller runs `repository.ensureIndexes()` when it may set the schema up.
 */
export function openDetectionsStore(url: string, options: OpenDetectionsStoreOptions = {}): DetectionsStore {
  const backend = detectionsBackendOf(url)
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000
  if (backend === 'mongodb') {
    return { backend, ...openMongoDetectionsStore(url, { ...options, connectTimeoutMs }) }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: connectTimeoutMs,
    // A connection cut mid-query (outage) must fail the query, not hang it until TCP gives up.
    query_timeout: 30_000,
    keepAlive: true,
    ...(options.appName && { application_name: options.appName }),
  })
  // An idle client whose server went away emits here; without a listener the process would crash.
  pool.on('error', (err) => options.logger?.warn({ err }, 'idle PostgreSQL connection failed'))
  const repository = createPostgresDetectionsRepository(pool)
  return {
    backend,
    repository: {
      ...repository,
      ensureIndexes: async () => {
        try {
          await repository.ensureIndexes()
        } catch (err) {
          if ((err as { code?: string }).code !== INVALID_CATALOG_NAME) throw err
          await createDatabase(url, options.logger)
          await repository.ensureIndexes()
        }
      },
    },
    close: () => pool.end(),
  }
}

const INVALID_CATALOG_NAME = '3D000'
const DUPLICATE_DATABASE = '42P04'
/** Two processes creating it at the same instant: the loser trips over pg_database's unique index. */
const UNIQUE_VIOLATION = '23505'

/**
 * The local default (`intellisite_detections` beside the users' database) is created on first use
 * when the role may, so a fresh local server needs no manual step. Deployments create theirs.
 */
async function createDatabase(url: string, logger: StoreLogger | undefined): Promise<void> {
  const target = new URL(url)
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''))
  const maintenance = new URL(url)
  maintenance.pathname = '/postgres'
  const client = new pg.Client({ connectionString: maintenance.toString() })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`)
    logger?.info({ database: name }, 'created the detections database')
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code !== DUPLICATE_DATABASE && code !== UNIQUE_VIOLATION) throw err
  } finally {
    await client.end()
  }
}
