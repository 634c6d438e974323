import type { FastifyBodyParser } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { HttpError } from '../http/problem.js'
import {
  createRuleHandler,
  deleteRuleHandler,
  getRuleEntriesHandler,
  getRuleHandler,
  listRulesHandler,
  replaceRuleEntriesHandler,
  updateRuleHandler,
} from './rules-handlers.js'
import * as operations from './rules-operations.js'
import { MAX_RULE_BODY_BYTES, MAX_WATCHLIST_CSV_BYTES } from './rules-schemas.js'
import type { RulesService } from './rules-service.js'

export interface RulesRoutesOptions {
  rules: RulesService
}

export const rulesRoutes: FastifyPluginAsyncZod<RulesRoutesOptions> = async (app, { rules }) => {
  // Before the body is read: a CSV upload of up to 16 MiB is parsed for authenticated callers only.
  app.addHook('onRequest', app.authenticate)

  app.get('/rules', { schema: operations.listRules }, listRulesHandler(rules))
  app.post(
    '/rules',
    { bodyLimit: MAX_RULE_BODY_BYTES, schema: operations.createRule },
    createRuleHandler(rules),
  )
  app.get('/rules/:id', { schema: operations.getRule }, getRuleHandler(rules))
  app.patch(
    '/rules/:id',
    { bodyLimit: MAX_RULE_BODY_BYTES, schema: operations.updateRule },
    updateRuleHandler(rules),
  )
  app.delete('/rules/:id', { schema: operations.deleteRule }, deleteRuleHandler(rules))
  await app.register(watchlistEntriesRoutes, { rules })
}

/** The watch-list routes take and give CSV only: their own parser, and no JSON. */
const watchlistEntriesRoutes: FastifyPluginAsyncZod<RulesRoutesOptions> = async (app, { rules }) => {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    'text/csv',
    { parseAs: 'buffer', bodyLimit: MAX_WATCHLIST_CSV_BYTES },
    parseCsvBody,
  )

  app.put(
    '/rules/:id/entries',
    { bodyLimit: MAX_WATCHLIST_CSV_BYTES, schema: operations.replaceRuleEntries },
    replaceRuleEntriesHandler(rules),
  )
  app.get('/rules/:id/entries', { schema: operations.getRuleEntries }, getRuleEntriesHandler(rules))
}

const parseCsvBody: FastifyBodyParser<Buffer> = (_request, body, done) => {
  try {
    done(null, decodeUtf8(body))
  } catch (err) {
    done(err as Error, undefined)
  }
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
