import { describe, expect, it } from 'vitest'
import {
  decodeResumeToken,
  encodeResumeToken,
  InvalidResumeTokenError,
  MAX_OFFSET,
  RESUME_TOKEN_PATTERN,
} from '../../src/alerts/resume-token.js'

describe('resume token', () => {
  it('round-trips positions, including large and uneven offsets', () => {
    const positions = [
      [0],
      [0, 0, 0],
      [5, 3, 9],
      [1_000_000, 999_950, 1_000_073],
      [MAX_OFFSET, 0, MAX_OFFSET],
      Array.from({ length: 64 }, (_, p) => 10_000_000 + ((p * 7919) % 4_000)),
    ]
    for (const position of positions) expect(decodeResumeToken(encodeResumeToken(position))).toEqual(position)
  })

  it('stays compact: 3 partitions at a million alerts in ~14 characters, 64 partitions under 256', () => {
    expect(encodeResumeToken([1_000_000, 999_950, 1_000_073]).length).toBeLessThanOrEqual(16)
    const wide = Array.from({ length: 64 }, (_, p) => 10_000_000 + ((p * 7919) % 4_000))
    expect(encodeResumeToken(wide).length).toBeLessThan(256)
    // Worst case stated in the module: ceil(4/3 * (3 + 8P)) characters.
    const worst = Array.from({ length: 16 }, (_, p) => (p % 2 === 0 ? MAX_OFFSET : 0))
    expect(encodeResumeToken(worst).length).toBeLessThanOrEqual(Math.ceil((4 / 3) * (3 + 8 * 16)))
  })

  it('rejects malformed tokens with a 400-coded error', () => {
    const valid = encodeResumeToken([4, 5, 6])
    for (const bad of [
      '',
      'not a token',
      '%%%',
      'AAAA',
      'AQ',
      'Ag',
      `${valid}AA`,
      valid.slice(0, -1),
      'AQD_____________',
    ]) {
      let error: unknown
      try {
        decodeResumeToken(bad)
      } catch (err) {
        error = err
      }
      expect(error, bad).toBeInstanceOf(InvalidResumeTokenError)
      expect((error as InvalidResumeTokenError).code).toBe('INVALID_LAST_EVENT_ID')
    }
  })

  it('documents exactly the canonical base64url strings as its pattern', () => {
    const pattern = new RegExp(RESUME_TOKEN_PATTERN)
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    // Every string of 1 to 3 characters over a sample of the alphabet, and their 4-character extensions.
    const sample = [...'AQgwBRhxEIMcks048_-']
    const strings = sample.flatMap((a) => [
      a,
      ...sample.flatMap((b) => [a + b, ...sample.map((c) => a + b + c)]),
    ])
    for (const tail of strings.concat(strings.map((s) => `${alphabet.slice(0, 4)}${s}`))) {
      const canonical = Buffer.from(tail, 'base64url').toString('base64url') === tail
      expect(pattern.test(tail), tail).toBe(canonical)
    }
    expect(pattern.test(encodeResumeToken([1_000_000, 999_950, 1_000_073]))).toBe(true)
  })
})
