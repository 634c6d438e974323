import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod, ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { entityTag } from '../http/entity-tag.js'
import { HttpError, problemResponses, problemSchema, rowsProblemSchema } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import {
  createRuleBodySchema,
  listRulesQuerySchema,
  MAX_RULE_BODY_BYTES,
  MAX_WATCHLIST_CSV_BYTES,
  ruleParamsSchema,
  ruleSchema,
  rulesPageSchema,
  updateRuleBodySchema,
  watchlistCsvSchema,
} from './rules-schemas.js'
import type { RulesService } from './rules-service.js'

export interface RulesRoutesOptions {
  rules: RulesService
}

const ifMatchHeaders = z.object({
  'if-match': z
    .string()
    .optional()
    .describe('Apply only if the rule is at this version: its `ETag` (`"<version>"`), or `*`'),
})

const notFound = problemSchema.describe('No such rule, or another user’s private rule (the same answer)')
const forbidden = problemSchema.describe('A shared rule, or sharing one, and the caller is not an admin')
const preconditionFailed = problemSchema.describe('`If-Match` does not name the rule’s current version')

function withTag(reply: FastifyReply, version: number) {
  return reply.header('etag', entityTag(version))
}

/** Decodes a CSV body as UTF-8, refusing anything else rather than guessing. */
function decodeUtf8(body: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body)
  } catch {
    throw new HttpError(
      'INVALID_ENCODING',
      'The CSV is not valid UTF-8: save it as UTF-8 and upload it again.',
    )
  }
}

export const rulesRoutes: FastifyPluginAsyncZod<RulesRoutesOptions> = async (app, { rules }) => {
  // Before the body is read: a CSV upload of up to 16 MiB is parsed for authenticated callers only.
  app.addHook('onRequest', app.authenticate)

  app.get(
    '/rules',
    {
      schema: {
        tags: ['rules'],
        operationId: 'listRules',
        summary: 'Rules the caller sees: the built-in rule, shared rules, then their own',
        description:
          'The built-in rule (SUSPICIOUS_VEHICLE) is always first; then shared rules and the caller’s private ' +
          'rules, each oldest first. Other users’ private rules are never listed.',
        security: SECURED,
        querystring: listRulesQuerySchema,
        response: { 200: rulesPageSchema, ...problemResponses(400, 401, 500) },
      },
    },
    async (request) => rules.list(request.user.sub, request.query),
  )

  app.post(
    '/rules',
    {
      bodyLimit: MAX_RULE_BODY_BYTES,
      schema: {
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
      },
    },
    async (request, reply) => {
      const rule = await rules.create(request.user.sub, request.body)
      request.log.info({ ruleId: rule.id, scope: rule.scope }, 'rule created')
      return withTag(reply, rule.version).header('location', `/rules/${rule.id}`).code(201).send(rule)
    },
  )

  app.get(
    '/rules/:id',
    {
      schema: {
        tags: ['rules'],
        operationId: 'getRule',
        summary: 'One rule',
        description: 'With its version as `ETag`, for a later `If-Match`.',
        security: SECURED,
        params: ruleParamsSchema,
        response: { 200: ruleSchema, ...problemResponses(400, 401, 500), 404: notFound },
      },
    },
    async (request, reply) => {
      const rule = await rules.get(request.user.sub, request.params.id)
      return withTag(reply, rule.version).send(rule)
    },
  )

  app.patch(
    '/rules/:id',
    {
      bodyLimit: MAX_RULE_BODY_BYTES,
      schema: {
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
      },
    },
    async (request, reply) => {
      const { id } = request.params
      const rule = await rules.update(request.user.sub, id, request.headers['if-match'], request.body)
      request.log.info({ ruleId: id, version: rule.version }, 'rule changed')
      return withTag(reply, rule.version).send(rule)
    },
  )

  app.delete(
    '/rules/:id',
    {
      schema: {
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
      },
    },
    async (request, reply) => {
      const { id } = request.params
      await rules.remove(request.user.sub, id, request.headers['if-match'])
      request.log.info({ ruleId: id }, 'rule deleted')
      return reply.code(204).send(null)
    },
  )

  // The watch-list routes take and give CSV only: their own parsers, and no JSON.
  await app.register(async (instance) => {
    const csv = instance.withTypeProvider<ZodTypeProvider>()
    csv.removeAllContentTypeParsers()
    csv.addContentTypeParser(
      'text/csv',
      { parseAs: 'buffer', bodyLimit: MAX_WATCHLIST_CSV_BYTES },
      (_request, body, done) => {
        try {
          done(null, decodeUtf8(body as Buffer))
        } catch (err) {
          done(err as Error, undefined)
        }
      },
    )

    csv.put(
      '/rules/:id/entries',
      {
        bodyLimit: MAX_WATCHLIST_CSV_BYTES,
        schema: {
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
        },
      },
      async (request, reply) => {
        const { id } = request.params
        const rule = await rules.replaceEntries(
          request.user.sub,
          id,
          request.headers['if-match'],
          request.body,
        )
        request.log.info(
          { ruleId: id, version: rule.version, entries: rule.entryCount },
          'watch list replaced',
        )
        return withTag(reply, rule.version).send(rule)
      },
    )

    csv.get(
      '/rules/:id/entries',
      {
        schema: {
          tags: ['rules'],
          operationId: 'getRuleEntries',
          summary: 'A watch list’s entries as CSV',
          description:
            'With the header row, in upload order; what `PUT` takes back. `ETag` is the rule’s version.',
          security: SECURED,
          params: ruleParamsSchema,
          response: {
            200: watchlistCsvSchema,
            ...problemResponses(400, 401, 500),
            404: notFound,
            409: problemSchema.describe('Not a watch list (`NOT_A_WATCHLIST`), the built-in rule included'),
          },
        },
      },
      async (request, reply) => {
        const { csv: text, version } = await rules.entriesCsv(request.user.sub, request.params.id)
        return withTag(reply, version).type('text/csv; charset=utf-8').send(text)
      },
    )
  })
}
