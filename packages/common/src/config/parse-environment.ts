import type { z } from 'zod'
import { IntellisiteError } from '../errors.js'

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

/** One line per issue: the variable's name, then what is wrong with it. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
}

/** Parses the environment once with a service's schema; throws a ConfigError naming every bad variable. */
export function parseEnvironment<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.output<S> {
  const result = schema.safeParse(presentVariables(env))
  if (!result.success) throw new ConfigError(describeIssues(result.error))
  return result.data
}
