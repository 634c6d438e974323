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

export const logLevelSchema = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info')
