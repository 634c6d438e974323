export {
  type BaseEnv,
  baseEnvSchema,
  kafkaBrokersSchema,
  kafkaClientIdSchema,
  SERVICE_PORTS,
} from './config/base-env.js'
export {
  chooseDetectionsStore,
  type DetectionsStoreSource,
  describeDetectionsStore,
  redactUrlPassword,
  warnWhenMongoUrlChoseStore,
} from './config/detections-store.js'
export {
  booleanSchema,
  booleanVariable,
  durationSchema,
  hostSchema,
  logLevelSchema,
  parseDuration,
  portSchema,
} from './config/fields.js'
export {
  LOCAL_DATABASE_URL,
  LOCAL_DETECTIONS_STORE_URL,
  LOCAL_KAFKA_BROKERS,
} from './config/local-services.js'
export {
  ConfigError,
  describeIssues,
  parseEnvironment,
  presentVariables,
} from './config/parse-environment.js'
export { serializeError } from './error-serializer.js'
export { ERROR_CODES, type ErrorCode, errorCode, IntellisiteError, isErrorCode } from './errors.js'
export { isKafkaError, kafkaErrorType, retriableKafkaErrorType } from './kafka/errors.js'
export { createKafkaLogCreator } from './kafka/log-bridge.js'
export { type EnsuredTopic, ensureTopics, type TopicSpec, waitForLeaders } from './kafka/topics.js'
export { type AppliedMigration, type MigrationSet, migrateUnderLock } from './postgres/migrate.js'
export {
  createHealthServer,
  createServiceLogger,
  loadConfigOrExit,
  type MetricsSource,
  type ReadinessReport,
  runWorker,
  type Worker,
  type WorkerOptions,
} from './process/worker.js'
export {
  type CheckStatus,
  checkReadiness,
  type DetectionsCheck,
  READINESS_TIMEOUT_MS,
  type Readiness,
  type ReadinessCheck,
  runCheck,
} from './readiness.js'
export { backoffDelay, growingDelay, type RetryOptions, retry, sleep } from './retry.js'
