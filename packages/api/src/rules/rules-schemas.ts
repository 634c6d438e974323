import {
  BUILTIN_RULE_NAME,
  isEmptyMatch,
  MAX_WATCHLIST_ENTRIES,
  RULE_SCOPES,
  ruleMatchSchema,
} from '@intellisite/alert-rules'
import { z } from 'zod'

export const DEFAULT_RULES_LIMIT = 50
export const MAX_RULES_LIMIT = 200
export const MAX_RULES_SKIP = 1_000_000
/** The largest `match` (three lists of 1,000 values) is about 600 KB of JSON: rule bodies may be this large. */
export const MAX_RULE_BODY_BYTES = 1024 * 1024
/** A watch list of 100,000 rows fits with room to spare; the changelog record is checked as well. */
export const MAX_WATCHLIST_CSV_BYTES = 16 * 1024 * 1024
export const WATCHLIST_CSV_HEADER = ['make', 'model', 'year_min', 'year_max'] as const

const scopeSchema = z
  .enum(RULE_SCOPES)
  .describe('`private`: its owner alone sees it and its alerts. `shared`: every user does; admins only')

/** As the rule model holds names: the limit counts the name as given, then it is trimmed. */
export const ruleNameSchema = z
  .string()
  .max(100)
  .trim()
  .min(1)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the character being refused
  .regex(/^[^\u0000]*[^\s\u0000][^\u0000]*$/, 'must not be blank or contain NUL characters')
  .describe(
    `1–100 characters, unique per owner case-insensitively; \`${BUILTIN_RULE_NAME}\` is the built-in rule's`,
  )

const matchDescription =
  'Every condition given must hold; within a list, any value may match. Makes, models and categories compare ' +
  'case-insensitively; a category matches any token of a detection category (split on `,`).'

export const ruleSchema = z
  .object({
    id: z.uuid(),
    version: z
      .number()
      .int()
      .min(1)
      .describe('Bumped by every change; the `ETag` of the rule is `"<version>"`'),
    name: z.string(),
    scope: scopeSchema,
    enabled: z.boolean(),
    watchlist: z.boolean().describe('Whether the rule matches through its entries (`/rules/{id}/entries`)'),
    match: ruleMatchSchema.describe(matchDescription),
    entryCount: z.number().int().min(0).max(MAX_WATCHLIST_ENTRIES),
    builtin: z.boolean().describe('The rule SUSPICIOUS_VEHICLE configures: read-only, shared'),
    owner: z
      .object({ id: z.uuid(), username: z.string() })
      .nullable()
      .describe('Who created it; null for the built-in rule'),
    createdAt: z.date().nullable().describe('Null for the built-in rule, which is configuration'),
    updatedAt: z.date().nullable().describe('Null for the built-in rule, which is configuration'),
  })
  .meta({
    id: 'Rule',
    examples: [
      {
        id: '3f0e6c52-8f4b-4b1e-9d9a-2b8c2e0f4a17',
        version: 2,
        name: 'Old Land Cruisers',
        scope: 'private',
        enabled: true,
        watchlist: false,
        match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }], year: { max: 2005 } },
        entryCount: 0,
        builtin: false,
        owner: { id: '0b7d2c44-5a7e-4d59-9a53-1f3e0b8f8c11', username: 'alice' },
        createdAt: '2026-12-05T10:00:00.000Z',
        updatedAt: '2026-12-05T10:05:00.000Z',
      },
    ],
  })
export type RuleView = z.infer<typeof ruleSchema>

export const rulesPageSchema = z
  .object({
    items: z.array(ruleSchema),
    total: z.number().int().min(0),
    skip: z.number().int().min(0),
    limit: z.number().int().min(1),
  })
  .meta({ id: 'RulesPage' })

export const listRulesQuerySchema = z.object({
  skip: z.coerce
    .number({ error: 'skip must be a number' })
    .int('skip must be an integer')
    .min(0, 'skip must be >= 0')
    .max(MAX_RULES_SKIP, `skip must be <= ${MAX_RULES_SKIP}`)
    .default(0)
    .describe('Rules to skip'),
  limit: z.coerce
    .number({ error: 'limit must be a number' })
    .int('limit must be an integer')
    .min(1, 'limit must be >= 1')
    .max(MAX_RULES_LIMIT, `limit must be <= ${MAX_RULES_LIMIT}`)
    .default(DEFAULT_RULES_LIMIT)
    .describe(`Page size, 1–${MAX_RULES_LIMIT} (default ${DEFAULT_RULES_LIMIT})`),
})

export const ruleParamsSchema = z.object({ id: z.uuid().describe('The rule id') })

export const createRuleBodySchema = z
  .strictObject({
    name: ruleNameSchema,
    scope: scopeSchema.default('private'),
    enabled: z.boolean().default(true),
    watchlist: z
      .boolean()
      .default(false)
      .describe('A watch list matches through the entries uploaded to `/rules/{id}/entries`'),
    match: ruleMatchSchema
      .optional()
      .describe(`${matchDescription} Required and non-empty unless the rule is a watch list.`),
  })
  .superRefine((body, ctx) => {
    if (!body.watchlist && (body.match === undefined || isEmptyMatch(body.match))) {
      ctx.addIssue({
        code: 'custom',
        path: ['match'],
        message: 'a rule that is not a watch list needs a non-empty match',
      })
    }
  })
  .meta({
    // The refinement above, in JSON Schema: a watch list, or a match with at least one condition.
    anyOf: [
      { required: ['watchlist'], properties: { watchlist: { const: true } } },
      { required: ['match'], properties: { match: { minProperties: 1 } } },
    ],
    examples: [
      {
        name: 'Old Land Cruisers',
        match: { model: [{ make: 'Toyota', model: 'Land Cruiser' }], year: { max: 2005 } },
      },
      { name: 'Stolen vehicles', watchlist: true },
    ],
  })

export const updateRuleBodySchema = z
  .strictObject({
    name: ruleNameSchema.optional(),
    enabled: z.boolean().optional(),
    match: ruleMatchSchema.optional().describe(`${matchDescription} Replaces the whole match.`),
    scope: scopeSchema.optional(),
  })
  .meta({ examples: [{ enabled: false }, { match: { make: ['Toyota', 'Lexus'] } }] })
export type RuleChanges = z.infer<typeof updateRuleBodySchema>

/** A watch list as CSV; decoded as strict UTF-8 by the route's content-type parser. */
export const watchlistCsvSchema = z
  .string()
  .describe(
    `\`make,model[,year_min,year_max]\` per row (RFC 4180 quoting, CRLF or LF), an optional header row ` +
      `\`${WATCHLIST_CSV_HEADER.join(',')}\`, at most ${MAX_WATCHLIST_ENTRIES} rows, UTF-8`,
  )
  .meta({
    id: 'WatchlistCsv',
    examples: ['make,model,year_min,year_max\r\nToyota,Land Cruiser,2000,2005\r\nJeep,Wrangler,,\r\n'],
  })
