// The names one end-to-end run uses on the shared services (topics, consumer groups, databases),
// all derived from one id so that they cannot collide with another run's and are removed together.
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import { requireEnv } from './env.js'
import { testKafka } from './kafka.js'
import { dropPostgresDatabase } from './postgres.js'

/** The service URL (postgres://… or mongodb://…) with another database in its path. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

export interface StackScope {
  /** Letters and digits only: usable as a topic prefix, group prefix and database name. */
  readonly id: string
  readonly topics: { detections: string; alerts: string; dlq: string; rules: string }
  /** Points the pipeline's processes at the scope's topics and consumer groups. */
  readonly env: Record<string, string>
  /** Creates the PostgreSQL database `id` + `suffix` (dropped by `cleanup`) and returns its URL. */
  createDatabase(suffix?: string): Promise<string>
  /** `DATABASE_URL` or `MONGO_URL` naming the database `id` + `suffix`. */
  databaseUrl(variable: 'DATABASE_URL' | 'MONGO_URL', suffix?: string): string
  /** Deletes the topics, every consumer group named after the id, and the databases. */
  cleanup(): Promise<void>
}

export function createStackScope(prefix: string): StackScope {
  const id = `${prefix}${randomUUID().replaceAll('-', '').slice(0, 12)}`
  const topics = {
    detections: `${id}.detections`,
    alerts: `${id}.alerts`,
    dlq: `${id}.dlq`,
    rules: `${id}.rules`,
  }
  const postgresDatabases = new Set<string>()
  const mongoDatabases = new Set<string>()

  const databaseUrl = (variable: 'DATABASE_URL' | 'MONGO_URL', suffix = '') => {
    const name = `${id}${suffix}`
    ;(variable === 'MONGO_URL' ? mongoDatabases : postgresDatabases).add(name)
    return withDatabase(requireEnv(variable), name)
  }

  return {
    id,
    topics,
    env: {
      DETECTIONS_TOPIC: topics.detections,
      ALERTS_TOPIC: topics.alerts,
      DLQ_TOPIC: topics.dlq,
      ALERT_RULES_TOPIC: topics.rules,
      INDEXER_GROUP_ID: id,
      NOTIFIER_GROUP_ID: `${id}-notifier`,
      ALERTS_GROUP_PREFIX: id,
    },
    databaseUrl,
    async createDatabase(suffix = '') {
      const url = databaseUrl('DATABASE_URL', suffix)
      const admin = new pg.Client({ connectionString: requireEnv('DATABASE_URL') })
      await admin.connect()
      await admin.query(`CREATE DATABASE ${id}${suffix}`).finally(() => admin.end())
      return url
    },
    async cleanup() {
      const admin = testKafka(id).admin()
      await admin.connect()
      try {
        const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(id))
        await admin.deleteGroups(groups).catch(() => {})
        const existing = new Set(await admin.listTopics())
        await admin
          .deleteTopics({ topics: Object.values(topics).filter((t) => existing.has(t)) })
          .catch(() => {})
      } finally {
        await admin.disconnect()
      }
      if (mongoDatabases.size > 0) {
        const mongo = new MongoClient(requireEnv('MONGO_URL'))
        await mongo.connect()
        for (const name of mongoDatabases)
          await mongo
            .db(name)
            .dropDatabase()
            .catch(() => {})
        await mongo.close()
      }
      if (postgresDatabases.size > 0) {
        for (const name of postgresDatabases) await dropPostgresDatabase(requireEnv('DATABASE_URL'), name)
      }
    },
  }
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
export async function stopChild(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await Promise.race([exited, sleep(graceMs)])
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}
