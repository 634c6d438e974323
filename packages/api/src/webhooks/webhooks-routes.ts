import type { HostResolver } from '@intellisite/webhooks'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { createWebhookUrlCheck } from './webhook-url-check.js'
import {
  createWebhookHandler,
  deleteWebhookHandler,
  getWebhookDeliveryHandler,
  getWebhookHandler,
  listWebhookDeliveriesHandler,
  listWebhooksHandler,
  retryWebhookDeliveryHandler,
  rotateWebhookSecretHandler,
  testWebhookHandler,
  updateWebhookHandler,
  type WebhooksHandlerDeps,
} from './webhooks-handlers.js'
import * as operations from './webhooks-operations.js'
import type { WebhooksRepository } from './webhooks-repository.js'

export interface WebhooksRoutesOptions {
  webhooks: WebhooksRepository
  /** Lets loopback/private targets and plain http through (local runs and tests only). */
  allowPrivate: boolean
  /** Host name resolution for the registration check; DNS unless given. */
  resolve: HostResolver
  secretOverlapMs: number
  maxPerUser: number
}

export const webhooksRoutes: FastifyPluginAsyncZod<WebhooksRoutesOptions> = async (app, options) => {
  const { webhooks, allowPrivate, resolve, secretOverlapMs, maxPerUser } = options
  const checkUrl = createWebhookUrlCheck({ allowPrivate, resolve })
  const deps: WebhooksHandlerDeps = { webhooks, checkUrl, maxPerUser, secretOverlapMs }
  // Before the body is validated: an anonymous caller learns nothing about what a body should be.
  app.addHook('onRequest', app.authenticate)

  app.post('/webhooks', { schema: operations.createWebhook }, createWebhookHandler(deps))
  app.get('/webhooks', { schema: operations.listWebhooks }, listWebhooksHandler(deps))
  app.get('/webhooks/:id', { schema: operations.getWebhook }, getWebhookHandler(deps))
  app.patch('/webhooks/:id', { schema: operations.updateWebhook }, updateWebhookHandler(deps))
  app.delete('/webhooks/:id', { schema: operations.deleteWebhook }, deleteWebhookHandler(deps))
  app.post(
    '/webhooks/:id/rotate-secret',
    { schema: operations.rotateWebhookSecret },
    rotateWebhookSecretHandler(deps),
  )
  app.post('/webhooks/:id/test', { schema: operations.testWebhook }, testWebhookHandler(deps))
  app.get(
    '/webhooks/:id/deliveries',
    { schema: operations.listWebhookDeliveries },
    listWebhookDeliveriesHandler(deps),
  )
  app.get(
    '/webhooks/:id/deliveries/:deliveryId',
    { schema: operations.getWebhookDelivery },
    getWebhookDeliveryHandler(deps),
  )
  app.post(
    '/webhooks/:id/deliveries/:deliveryId/retry',
    { schema: operations.retryWebhookDelivery },
    retryWebhookDeliveryHandler(deps),
  )
}
