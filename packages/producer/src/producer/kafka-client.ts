import { Kafka, logLevel as KafkaLogLevel, type LogEntry, Partitioners, type Producer } from 'kafkajs'
import type { Logger } from 'pino'

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [KafkaLogLevel.ERROR]: 'error',
  [KafkaLogLevel.WARN]: 'warn',
  [KafkaLogLevel.INFO]: 'info',
  [KafkaLogLevel.DEBUG]: 'debug',
}

export function createKafka(options: { clientId: string; brokers: string[]; log: Logger }): Kafka {
  const log = options.log.child({ component: 'kafkajs' })
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    // kafkajs is chatty at INFO (every connect and rebalance); its warnings and errors matter.
    logLevel: KafkaLogLevel.WARN,
    logCreator:
      () =>
      ({ level, log: { message, ...extra } }: LogEntry) => {
        log[levels[level] ?? 'info'](extra, message)
      },
  })
}

export function createProducer(kafka: Kafka): Producer {
  // The Java-compatible partitioner spreads keyless records over partitions like the challenge's
  // producer; naming it explicitly also silences kafkajs's v2 partitioner warning.
  return kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
}
