import { z } from 'zod'

// Parsers of single variables, for the shared base (base-env.ts) and the services' own variables.

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

const TRUE_WORDS = ['true', '1', 'yes', 'on']
const FALSE_WORDS = ['false', '0', 'no', 'off']

/** A switch: `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`, in any case; `fallback` when unset. */
export function booleanVariable(fallback: boolean) {
  return z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined) return fallback
      const word = value.trim().toLowerCase()
      if (TRUE_WORDS.includes(word)) return true
      if (FALSE_WORDS.includes(word)) return false
      ctx.addIssue({ code: 'custom', message: `expected true or false, got "${value}"` })
      return z.NEVER
    })
}

/** A switch that is off unless set (see booleanVariable). */
export const booleanSchema = booleanVariable(false)

/** A TCP port; 0 asks the system for a free one (tests). */
export const portSchema = z.coerce.number().int().min(0).max(65_535)

/** The interface a service listens on: every interface, which is what a container needs. */
export const hostSchema = z.string().min(1).default('0.0.0.0')
