import type { FastifyReply } from 'fastify'
import { entityTag } from '../http/entity-tag.js'
import type { ZodRouteHandler } from '../http/route-handler.js'
import type * as operations from './rules-operations.js'
import type { RulesService } from './rules-service.js'

// One handler factory per route, named after its operationId: it takes the rules service and returns
// the route's handler. Visibility (404 for another user's private rule), roles and `If-Match` are
// the service's to check.

/** Sets the `ETag` a later `If-Match` names. */
function withTag(reply: FastifyReply, version: number) {
  return reply.header('etag', entityTag(version))
}

export function listRulesHandler(rules: RulesService): ZodRouteHandler<typeof operations.listRules> {
  return async (request) => rules.list(request.user.sub, request.query)
}

export function createRuleHandler(rules: RulesService): ZodRouteHandler<typeof operations.createRule> {
  return async (request, reply) => {
    const rule = await rules.create(request.user.sub, request.body)
    request.log.info({ ruleId: rule.id, scope: rule.scope }, 'rule created')
    return withTag(reply, rule.version).header('location', `/rules/${rule.id}`).code(201).send(rule)
  }
}

export function getRuleHandler(rules: RulesService): ZodRouteHandler<typeof operations.getRule> {
  return async (request, reply) => {
    const rule = await rules.get(request.user.sub, request.params.id)
    return withTag(reply, rule.version).send(rule)
  }
}

export function updateRuleHandler(rules: RulesService): ZodRouteHandler<typeof operations.updateRule> {
  return async (request, reply) => {
    const { id } = request.params
    const rule = await rules.update(request.user.sub, id, request.headers['if-match'], request.body)
    request.log.info({ ruleId: id, version: rule.version }, 'rule changed')
    return withTag(reply, rule.version).send(rule)
  }
}

export function deleteRuleHandler(rules: RulesService): ZodRouteHandler<typeof operations.deleteRule> {
  return async (request, reply) => {
    const { id } = request.params
    await rules.remove(request.user.sub, id, request.headers['if-match'])
    request.log.info({ ruleId: id }, 'rule deleted')
    return reply.code(204).send(null)
  }
}

export function replaceRuleEntriesHandler(
  rules: RulesService,
): ZodRouteHandler<typeof operations.replaceRuleEntries> {
  return async (request, reply) => {
    const { id } = request.params
    const rule = await rules.replaceEntries(request.user.sub, id, request.headers['if-match'], request.body)
    request.log.info({ ruleId: id, version: rule.version, entries: rule.entryCount }, 'watch list replaced')
    return withTag(reply, rule.version).send(rule)
  }
}

export function getRuleEntriesHandler(
  rules: RulesService,
): ZodRouteHandler<typeof operations.getRuleEntries> {
  return async (request, reply) => {
    const { csv, version } = await rules.entriesCsv(request.user.sub, request.params.id)
    return withTag(reply, version).type('text/csv; charset=utf-8').send(csv)
  }
}
