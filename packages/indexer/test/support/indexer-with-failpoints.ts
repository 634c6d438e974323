// The indexer process as main.ts runs it, plus a failpoint for crash tests:
// INDEXER_FAILPOINT=after-store:N or after-commit:N makes the process SIGKILL itself right after
// its Nth bulk write (before the transaction) or its Nth committed transaction. The failpoints
// wrap the store and the transactional producers the process is given; the indexer knows nothing
// of them.
import type { DetectionsRepository } from '@intellisite/detections-store'
import type { Kafka, Producer, Transaction } from 'kafkajs'
import { openIndexerConnections, runIndexer } from '../../src/indexer-process.js'

const spec = process.env.INDEXER_FAILPOINT ?? ''
const match = /^(after-store|after-commit):([1-9]\d*)$/.exec(spec)
if (spec !== '' && !match) {
  console.error(`INDEXER_FAILPOINT: expected after-store:N or after-commit:N, got ${spec}`)
  process.exit(2)
}
const point = match?.[1]
const count = Number(match?.[2] ?? 0)
let hits = 0
const hit = (at: string) => {
  if (at !== point || ++hits !== count) return
  console.error(`failpoint ${at}:${count} reached: SIGKILL`)
  process.kill(process.pid, 'SIGKILL')
}

/** The repository, with `after-store` hit once a bulk write is accepted. */
function watchStore(repository: DetectionsRepository): DetectionsRepository {
  return Object.assign(Object.create(repository) as DetectionsRepository, {
    insertBatch: async (...args: Parameters<DetectionsRepository['insertBatch']>) => {
      const result = await repository.insertBatch(...args)
      hit('after-store')
      return result
    },
  })
}

/** The producers' client, with `after-commit` hit once a transaction commits. */
function watchCommits(kafka: Kafka): Kafka {
  const watchTransaction = (transaction: Transaction): Transaction =>
    Object.assign(Object.create(transaction) as Transaction, {
      commit: async () => {
        await transaction.commit()
        hit('after-commit')
      },
    })
  const producer = (...args: Parameters<Kafka['producer']>): Producer => {
    const real = kafka.producer(...args)
    return Object.assign(Object.create(real) as Producer, {
      transaction: async () => watchTransaction(await real.transaction()),
    })
  }
  return Object.assign(Object.create(kafka) as Kafka, { producer })
}

await runIndexer({
  env: process.env,
  connect: (config, logger) => {
    const { store, kafka, producerKafka } = openIndexerConnections(config, logger)
    const watched = Object.assign(Object.create(store) as typeof store, {
      repository: watchStore(store.repository),
    })
    return { store: watched, kafka, producerKafka: watchCommits(producerKafka) }
  },
})
