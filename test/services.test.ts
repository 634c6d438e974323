// Smoke tests proving the local services are real: each talks to the server through the same
// client library the product uses, and fails if that service is not running.
import { randomUUID } from 'node:crypto'
import { Kafka, logLevel } from 'kafkajs'
import { MongoClient } from 'mongodb'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { requireEnv } from './support/env.js'

describe('local services', () => {
  it('Kafka produces and consumes through a consumer group', async () => {
    const kafka = new Kafka({
      clientId: 'smoke',
      brokers: requireEnv('KAFKA_BROKERS').split(','),
      logLevel: logLevel.NOTHING,
      retry: { retries: 2 },
    })
    const topic = `smoke-${randomUUID()}`
    const admin = kafka.admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true })
      const producer = kafka.producer()
      await producer.connect()
      await producer.send({ topic, messages: [{ value: 'one' }, { value: 'two' }, { value: 'three' }] })
      await producer.disconnect()

      const groupId = `smoke-${randomUUID()}`
      const consumer = kafka.consumer({ groupId })
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      const received: string[] = []
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              received.push(message.value?.toString() ?? '')
              if (received.length === 3) resolve()
            },
          })
          .catch(reject)
      })
      await consumer.disconnect()
      expect(received.sort()).toEqual(['one', 'three', 'two'])

      const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
      const committed = offsets[0]?.partitions.reduce((sum, p) => sum + Number(p.offset), 0)
      expect(committed).toBe(3)
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => {})
      await admin.disconnect()
    }
  })

  it('the MongoDB-protocol server enforces unique indexes and aggregates', async () => {
    const client = new MongoClient(requireEnv('MONGO_URL'), { serverSelectionTimeoutMS: 5000 })
    await client.connect()
    const db = client.db(`smoke_${randomUUID().replaceAll('-', '')}`)
    try {
      const collection = db.collection<{ _id?: unknown; key: string; make: string }>('things')
      await collection.createIndex({ key: 1 }, { unique: true })
      await collection.insertMany([
        { key: 'a', make: 'Toyota' },
        { key: 'b', make: 'Toyota' },
        { key: 'c', make: 'Ford' },
      ])
      await expect(collection.insertOne({ key: 'a', make: 'Ford' })).rejects.toMatchObject({ code: 11000 })
      const counts = await collection
        .aggregate([{ $group: { _id: '$make', count: { $sum: 1 } } }, { $sort: { count: -1 } }])
        .toArray()
      expect(counts).toEqual([
        { _id: 'Toyota', count: 2 },
        { _id: 'Ford', count: 1 },
      ])
    } finally {
      await db.dropDatabase()
      await client.close()
    }
  })

  it('PostgreSQL stores and returns a row with password authentication', async () => {
    const client = new pg.Client({ connectionString: requireEnv('DATABASE_URL') })
    await client.connect()
    try {
      const table = `smoke_${randomUUID().replaceAll('-', '')}`
      await client.query(`CREATE TEMP TABLE ${table} (id serial PRIMARY KEY, name text NOT NULL)`)
      await client.query(`INSERT INTO ${table} (name) VALUES ($1)`, ['detector'])
      const { rows } = await client.query(`SELECT name FROM ${table}`)
      expect(rows).toEqual([{ name: 'detector' }])
    } finally {
      await client.end()
    }
  })
})
