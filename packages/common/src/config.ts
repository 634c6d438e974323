import { z } from 'zod'
import { IntellisiteError } from './errors.js'

/** Every issue of a configuration, one per line: printed at start-up before exiting non-zero. */
export class ConfigError extends IntellisiteError<'INVALID_CONFIG'> {
  constructor(readonly issues: string[]) {
    super('INVALID_CONFIG', `invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join('\n')}`)
  }
}

/** An empty variable means "not set", as in compose files that pass `VAR=` or `${VAR:-}`. */
export function presentVariables(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== '',
    ),
  )
}

/** Parses the environment once with a service's schema; throws a ConfigError naming every bad variable. */
export function parseEnvironment<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  const result = schema.safeParse(presentVariables(env))
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`),
    )
  }
  return result.data
}

/** The broker the repository's local services run (scripts/services/services.sh). */
export const LOCAL_KAFKA_BROKERS = '127.0.0.1:29092'

/** `KAFKA_BROKERS`: comma-separated host:port pairs, blanks ignored, at least one. */
export const kafkaBrokersSchema = z
  .string()
  .default(LOCAL_KAFKA_BROKERS)
  .transform((value) =>
    value
      .split(',')
      .map((broker) => broker.trim())
      .filter((broker) => broker.length > 0),
  )
  .pipe(
    z.array(z.string().regex(/^[^\s:,]+:\d{1,5}$/, 'expected host:port')).min(1, 'at least one host:port'),
  )

/** PostgreSQL beside the users' database on the local services (created on first use). */
export const LOCAL_DETECTIONS_STORE_URL =
  'postgres://intellisite:intellisite@127.0.0.1:25432/intellisite_detections'

/** The variable that chose the detections store (`default`: none was set). */
export type DetectionsStoreSource = 'DETECTIONS_STORE_URL' | 'MONGO_URL' | 'default'

/**
 * DETECTIONS_STORE_URL names the detections store. MONGO_URL, its older name (compose still sets
 * it), counts only when DETECTIONS_STORE_URL is not set; the caller says so in a warning, since a
 * shell that exported the local services' MONGO_URL would otherwise move detections to MongoDB
 * without a word.
 */
export function chooseDetectionsStore(env: { DETECTIONS_STORE_URL?: string; MONGO_URL?: string }): {
  url: string
  source: DetectionsStoreSource
} {
  if (env.DETECTIONS_STORE_URL) return { url: env.DETECTIONS_STORE_URL, source: 'DETECTIONS_STORE_URL' }
  if (env.MONGO_URL) return { url: env.MONGO_URL, source: 'MONGO_URL' }
  return { url: LOCAL_DETECTIONS_STORE_URL, source: 'default' }
}

/** Log fields for a start banner: the store's URL without its password, and what chose it. */
export function describeDetectionsStore(store: { url: string; source: DetectionsStoreSource }): {
  url: string
  from: DetectionsStoreSource
} {
  return { url: redactUrlPassword(store.url), from: store.source }
}

/** One warning when MONGO_URL, not DETECTIONS_STORE_URL, chose the store. */
export function warnWhenMongoUrlChoseStore(
  logger: { warn(object: object, message: string): void },
  store: { url: string; source: DetectionsStoreSource },
): void {
  if (store.source !== 'MONGO_URL') return
  logger.warn(
    { store: redactUrlPassword(store.url) },
    'DETECTIONS_STORE_URL is not set: MONGO_URL chose the detections store (set DETECTIONS_STORE_URL to choose it)',
  )
}

/** A URL fit for a log line: its password (if any) masked. */
export function redactUrlPassword(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password === '') return url
    parsed.password = '***'
    return parsed.toString()
  } catch {
    return '[unparsable URL]'
  }
}

export const logLevelSchema = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info')

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `250ms`, `5s`, `5m`, `2h`, `1d` (or a bare number of milliseconds) in milliseconds; NaN when malformed. */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text)
  if (!match) return Number.NaN
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!)
}

/** A duration variable (see parseDuration), in milliseconds. */
export const durationSchema = z.string().transform((text, ctx) => {
  const ms = parseDuration(text)
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration such as 500ms, 5s, 5m, 2h or 1d' })
    return z.NEVER
  }
  return ms
})

/** `true`/`false` (or 1/0) variables. */
export const booleanSchema = z
  .enum(['true', 'false', '1', '0'])
  .default('false')
  .transform((value) => value === 'true' || value === '1')
