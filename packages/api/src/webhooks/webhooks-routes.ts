import { errorCode } from '@intellisite/common'
import { checkWebhookUrl, generateSecret, type HostResolver } from '@intellisite/webhooks'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { HttpError, problemResponses, problemSchema } from '../http/problem.js'
import { SECURED } from '../plugins/swagger.js'
import type { WebhooksRepository } from './webhooks-repository.js'
import {
  createWebhookBodySchema,
  deliveriesPageSchema,
  deliveriesQuerySchema,
  deliveryDetailSchema,
  deliveryParamsSchema,
  pageQuerySchema,
  rotatedSecretSchema,
  scheduledDeliverySchema,
  updateWebhookBodySchema,
  webhookIdParamsSchema,
  webhookSchema,
  webhooksPageSchema,
  webhookWithSecretSchema,
} from './webhooks-schemas.js'

export interface WebhooksRoutesOptions {
  webhooks: WebhooksRepository
  /** Lets loopback/private targets and plain http through (local runs and tests only). */
  allowPrivate: boolean
  /** Host name resolution for the registration check; DNS unless given. */
  resolve: HostResolver
  secretOverlapMs: number
  maxPerUser: number
}

/** How long registration waits for DNS before refusing the URL as unresolvable. */
const RESOLVE_TIMEOUT_MS = 5_000

const notFound = () =>
  new HttpError('WEBHOOK_NOT_FOUND', 'No webhook with that id (webhooks are visible to their owner only).')
const deliveryNotFound = () =>
  new HttpError('DELIVERY_NOT_FOUND', 'No delivery with that id for this webhook.')
const disabled = (reason: string | null) =>
  new HttpError(
    'WEBHOOK_DISABLED',
    `The webhook is disabled${reason ? ` (${reason})` : ''}: enable it (PATCH enabled=true) first.`,
  )

