import { randomUUID } from 'node:crypto'
import { Kafka, logLevel } from 'kafkajs'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ensureTopics } from '../src/index.js'

describe('ensureTopics', () => {
  it('creates what is missing once, even when two processes race, and reports real partition counts', async () => {
    const brokers = process.env.KAFKA_BROKERS
    if (!brokers)
      throw new Error('KAFKA_BROKERS is not set: the global setup should have started the services')
    const kafka = new Kafka({
      clientId: 'common-test',
      brokers: brokers.split(','),
      logLevel: logLevel.NOTHING,
    })
    const admins = [kafka.admin(), kafka.admin()]
    await Promise.all(admins.map((admin) => admin.connect()))
    const existing = `test-existing-${randomUUID()}`
    const fresh = `test-fresh-${randomUUID()}`
    onTestFinished(async () => {
      await admins[0]!.deleteTopics({ topics: [existing, fresh] }).catch(() => {})
      await Promise.all(admins.map((admin) => admin.disconnect()))
    })
    await admins[0]!.createTopics({ topics: [{ topic: existing, numPartitions: 1 }], waitForLeaders: true })

    const specs = [existing, fresh].map((topic) => ({ topic, numPartitions: 3, replicationFactor: 1 }))
    const results = await Promise.all(admins.map((admin) => ensureTopics(admin, specs)))
    for (const result of results) {
      expect(result.map(({ topic, partitions }) => ({ topic, partitions }))).toEqual([
        { topic: existing, partitions: 1 },
        { topic: fresh, partitions: 3 },
      ])
      expect(result[0]?.created).toBe(false)
    }
    // Exactly one of the racing callers created it; the other's TOPIC_ALREADY_EXISTS is success.
    expect(results.filter((result) => result[1]?.created)).toHaveLength(1)
  })
})
