import { MongoClient } from 'mongodb'
import { createMongoDetectionsRepository } from './mongo-detections-repository.js'
import { watchHeartbeats } from './mongo-heartbeat-watch.js'
import type { DetectionsRepository } from './repository.js'

export interface MongoStoreOptions {
  /** Connect, server selection and monitoring handshake timeout. */
  connectTimeoutMs: number
  appName?: string
  logger?: { warn(object: object, message: string): void }
}

function mongoDatabaseName(url: string): string {
  const name = new URL(url).pathname.replace(/^\//, '')
  return name === '' ? 'intellisite' : decodeURIComponent(name)
}

/**
 * The MongoDB detections store on a client that is replaced when its server monitor has stopped
 * (see {@link watchHeartbeats}): a store that restarts must not leave the indexer retrying on a
 * client that will never select the server again.
 */
export function openMongoDetectionsStore(url: string, options: MongoStoreOptions) {
  function connect() {
    const client = new MongoClient(url, {
      serverSelectionTimeoutMS: options.connectTimeoutMs,
      // The driver's default (30 s) would also be how long a monitor may take to notice a server
      // that accepts no connection, and so how long a stopped monitor goes unnoticed.
      connectTimeoutMS: options.connectTimeoutMs,
      ...(options.appName && { appName: options.appName }),
    })
    const { connectTimeoutMS, heartbeatFrequencyMS } = client.options
    const monitor = watchHeartbeats(client, { connectTimeoutMS, heartbeatFrequencyMS })
    return { client, monitor, repository: createMongoDetectionsRepository(client.db(mongoDatabaseName(url))) }
  }

  let current = connect()

  /** Every operation runs on the current client; one that fails on a stalled client replaces it. */
  async function run<T>(operation: (repository: DetectionsRepository) => Promise<T>): Promise<T> {
    const used = current
    try {
      return await operation(used.repository)
    } catch (err) {
      if (used === current && used.monitor.stalled()) {
        current = connect()
        options.logger?.warn(
          { err },
          'the MongoDB client stopped monitoring its server; continuing on a new client',
        )
        used.client.close().catch(() => {})
      }
      throw err
    }
  }

  const repository: DetectionsRepository = {
    ensureIndexes: () => run((r) => r.ensureIndexes()),
    insertBatch: (documents) => run((r) => r.insertBatch(documents)),
    list: (query) => run((r) => r.list(query)),
    count: (filters) => run((r) => r.count(filters)),
    stats: (dimension) => run((r) => r.stats(dimension)),
    timeseries: (query) => run((r) => r.timeseries(query)),
    ping: () => run((r) => r.ping()),
    maintain: (policy, now) => run((r) => r.maintain(policy, now)),
  }
  return { repository, close: () => current.client.close() }
}
