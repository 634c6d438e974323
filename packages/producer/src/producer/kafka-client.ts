import { createKafkaLogCreator } from '@intellisite/common'
import { Kafka, logLevel as KafkaLogLevel, Partitioners, type Producer } from 'kafkajs'
import type { Logger } from 'pino'

export function createKafka(options: { clientId: string; brokers: string[]; log: Logger }): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    // kafkajs is chatty at INFO (every connect and rebalance); its warnings and errors matter.
    logLevel: KafkaLogLevel.WARN,
    logCreator: createKafkaLogCreator(options.log),
  })
}

export function createProducer(kafka: Kafka): Producer {
  // The Java-compatible partitioner spreads keyless records over partitions like the challenge's
  // producer; naming it explicitly also silences kafkajs's v2 partitioner warning.
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
}
