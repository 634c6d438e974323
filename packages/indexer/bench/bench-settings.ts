import { type IndexerConfig, loadConfig } from '../src/config.js'

/**
 * What the indexer process would load for a benchmark's own topics and group, one worker per
 * partition; the environment's defaults otherwise, so the benchmark measures the shipped settings.
 */
export function benchSettings(
  topics: { detections: string; alerts: string; dlq: string; rules: string },
  groupId: string,
  partitions: number,
): IndexerConfig {
  return loadConfig({
    DETECTIONS_TOPIC: topics.detections,
    ALERTS_TOPIC: topics.alerts,
    DLQ_TOPIC: topics.dlq,
    ALERT_RULES_TOPIC: topics.rules,
    TOPIC_PARTITIONS: String(partitions),
    INDEXER_GROUP_ID: groupId,
    INDEXER_CONCURRENCY: String(partitions),
    INDEXER_STORE_RETRY_MAX_MS: '5000',
  })
}
