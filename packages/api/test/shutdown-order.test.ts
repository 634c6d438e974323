// The app as main.ts builds it, opening every resource itself on real PostgreSQL and Kafka, closed
// as close-with-grace closes it (app.close()) while a client holds an alerts stream open. Only the
// Kafka client is handed in, so that what the app makes from it can be watched; each close is
// recorded on the real object, when it begins and when it has finished.
import { randomUUID } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { finished } from 'node:stream/promises'
import type { DetectionsStore } from '@intellisite/detections-store'
import { describe, expect, it } from 'vitest'
import { createTestStore } from '../../../test/support/detections-stores.js'
import { buildApp } from '../src/app.js'
import { createLogger } from '../src/logger.js'
import { deleteTopicLater, metricValue, PARTITIONS, testKafka, waitFor } from './alerts/helpers.js'
import { createPostgresDatabase, testConfig } from './helper.js'

/** Replaces `target[method]` with the real method between two entries in `order`. */
function recordClose<T extends object>(order: string[], target: T, method: keyof T, step: string): void {
  const original = (target[method] as (...args: unknown[]) => Promise<unknown>).bind(target)
  Object.assign(target, {
    [method]: async (...args: unknown[]) => {
      order.push(`${step}: closing`)
      const result = await original(...args)
      order.push(`${step}: closed`)
      return result
    },
  })
}

describe('shutdown', () => {
  it('ends streams, then stops the alerts consumer, the rules publisher, the store and the pool, in that order', async () => {
    const database = await createPostgresDatabase()
    const detections = await createTestStore('postgres', 'api_test')
    const alertsTopic = `alerts-test-${randomUUID()}`
    const rulesTopic = `rules-test-${randomUUID()}`
    await deleteTopicLater(alertsTopic)
    await deleteTopicLater(rulesTopic)
    const config = testConfig({
      DATABASE_URL: database.url,
      DETECTIONS_STORE_URL: detections.url(),
      ALERTS_TOPIC: alertsTopic,
      ALERTS_GROUP_PREFIX: `alerts-test-${randomUUID()}`,
      TOPIC_PARTITIONS: String(PARTITIONS),
      ALERT_RULES_TOPIC: rulesTopic,
    })

    const order: string[] = []
    let closing = false
    let streamsOpenWhenConsumerStopped: number | undefined
    const kafka = testKafka(`api-test-${randomUUID()}`)
    const makeConsumer = kafka.consumer.bind(kafka)
    kafka.consumer = (options) => {
      const consumer = makeConsumer(options)
      const disconnect = consumer.disconnect.bind(consumer)
      consumer.disconnect = async () => {
        if (closing)
          streamsOpenWhenConsumerStopped ??= await metricValue(app.metrics, 'alerts_sse_clients_connected')
        await disconnect()
      }
      recordClose(order, consumer, 'disconnect', 'alerts consumer')
      return consumer
    }
    const makeProducer = kafka.producer.bind(kafka)
    kafka.producer = (options) => {
      const producer = makeProducer(options)
      recordClose(order, producer, 'disconnect', 'rules publisher')
      return producer
    }

    const app = await buildApp({ config, kafka, logger: createLogger('warn', { write: () => {} }) })
    let closed = false
    try {
      await app.listen({ host: '127.0.0.1', port: 0 })
      const { port } = app.server.address() as AddressInfo
      const credentials = { username: `user-${randomUUID().slice(0, 8)}`, password: `pw-${randomUUID()}` }
      expect((await app.inject({ method: 'POST', url: '/users', payload: credentials })).statusCode).toBe(201)
      const login = await app.inject({ method: 'POST', url: '/auth/token', payload: credentials })
      const token = login.json<{ access_token: string }>().access_token

      const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
        http
          .get(`http://127.0.0.1:${port}/alerts`, { headers: { authorization: `Bearer ${token}` } }, resolve)
          .on('error', reject)
      })
      expect(stream.statusCode).toBe(200)
      stream.resume()
      await waitFor(async () => (await metricValue(app.metrics, 'alerts_sse_clients_connected')) === 1, {
        what: 'the stream counted',
      })

      const store = app.detectionsStore as DetectionsStore
      recordClose(order, store, 'close', 'detections store')
      recordClose(order, app.pool, 'end', 'pool')
      // Only what closing does: the start-up's own disconnects (none expected) are not the order.
      order.length = 0
      closing = true
      await app.close()
      closed = true

      expect(order).toEqual([
        'alerts consumer: closing',
        'alerts consumer: closed',
        'rules publisher: closing',
        'rules publisher: closed',
        'detections store: closing',
        'detections store: closed',
        'pool: closing',
        'pool: closed',
      ])
      expect(streamsOpenWhenConsumerStopped).toBe(0)
      // The server ended the stream properly (the client resumes elsewhere), not by a reset.
      await finished(stream)
      expect(stream.complete).toBe(true)
      expect(app.pool.ended).toBe(true)
    } finally {
      if (!closed) await app.close()
      await detections.drop()
      await database.drop()
    }
  })
})
