/**
 * SSE resume token: the Kafka position of the alerts topic *after* an alert, i.e. the next offset
 * to read for every partition, indexed by partition number.
 *
 * Wire format (then base64url without padding):
 *   byte 0          version (1)
 *   varint          partition count P (1..MAX_PARTITIONS)
 *   varint          next offset of partition 0
 *   P-1 × varint    zig-zag delta of partition i from partition i-1
 *
 * Varints are unsigned LEB128. Partitions of a keyed topic grow at about the same rate, so the
 * deltas are small: 3 partitions at offsets around 10^6 encode in ~10 bytes (14 characters).
 * Bound: at most 3 + 8·P bytes (offsets ≤ 2^52, the largest accepted; P ≤ 4096), i.e.
 * ceil(4/3 · (3 + 8P)) characters: 36 for 3 partitions whatever the offsets. With partitions
 * within ~8k offsets of each other it is about 2 + 4 + 2·(P-1) bytes: ~14 characters for 3
 * partitions, ~180 for 64, so up to ~90 partitions stay under 256 characters.
 */

import { IntellisiteError } from '@intellisite/common'

export const RESUME_TOKEN_VERSION = 1
export const MAX_PARTITIONS = 4096
/** Offsets above this are rejected so zig-zag arithmetic stays within exact doubles. */
export const MAX_OFFSET = 2 ** 52
export const MAX_TOKEN_CHARS = 4 * 1024

export type Position = readonly number[]

export class InvalidResumeTokenError extends IntellisiteError<'INVALID_LAST_EVENT_ID'> {
  constructor(detail: string) {
    super('INVALID_LAST_EVENT_ID', `Malformed Last-Event-ID: ${detail}`)
  }
}

function pushVarint(out: number[], value: number): void {
  let rest = value
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80)
    rest = Math.floor(rest / 0x80)
  }
  out.push(rest)
}

export function encodeResumeToken(position: Position): string {
  if (position.length === 0 || position.length > MAX_PARTITIONS) {
    throw new RangeError(`position must have 1..${MAX_PARTITIONS} partitions`)
  }
  const bytes: number[] = [RESUME_TOKEN_VERSION]
  pushVarint(bytes, position.length)
  let previous = 0
  position.forEach((offset, index) => {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > MAX_OFFSET) {
      throw new RangeError(`offset out of range: ${offset}`)
    }
    if (index === 0) pushVarint(bytes, offset)
    else {
      const delta = offset - previous
      pushVarint(bytes, delta >= 0 ? delta * 2 : -delta * 2 - 1)
    }
    previous = offset
  })
  return Buffer.from(bytes).toString('base64url')
}

/**
 * Canonical unpadded base64url: whole quads, then 2 characters whose last one carries no stray bits
 * (A, Q, g or w) or 3 whose last one carries none (every fourth letter of the alphabet). The same
 * rule in the OpenAPI document lets clients (and fuzzers) know a token's shape without a decoder.
 */
export const RESUME_TOKEN_PATTERN =
  '^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-][AQgw]|[A-Za-z0-9_-]{2}[AEIMQUYcgkosw048])?$'

export function decodeResumeToken(token: string): Position {
  if (token.length === 0 || token.length > MAX_TOKEN_CHARS || !/^[A-Za-z0-9_-]+$/.test(token)) {
    throw new InvalidResumeTokenError('not a base64url token')
  }
  const bytes = Buffer.from(token, 'base64url')
  // Reject non-canonical encodings (stray trailing bits) so one position has one token.
  if (bytes.toString('base64url') !== token) throw new InvalidResumeTokenError('not canonical base64url')
  let index = 0
  const readVarint = (): number => {
    let value = 0
    let scale = 1
    for (let i = 0; i < 8; i++) {
      const byte = bytes[index++]
      if (byte === undefined) throw new InvalidResumeTokenError('truncated')
      value += (byte & 0x7f) * scale
      if (byte < 0x80) {
        if (i > 0 && byte === 0) throw new InvalidResumeTokenError('non-minimal varint')
        return value
      }
      scale *= 0x80
    }
    throw new InvalidResumeTokenError('varint too long')
  }
  if (bytes[index++] !== RESUME_TOKEN_VERSION) throw new InvalidResumeTokenError('unknown version')
  const count = readVarint()
  if (count < 1 || count > MAX_PARTITIONS) throw new InvalidResumeTokenError('bad partition count')
  const position: number[] = []
  let previous = 0
  for (let partition = 0; partition < count; partition++) {
    const raw = readVarint()
    const offset = partition === 0 ? raw : previous + (raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2)
    if (offset < 0 || offset > MAX_OFFSET) throw new InvalidResumeTokenError('offset out of range')
    position.push(offset)
    previous = offset
  }
  if (index !== bytes.length) throw new InvalidResumeTokenError('trailing bytes')
  return position
}
