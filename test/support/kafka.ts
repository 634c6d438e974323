import { Kafka, logLevel } from 'kafkajs'
import { requireEnv } from './env.js'

/**
 * A kafkajs client for a test: the shared broker (KAFKA_BROKERS) unless `brokers` names another
 * (a test's private broker or cluster). TEST_KAFKA_LOG=1 shows kafkajs's own logs.
 */
export function testKafka(clientId = 'test', brokers = requireEnv('KAFKA_BROKERS')): Kafka {
  return new Kafka({
    clientId,
    brokers: brokers.split(','),
    logLevel: process.env.TEST_KAFKA_LOG ? logLevel.INFO : logLevel.NOTHING,
    retry: { initialRetryTime: 100, retries: 8 },
  })
}
