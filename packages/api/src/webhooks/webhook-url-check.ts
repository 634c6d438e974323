import { errorCode } from '@intellisite/common'
import { checkWebhookUrl, type HostResolver } from '@intellisite/webhooks'
import { HttpError } from '../http/problem.js'

/** How long registration waits for DNS before refusing the URL as unresolvable. */
const RESOLVE_TIMEOUT_MS = 5_000

export interface WebhookUrlCheckOptions {
  /** Lets loopback/private targets and plain http through (local runs and tests only). */
  allowPrivate: boolean
  resolve: HostResolver
}

export type WebhookUrlCheck = (url: string) => Promise<void>

/**
 * The registration half of the SSRF guard: the URL's rules, then every address its host resolves
 * to. A refused URL answers WEBHOOK_URL_REFUSED; other errors pass through as they are.
 */
export function createWebhookUrlCheck({ allowPrivate, resolve }: WebhookUrlCheckOptions): WebhookUrlCheck {
  const resolveInTime = withResolveTimeout(resolve)
  return async (url) => {
    try {
      await checkWebhookUrl(url, { allowPrivate, resolve: resolveInTime })
    } catch (err) {
      const code = errorCode(err)
      if (code === 'INVALID_WEBHOOK_URL' || code === 'TARGET_REFUSED')
        throw new HttpError('WEBHOOK_URL_REFUSED', `The webhook URL is refused: ${(err as Error).message}.`)
      throw err
    }
  }
}

function withResolveTimeout(resolve: HostResolver): HostResolver {
  return (hostname) =>
    new Promise((done, fail) => {
      const timer = setTimeout(
        () => fail(Object.assign(new Error('DNS timed out'), { code: 'ETIMEOUT' })),
        RESOLVE_TIMEOUT_MS,
      )
      resolve(hostname)
        .then(done, fail)
        .finally(() => clearTimeout(timer))
    })
}