export const webhooksRoutes: FastifyPluginAsyncZod<WebhooksRoutesOptions> = async (app, options) => {
  const { webhooks, allowPrivate } = options
  // Before the body is validated: an anonymous caller learns nothing about what a body should be.
  app.addHook('onRequest', app.authenticate)

  const resolve: HostResolver = (hostname) =>
    new Promise((done, fail) => {
      const timer = setTimeout(
        () => fail(Object.assign(new Error('DNS timed out'), { code: 'ETIMEOUT' })),
        RESOLVE_TIMEOUT_MS,
      )
      options
        .resolve(hostname)
        .then(done, fail)
        .finally(() => clearTimeout(timer))
    })

  /** The registration half of the SSRF guard: the URL's rules, then every address its host resolves to. */
  async function checkUrl(url: string): Promise<void> {
    try {
      await checkWebhookUrl(url, { allowPrivate, resolve })
    } catch (err) {
      const code = errorCode(err)
      if (code === 'INVALID_WEBHOOK_URL' || code === 'TARGET_REFUSED')
        throw new HttpError('WEBHOOK_URL_REFUSED', `The webhook URL is refused: ${(err as Error).message}.`)
      throw err
    }
  }

  const tags = ['webhooks']
  const security = SECURED
  const urlRefused = problemSchema.describe(
    'Invalid body, or a URL refused: not https, credentials or a fragment in it, or a host that does not resolve ' +
      'or resolves to a loopback, private, link-local, metadata or otherwise non-public address (the detail says which)',
  )

  app.post(
    '/webhooks',
    {
      schema: {
        tags,
        operationId: 'createWebhook',
        summary: 'Register a webhook endpoint',
        description:
          'Alerts the caller may see (optionally only those of some rules) are POSTed to `url` per the Standard ' +
          'Webhooks specification, signed with the returned `secret`, which is shown only in this response.',
        security,
        body: createWebhookBodySchema,
        response: {
          201: webhookWithSecretSchema,
          400: urlRefused,
          409: problemSchema.describe('The caller already has the most webhooks allowed'),
          ...problemResponses(401, 413, 415, 500),
        },
      },
    },
    async (request, reply) => {
      const { url, description, rules } = request.body
      await checkUrl(url)
      const secret = generateSecret()
      const created = await webhooks.create(
        request.user.sub,
        { url, description: description ?? '', rules: rules ?? null, secret },
        options.maxPerUser,
      )
      if (created === 'limit')
        throw new HttpError(
          'WEBHOOK_LIMIT_REACHED',
          `A user may have at most ${options.maxPerUser} webhooks.`,
        )
      request.log.info({ webhookId: created.id }, 'webhook created')
      return reply.code(201).send({ ...created, secret })
    },
  )

  app.get(
    '/webhooks',
    {
      schema: {
        tags,
        operationId: 'listWebhooks',
        summary: "List the caller's webhooks",
        description: 'Oldest first. Secrets are never listed.',
        security,
        querystring: pageQuerySchema,
        response: { 200: webhooksPageSchema, ...problemResponses(400, 401, 500) },
      },
    },
    async (request) => {
      const { skip, limit } = request.query
      const page = await webhooks.list(request.user.sub, { skip, limit })
      return { ...page, skip, limit }
    },
  )

  app.get(
    '/webhooks/:id',
    {
      schema: {
        tags,
        operationId: 'getWebhook',
        summary: 'Get a webhook',
        description: 'With why it is disabled, if it is, and its current run of failures.',
        security,
        params: webhookIdParamsSchema,
        response: { 200: webhookSchema, ...problemResponses(400, 401, 404, 500) },
      },
    },
    async (request) =>
      (await webhooks.get(request.user.sub, request.params.id)) ?? Promise.reject(notFound()),
  )

  app.patch(
    '/webhooks/:id',
    {
      schema: {
        tags,
        operationId: 'updateWebhook',
        summary: 'Change a webhook, or enable or disable it',
        description:
          'A new `url` is checked like at registration. `enabled: true` resumes deliveries and clears the ' +
          'disabled reason; deliveries pending while it was disabled go out then.',
        security,
        params: webhookIdParamsSchema,
        body: updateWebhookBodySchema,
        response: { 200: webhookSchema, 400: urlRefused, ...problemResponses(401, 404, 413, 415, 500) },
      },
    },
    async (request) => {
      if (request.body.url !== undefined) {
        // Not found wins over a refused URL: another user's id must not answer differently.
        if ((await webhooks.get(request.user.sub, request.params.id)) === null) throw notFound()
        await checkUrl(request.body.url)
      }
      return (
        (await webhooks.update(request.user.sub, request.params.id, request.body)) ??
        Promise.reject(notFound())
      )
    },
  )

  app.delete(
    '/webhooks/:id',
    {
      schema: {
        tags,
        operationId: 'deleteWebhook',
        summary: 'Delete a webhook and its delivery log',
        description: 'Pending deliveries are dropped with it.',
        security,
        params: webhookIdParamsSchema,
        response: { 204: z.null().describe('Deleted'), ...problemResponses(400, 401, 404, 500) },
      },
    },
    async (request, reply) => {
      if (!(await webhooks.remove(request.user.sub, request.params.id))) throw notFound()
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      schema: {
        tags,
        operationId: 'rotateWebhookSecret',
        summary: "Replace a webhook's secret",
        description:
          `The new secret signs from now on; the previous one keeps signing too (a second signature in ` +
          '`webhook-signature`) until `previousSecretExpiresAt`, so receivers can switch without a gap. ' +
          'Rotating again within the overlap drops the oldest secret at once.',
        security,
        params: webhookIdParamsSchema,
        response: { 200: rotatedSecretSchema, ...problemResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const secret = generateSecret()
      const rotated = await webhooks.rotateSecret(
        request.user.sub,
        request.params.id,
        secret,
        options.secretOverlapMs,
      )
      if (rotated === null) throw notFound()
      request.log.info({ webhookId: rotated.id }, 'webhook secret rotated')
      return { secret, previousSecretExpiresAt: rotated.previousSecretExpiresAt ?? new Date() }
    },
  )

  app.post(
    '/webhooks/:id/test',
    {
      schema: {
        tags,
        operationId: 'testWebhook',
        summary: 'Send a ping event to a webhook',
        description:
          'Queues a delivery of `{"type":"ping","timestamp":…,"data":{"webhookId":…}}`, sent by the notifier like ' +
          'any alert (same signature, retries and address checks). Follow it in the delivery log.',
        security,
        params: webhookIdParamsSchema,
        response: {
          202: scheduledDeliverySchema,
          409: problemSchema.describe('The webhook is disabled'),
          ...problemResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const webhook = await webhooks.get(request.user.sub, request.params.id)
      if (webhook === null) throw notFound()
      if (!webhook.enabled) throw disabled(webhook.disabledReason)
      const delivery = await webhooks.enqueuePing(request.user.sub, request.params.id)
      if (delivery === null) throw notFound()
      return reply.code(202).send({ deliveryId: delivery.id, nextAttemptAt: delivery.nextAttemptAt })
    },
  )

  app.get(
    '/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        operationId: 'listWebhookDeliveries',
        summary: "Page through a webhook's deliveries, newest first",
        description: 'Each with its attempts, the last status, latency and error, and when it is tried next.',
        security,
        params: webhookIdParamsSchema,
        querystring: deliveriesQuerySchema,
        response: { 200: deliveriesPageSchema, ...problemResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const { skip, limit, state } = request.query
      const page = await webhooks.listDeliveries(request.user.sub, request.params.id, { skip, limit, state })
      if (page === null) throw notFound()
      return { ...page, skip, limit }
    },
  )

  app.get(
    '/webhooks/:id/deliveries/:deliveryId',
    {
      schema: {
        tags,
        operationId: 'getWebhookDelivery',
        summary: 'Get a delivery with its body and every attempt',
        security,
        params: deliveryParamsSchema,
        response: { 200: deliveryDetailSchema, ...problemResponses(400, 401, 404, 500) },
      },
    },
    async (request) => {
      const { id, deliveryId } = request.params
      const delivery = await webhooks.getDelivery(request.user.sub, id, deliveryId)
      if (delivery !== null) return delivery
      throw (await webhooks.get(request.user.sub, id)) === null ? notFound() : deliveryNotFound()
    },
  )

  app.post(
    '/webhooks/:id/deliveries/:deliveryId/retry',
    {
      schema: {
        tags,
        operationId: 'retryWebhookDelivery',
        summary: 'Try a delivery again now',
        description:
          'Makes the delivery due now, whatever its state: a failed one gets one more attempt, a delivered one is ' +
          'sent again (same `webhook-id`, so receivers can tell).',
        security,
        params: deliveryParamsSchema,
        response: {
          202: scheduledDeliverySchema,
          409: problemSchema.describe('The webhook is disabled'),
          ...problemResponses(400, 401, 404, 500),
        },
      },
    },
    async (request, reply) => {
      const { id, deliveryId } = request.params
      const webhook = await webhooks.get(request.user.sub, id)
      if (webhook === null) throw notFound()
      if (!webhook.enabled) throw disabled(webhook.disabledReason)
      const delivery = await webhooks.retryDelivery(request.user.sub, id, deliveryId)
      if (delivery === null) throw deliveryNotFound()
      return reply.code(202).send({ deliveryId: delivery.id, nextAttemptAt: delivery.nextAttemptAt })
    },
  )
}
