import { createHmac, randomBytes } from 'node:crypto'

/**
 * Standard Webhooks (standardwebhooks.com) signing: `v1,` then the base64 HMAC-SHA256 of
 * `<webhook-id>.<webhook-timestamp>.<body>` keyed by the secret's bytes (base64 after `whsec_`).
 */
export const SECRET_PREFIX = 'whsec_'
/** 32 random bytes: the spec asks for 24 to 64. */
export const SECRET_BYTES = 32

export function generateSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(SECRET_BYTES).toString('base64')}`
}

export function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) throw new Error('a webhook secret starts with whsec_')
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64')
}

export interface SignedHeaders {
  'webhook-id': string
  'webhook-timestamp': string
  'webhook-signature': string
}

/**
 * The three headers of one attempt. With several secrets (a rotation's overlap) the signature
 * header lists one signature per secret, space-separated: a receiver that knows either verifies.
 */
export function signWebhook(
  message: { id: string; timestampSeconds: number; body: string },
  secrets: readonly string[],
): SignedHeaders {
  const signed = `${message.id}.${message.timestampSeconds}.${message.body}`
  const signatures = secrets.map(
    (secret) => `v1,${createHmac('sha256', secretKey(secret)).update(signed).digest('base64')}`,
  )
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(message.timestampSeconds),
    'webhook-signature': signatures.join(' '),
  }
}
