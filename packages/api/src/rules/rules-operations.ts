import type { FastifySchema } from 'fastify'
import { z } from 'zod'
import { problemResponses, problemSchema, rowsProblemSchema } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import {
  createRuleBodySchema,
  listRulesQuerySchema,
  ruleParamsSchema,
  ruleSchema,
  rulesPageSchema,
  updateRuleBodySchema,
  watchlistCsvSchema,
} from './rules-schemas.js'

// The schema of each rules route: what it takes and answers, as the OpenAPI document shows it.

const ifMatchHeaders = z.object({
  'if-match': z
    .string()
    .optional()
    .describe('Apply only if the rule is at this version: its `ETag` (`"<version>"`), or `*`'),
})

const notFound = problemSchema.describe('No such rule, or another user’s private rule (the same answer)')
const forbidden = problemSchema.describe('A shared rule, or sharing one, and the caller is not an admin')
const preconditionFailed = problemSchema.describe('`If-Match` does not name the rule’s current version')

export const listRules = {
  tags: ['rules'],
  operationId: 'listRules',
  summary: 'Rules the caller sees: the built-in rule, shared rules, then their own',
  description:
    'The built-in rule (SUSPICIOUS_VEHICLE) is always first; then shared rules and the caller’s private ' +
    'rules, each oldest first. Other users’ private rules are never listed.',
  security: SECURED,
  querystring: listRulesQuerySchema,
  response: { 200: rulesPageSchema, ...problemResponses(400, 401, 500) },
} satisfies FastifySchema

export const createRule = {
  tags: ['rules'],
  operationId: 'createRule',
  summary: 'Create a rule',
  description:
    'Private by default; `shared` (every user sees it and its alerts) is for admins. A rule that is not a ' +
    'watch list needs a non-empty `match`; a watch list gets its entries from `PUT /rules/{id}/entries`. ' +
    'Answers the rule with its `ETag` and `Location`. It reaches the indexers within a second.',
  security: SECURED,
  body: createRuleBodySchema,
  response: {
    201: ruleSchema,
    ...problemResponses(401, 413, 415, 500),
    400: problemSchema.describe('Invalid body, including a year range whose `min` is above its `max`'),
    403: problemSchema.describe('A shared rule, and the caller is not an admin'),
    409: problemSchema.describe(
      'The caller already has a rule of that name (`RULE_NAME_TAKEN`), or it is the built-in rule’s ' +
        '(`RULE_NAME_RESERVED`)',
    ),
  },
} satisfies FastifySchema

export const getRule = {
  tags: ['rules'],
  operationId: 'getRule',
  summary: 'One rule',
  description: 'With its version as `ETag`, for a later `If-Match`.',
  security: SECURED,
  params: ruleParamsSchema,
  response: { 200: ruleSchema, ...problemResponses(400, 401, 500), 404: notFound },
} satisfies FastifySchema

export const updateRule = {
  tags: ['rules'],
  operationId: 'updateRule',
  summary: 'Change a rule',
  description:
    'Changes the fields given (`match` is replaced whole) and bumps the version. With `If-Match`, only if ' +
    'the rule is still at that version (412 otherwise). Shared rules are changed by admins only; the ' +
    'built-in rule by configuration only (409).',
  security: SECURED,
  params: ruleParamsSchema,
  headers: ifMatchHeaders,
  body: updateRuleBodySchema,
  response: {
    200: ruleSchema,
    ...problemResponses(401, 413, 415, 500),
    400: problemSchema.describe(
      'Invalid body, including a year range whose `min` is above its `max`, or an empty `match` on a rule ' +
        'that is not a watch list',
    ),
    403: forbidden,
    404: notFound,
    409: problemSchema.describe(
      'The built-in rule (`BUILTIN_RULE`), a name taken (`RULE_NAME_TAKEN`) or reserved (`RULE_NAME_RESERVED`)',
    ),
    412: preconditionFailed,
  },
} satisfies FastifySchema

export const deleteRule = {
  tags: ['rules'],
  operationId: 'deleteRule',
  summary: 'Delete a rule',
  description:
    'With `If-Match`, only if the rule is still at that version. The indexers drop it within a second.',
  security: SECURED,
  params: ruleParamsSchema,
  headers: ifMatchHeaders,
  response: {
    204: z.null().describe('Deleted'),
    ...problemResponses(400, 401, 500),
    403: forbidden,
    404: notFound,
    409: problemSchema.describe('The built-in rule (`BUILTIN_RULE`)'),
    412: preconditionFailed,
  },
} satisfies FastifySchema

export const replaceRuleEntries = {
  tags: ['rules'],
  operationId: 'replaceRuleEntries',
  summary: 'Replace a watch list’s entries with a CSV file',
  description:
    'All rows or none: any invalid row answers 400 listing rows by line (the first 100) and changes ' +
    'nothing. Bumps the version; `If-Match` as for PATCH. At most 100,000 rows and 16 MiB.',
  security: SECURED,
  consumes: ['text/csv'],
  params: ruleParamsSchema,
  headers: ifMatchHeaders,
  body: watchlistCsvSchema,
  response: {
    200: ruleSchema,
    ...problemResponses(401, 413, 415, 500),
    400: rowsProblemSchema.describe(
      'Invalid rows (`INVALID_CSV`, listed by line), more than 100,000 rows (`TOO_MANY_ENTRIES`), or not ' +
        'UTF-8 (`INVALID_ENCODING`)',
    ),
    403: forbidden,
    404: notFound,
    409: problemSchema.describe(
      'The built-in rule (`BUILTIN_RULE`), or not a watch list (`NOT_A_WATCHLIST`)',
    ),
    412: preconditionFailed,
  },
} satisfies FastifySchema

export const getRuleEntries = {
  tags: ['rules'],
  operationId: 'getRuleEntries',
  summary: 'A watch list’s entries as CSV',
  description: 'With the header row, in upload order; what `PUT` takes back. `ETag` is the rule’s version.',
  security: SECURED,
  params: ruleParamsSchema,
  response: {
    200: watchlistCsvSchema,
    ...problemResponses(400, 401, 500),
    404: notFound,
    409: problemSchema.describe('Not a watch list (`NOT_A_WATCHLIST`), the built-in rule included'),
  },
} satisfies FastifySchema
