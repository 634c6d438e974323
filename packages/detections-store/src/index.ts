export { type Alert, alertSchema, buildAlert } from './alert.js'
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
  createDetectionsRepository,
  type DetectionFilters,
  type DetectionsRepository,
  type InsertResult,
  InvalidCursorError,
  type ListQuery,
  type ListResult,
} from './detections-repository.js'
export {
  createStatsCounters,
  STATS_DIMENSIONS,
  type StatsCounters,
  type StatsDimension,
  type StatsItem,
  type StatsResult,
} from './stats-counters.js'
export { createSuspiciousRule, parseSuspiciousList, type SuspiciousRule } from './suspicious-rule.js'
