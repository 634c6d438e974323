import { IntellisiteError } from '@intellisite/common'
import { type GuardOptions, resolveAllowed, TargetRefusedError } from './address-guard.js'
import { literalAddress } from './address-policy.js'

export const MAX_WEBHOOK_URL_LENGTH = 2048

/** A URL that can never be a webhook target, whatever DNS says. */
export class InvalidWebhookUrlError extends IntellisiteError<'INVALID_WEBHOOK_URL'> {
  constructor(message: string) {
    super('INVALID_WEBHOOK_URL', message)
  }
}

export interface WebhookTarget {
  url: URL
  /** The host to resolve, or the literal address (IPv6 without brackets). */
  hostname: string
  /** Set when the host is a literal IP address: Node will not call `lookup` for it. */
  literal: string | null
}

/**
 * The syntactic rules of a webhook URL: https (plain http only where private targets are allowed,
 * i.e. local runs), no credentials (they would be shown back and logged), no fragment, a host.
 * WHATWG parsing normalises hosts first, so `http://2130706433/` and `http://0x7f.1/` are seen as
 * 127.0.0.1 here as they are when connecting.
 */
export function parseWebhookUrl(
  text: string,
  { allowPrivate }: Pick<GuardOptions, 'allowPrivate'>,
): WebhookTarget {
  if (text.length > MAX_WEBHOOK_URL_LENGTH)
    throw new InvalidWebhookUrlError(`the URL is longer than ${MAX_WEBHOOK_URL_LENGTH} characters`)
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new InvalidWebhookUrlError('not an absolute URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new InvalidWebhookUrlError(`${url.protocol} URLs are not supported: use https`)
  if (url.protocol === 'http:' && !allowPrivate)
    throw new InvalidWebhookUrlError(
      'plain http is refused: use https (WEBHOOK_ALLOW_PRIVATE allows http for local runs)',
    )
  if (url.username !== '' || url.password !== '')
    throw new InvalidWebhookUrlError('credentials in the URL are refused: verify our signature instead')
  if (url.hash !== '') throw new InvalidWebhookUrlError('a URL fragment is never sent: remove it')
  if (url.hostname === '') throw new InvalidWebhookUrlError('the URL has no host')
  const literal = literalAddress(url.hostname)
  return { url, hostname: literal ?? url.hostname, literal }
}

/**
 * The whole check at registration: the URL's rules, then its host resolved and every address
 * checked. Deliveries check again on the address they dial (guardedLookup), since DNS can change.
 */
export async function checkWebhookUrl(text: string, options: GuardOptions): Promise<WebhookTarget> {
  const target = parseWebhookUrl(text, options)
  await resolveAllowed(target.hostname, options)
  return target
}

export { TargetRefusedError }
