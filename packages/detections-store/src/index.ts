export {
  type Alert,
  type AlertRule,
  alertJson,
  alertRuleSchema,
  alertSchema,
  buildAlert,
  RULE_SCOPES,
  type RuleScope,
} from './alert.js'
export { decodeCursor, encodeCursor } from './cursor.js'
export {
  categoryTokens,
  type Detection,
  type DetectionDocument,
  type DetectionMessage,
  detectionId,
  detectionMessageSchema,
  type KafkaCoordinates,
  normalizeKey,
  toDetection,
  toDetectionDocument,
} from './detection.js'
export {
  createMongoDetectionsRepository,
  DETECTIONS_COLLECTION,
} from './mongo-detections-repository.js'
export { createStatsCounters, type StatsCounters } from './mongo-stats-counters.js'
export {
  type DetectionsBackend,
  type DetectionsStore,
  detectionsBackendOf,
  type OpenDetectionsStoreOptions,
  openDetectionsStore,
} from './open-detections-store.js'
export { copyInto } from './postgres-copy.js'
export { createPostgresDetectionsRepository } from './postgres-detections-repository.js'
export {
  DETECTION_COLUMNS,
  stagingRows as detectionCopyRows,
  tokenRows as detectionTokenCopyRows,
} from './postgres-insert.js'
export { DETECTIONS_SCHEMA_TABLE, migrateDetectionsSchema } from './postgres-migrate.js'
export { timeseriesTotalsStatement } from './postgres-timeseries.js'
export {
  type DetectionFilters,
  type DetectionsRepository,
  type InsertResult,
  InvalidCursorError,
  KEEP_EVERYTHING,
  type ListQuery,
  type ListResult,
  type MaintenanceResult,
  type RetentionPolicy,
  STATS_DIMENSIONS,
  type StatsDimension,
  type StatsItem,
  type StatsResult,
  TIMESERIES_BUCKETS,
  type TimeseriesBucket,
  type TimeseriesGroup,
  type TimeseriesPoint,
  type TimeseriesQuery,
  type TimeseriesResult,
  TimeseriesWidthDroppedError,
} from './repository.js'
export {
  availableWidths,
  BUCKET_MS,
  ceilToBucket,
  checkedTimeseriesRange,
  DEFAULT_TIMESERIES_TOP,
  floorToBucket,
  MAX_TIMESERIES_BUCKETS,
  TimeseriesRangeError,
  timeseriesRange,
} from './timeseries.js'
