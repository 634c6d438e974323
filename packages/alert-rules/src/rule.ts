import { RULE_SCOPES } from '@intellisite/detections-store'
import { z } from 'zod'

export { RULE_SCOPES, type RuleScope } from '@intellisite/detections-store'

/** The id of the built-in shared rule that `SUSPICIOUS_VEHICLE` configures; the same everywhere, for ever. */
export const BUILTIN_RULE_ID = '00000000-0000-4000-8000-000000000001'
export const BUILTIN_RULE_NAME = 'SUSPICIOUS_VEHICLE'
/** The most entries one watch list holds. */
export const MAX_WATCHLIST_ENTRIES = 100_000
/** The most values one list of a `match` holds. */
export const MAX_MATCH_VALUES = 1_000

/** Vehicle years a detection can carry (the detection contract's bounds). */
export const MIN_YEAR = 1886
export const MAX_YEAR = 2200

/**
 * Text of a rule: at most `max` characters as given (the limit an OpenAPI document can state),
 * then trimmed and never blank. NUL is refused: PostgreSQL cannot store it in text or jsonb, and no
 * detection can carry it. The pattern says both in JSON Schema, so the API's document states them.
 */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .trim()
    .min(1)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the character being refused
    .regex(/^[^\u0000]*[^\s\u0000][^\u0000]*$/, 'must not be blank or contain NUL characters')
const year = z.number().int().min(MIN_YEAR).max(MAX_YEAR)

export const yearRangeSchema = z
  .strictObject({ min: year.optional(), max: year.optional() })
  .refine((range) => range.min !== undefined || range.max !== undefined, {
    message: 'give min, max or both',
  })
  .refine((range) => range.min === undefined || range.max === undefined || range.min <= range.max, {
    message: 'min must not be greater than max',
    path: ['min'],
  })
  // The first refinement, in words JSON Schema has: an OpenAPI document derived from this states it.
  .meta({ minProperties: 1 })
export type YearRange = z.infer<typeof yearRangeSchema>

/**
 * What a rule matches. Every condition given must hold; within a list, any value may match.
 * Makes, models and categories compare case-insensitively; a category matches when any token of
 * the detection's category (split on `,`) equals a listed one, as `SUSPICIOUS_VEHICLE` does.
 */
export const ruleMatchSchema = z.strictObject({
  category: z.array(text(200)).min(1).max(MAX_MATCH_VALUES).optional(),
  make: z.array(text(100)).min(1).max(MAX_MATCH_VALUES).optional(),
  model: z
    .array(z.strictObject({ make: text(100), model: text(100) }))
    .min(1)
    .max(MAX_MATCH_VALUES)
    .optional(),
  year: yearRangeSchema.optional(),
})
export type RuleMatch = z.infer<typeof ruleMatchSchema>

export function isEmptyMatch(match: RuleMatch): boolean {
  return (
    match.category === undefined &&
    match.make === undefined &&
    match.model === undefined &&
    match.year === undefined
  )
}

/** One watch-list entry: a make and model, optionally within model years. */
export const watchEntrySchema = z
  .strictObject({ make: text(100), model: text(100), yearMin: year.optional(), yearMax: year.optional() })
  .refine((e) => e.yearMin === undefined || e.yearMax === undefined || e.yearMin <= e.yearMax, {
    message: 'year_min must not be greater than year_max',
  })
export type WatchEntry = z.infer<typeof watchEntrySchema>

/**
 * A rule as every indexer holds it: one version of it, whole, watch list included. This is the
 * value of its record on the rules changelog topic.
 *
 * A rule that is a watch list matches through its entries (any entry, and its `match` as well
 * when one is given); with no entries it matches nothing. Any other rule needs a non-empty `match`.
 */
export const ruleSchema = z
  .object({
    id: z.string().min(1).max(64),
    version: z.number().int().positive(),
    name: text(100),
    /** The owner's user id; null for the built-in rule. */
    owner: z.string().min(1).max(64).nullable(),
    scope: z.enum(RULE_SCOPES),
    enabled: z.boolean(),
    watchlist: z.boolean(),
    match: ruleMatchSchema,
    entries: z.array(watchEntrySchema).max(MAX_WATCHLIST_ENTRIES),
  })
  .refine((rule) => rule.watchlist || !isEmptyMatch(rule.match), {
    message: 'a rule that is not a watch list needs a non-empty match',
    path: ['match'],
  })
export type Rule = z.infer<typeof ruleSchema>
