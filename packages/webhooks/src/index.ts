export {
  assertAddressAllowed,
  describeRefusal,
  type GuardOptions,
  guardedLookup,
  type HostResolver,
  resolveAllowed,
  systemResolver,
  type TargetRefusal,
  TargetRefusedError,
} from './address-guard.js'
export { type AddressKind, classifyAddress, literalAddress, parseIPv6 } from './address-policy.js'
export {
  generateSecret,
  SECRET_BYTES,
  SECRET_PREFIX,
  type SignedHeaders,
  secretKey,
  signWebhook,
} from './signature.js'
export {
  checkWebhookUrl,
  InvalidWebhookUrlError,
  MAX_WEBHOOK_URL_LENGTH,
  parseWebhookUrl,
  type WebhookTarget,
} from './webhook-url.js'
