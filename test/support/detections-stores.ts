// A detections store of its own for a test, on either backend: a fresh PostgreSQL database or
// MongoDB database (unique name), the repository on it, independent ways to look at what was
// stored, and the drop.
import { randomUUID } from 'node:crypto'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import {
  type DetectionDocument,
  type DetectionsBackend,
  type DetectionsRepository,
  openDetectionsStore,
} from '../../packages/detections-store/src/index.js'
import { requireEnv } from './env.js'
import { dropPostgresDatabase } from './postgres.js'

export const BACKENDS: readonly DetectionsBackend[] = ['postgres', 'mongodb']

export interface TestStore {
  backend: DetectionsBackend
  /** The store URL, optionally through another host:port (a proxy in front of the server). */
  url(via?: { host: string; port: number }): string
  repository: DetectionsRepository
  /** Ids of every stored detection, read straight from the table/collection (not the counters). */
  storedIds(): Promise<string[]>
  /** One stored detection in the model's shape, or null. */
  storedDocument(id: string): Promise<DetectionDocument | null>
  storedCount(): Promise<number>
  /** Closes the repository's connections (the store is gone for it); the data stays. */
  close(): Promise<void>
  /** Closes the repository's connections and drops the database. */
  drop(): Promise<void>
}

function withPath(base: string, name: string, via?: { host: string; port: number }): string {
  const url = new URL(base)
  url.pathname = `/${name}`
  if (via) {
    url.hostname = via.host
    url.port = String(via.port)
  }
  return url.toString()
}

export async function createTestStore(backend: DetectionsBackend, prefix = 'store'): Promise<TestStore> {
  const name = `${prefix}_${randomUUID().replaceAll('-', '')}`
  if (backend === 'postgres') {
    const base = requireEnv('DATABASE_URL')
    const admin = new pg.Client({ connectionString: base })
    await admin.connect()
    await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end())
    const store = openDetectionsStore(withPath(base, name))
    await store.repository.ensureIndexes()
    const reader = new pg.Pool({ connectionString: withPath(base, name), max: 2 })
    // An idle connection ended by the server (a drop, a restart) is not the test's failure.
    reader.on('error', () => {})
    return {
      backend,
      url: (via) => withPath(base, name, via),
      repository: store.repository,
      storedIds: async () =>
        (await reader.query<{ id: string }>('SELECT id FROM detections')).rows.map((r) => r.id),
      storedCount: async () =>
        Number((await reader.query<{ n: string }>('SELECT count(*) AS n FROM detections')).rows[0]?.n),
      storedDocument: async (id) => {
        const { rows } = await reader.query('SELECT * FROM detections WHERE id = $1', [id])
        const row = rows[0]
        if (!row) return null
        return {
          _id: row.id,
          year: row.year,
          make: row.make,
          model: row.model,
          category: row.category,
          makeKey: row.make_key,
          modelKey: row.model_key,
          categoryKey: row.category_key,
          categoryTokens: row.category_tokens,
          detectedAt: row.detected_at,
          suspicious: row.suspicious,
          source: {
            topic: row.source_topic,
            partition: row.source_partition,
            offset: Number(row.source_offset),
            timestamp: Number(row.source_timestamp),
          },
        }
      },
      close: () => store.close(),
      drop: async () => {
        await Promise.allSettled([store.close(), reader.end()])
        await dropPostgresDatabase(base, name)
      },
    }
  }
  const base = requireEnv('MONGO_URL')
  const store = openDetectionsStore(withPath(base, name))
  await store.repository.ensureIndexes()
  const reader = new MongoClient(base, { serverSelectionTimeoutMS: 5_000 })
  const detections = reader.db(name).collection<DetectionDocument>('detections')
  return {
    backend,
    url: (via) => withPath(base, name, via),
    repository: store.repository,
    storedIds: async () =>
      (await detections.find({}, { projection: { _id: 1 } }).toArray()).map((d) => d._id),
    storedCount: () => detections.countDocuments(),
    storedDocument: (id) => detections.findOne({ _id: id }),
    close: () => store.close(),
    drop: async () => {
      await reader
        .db(name)
        .dropDatabase()
        .catch(() => {})
      await Promise.allSettled([store.close(), reader.close()])
    },
  }
}
