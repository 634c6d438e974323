import { IntellisiteError } from '@intellisite/common'
import { type DetectionMessage, detectionMessageSchema } from '@intellisite/detections-store'

export type DecodeErrorCode =
  | 'EMPTY'
  | 'TOO_LARGE'
  | 'INVALID_UTF8'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'INVALID_FIELDS'

/** Why a record is not a detection; returned, not thrown (see {@link decodeDetection}). */
export class DecodeError extends IntellisiteError<DecodeErrorCode> {}

export type DecodeResult = { ok: true; message: DetectionMessage } | { ok: false; error: DecodeError }

/** The largest detection record decoded (`INDEXER_MAX_MESSAGE_BYTES`); larger ones are dead-lettered. */
export const DEFAULT_MAX_DETECTION_BYTES = 64 * 1024

/** Keys that poison objects when a consumer later merges or clones them. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

function fail(code: DecodeErrorCode, message: string, cause?: unknown): DecodeResult {
  return { ok: false, error: new DecodeError(code, message, { cause }) }
}

/**
 * Bytes of a Kafka record → a valid detection, or a typed reason to dead-letter it. Pure and
 * total: it never throws, whatever the input, so one bad record cannot stop the partition.
 */
export function decodeDetection(
  value: Buffer | Uint8Array | null | undefined,
  options: { maxBytes?: number } = {},
): DecodeResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DETECTION_BYTES
  if (value == null || value.byteLength === 0) return fail('EMPTY', 'record has no value')
  // Checked before decoding so a hostile payload costs nothing to reject.
  if (value.byteLength > maxBytes) {
    return fail('TOO_LARGE', `record value is ${value.byteLength} bytes, the limit is ${maxBytes}`)
  }
  let text: string
  try {
    text = utf8.decode(value)
  } catch (err) {
    return fail('INVALID_UTF8', 'record value is not valid UTF-8', err)
  }
  let forbidden: string | undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(text, (key, nested) => {
      if (FORBIDDEN_KEYS.has(key)) forbidden ??= key
      return nested
    })
  } catch (err) {
    return fail('INVALID_JSON', `record value is not JSON: ${(err as Error).message}`, err)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const kind = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`
    return fail('NOT_AN_OBJECT', `record value is ${kind}, expected a JSON object`)
  }
  if (forbidden !== undefined) return fail('INVALID_FIELDS', `forbidden key "${forbidden}"`)
  const result = detectionMessageSchema.safeParse(parsed)
  if (!result.success) {
    const summary = result.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ')
    return fail('INVALID_FIELDS', summary, result.error)
  }
  return { ok: true, message: result.data }
}
