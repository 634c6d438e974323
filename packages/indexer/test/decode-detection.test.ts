import { describe, expect, it } from 'vitest'
import { type DecodeErrorCode, decodeDetection } from '../src/decode-detection.js'

const valid = { Year: 2011, Make: 'Toyota', Model: 'Land Cruiser', Category: 'SUV' }
const bytes = (text: string) => Buffer.from(text, 'utf8')
const json = (value: unknown) => bytes(JSON.stringify(value))

describe('decodeDetection', () => {
  it('accepts the challenge producer JSON and drops unknown keys', () => {
    const result = decodeDetection(json({ ...valid, Extra: 1 }))
    expect(result).toEqual({ ok: true, message: valid })
  })

  it('accepts compound categories and odd casing as they are', () => {
    const result = decodeDetection(json({ ...valid, Make: 'MAZDA', Category: 'SUV, Pickup' }))
    expect(result).toEqual({ ok: true, message: { ...valid, Make: 'MAZDA', Category: 'SUV, Pickup' } })
  })

  const corpus: [string, Buffer | null, DecodeErrorCode, RegExp?][] = [
    ['null value', null, 'EMPTY'],
    ['empty value', Buffer.alloc(0), 'EMPTY'],
    ['1 MB string', json({ ...valid, Model: 'x'.repeat(1024 * 1024) }), 'TOO_LARGE', /limit is 65536/],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 'INVALID_UTF8'],
    ['lone surrogate bytes', Buffer.from([0xed, 0xa0, 0x80]), 'INVALID_UTF8'],
    ['not JSON', bytes('Year=2011'), 'INVALID_JSON'],
    ['truncated JSON', bytes('{"Year": 2011, "Make": '), 'INVALID_JSON'],
    ['array', json([valid]), 'NOT_AN_OBJECT', /an array/],
    ['number', bytes('42'), 'NOT_AN_OBJECT'],
    ['JSON string', json('SUV'), 'NOT_AN_OBJECT'],
    ['JSON null', bytes('null'), 'NOT_AN_OBJECT', /null/],
    ['missing field', json({ Year: 2011, Make: 'Toyota', Model: 'Corolla' }), 'INVALID_FIELDS', /Category/],
    ['number as string', json({ ...valid, Year: '2011' }), 'INVALID_FIELDS', /Year/],
    ['wrong type', json({ ...valid, Make: 42 }), 'INVALID_FIELDS', /Make/],
    ['fractional year', json({ ...valid, Year: 2011.5 }), 'INVALID_FIELDS', /Year/],
    ['blank make', json({ ...valid, Make: '   ' }), 'INVALID_FIELDS', /Make/],
    [
      '__proto__ key',
      bytes(`{"__proto__": {"polluted": true}, ${JSON.stringify(valid).slice(1)}`),
      'INVALID_FIELDS',
      /__proto__/,
    ],
    [
      'nested constructor key',
      json({ ...valid, meta: { constructor: { prototype: {} } } }),
      'INVALID_FIELDS',
    ],
  ]

  it.each(corpus)('rejects %s', (_name, value, code, message) => {
    const result = decodeDetection(value)
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.error.code).toBe(code)
    if (message) expect(result.error.message).toMatch(message)
  })

  it('never pollutes Object.prototype', () => {
    decodeDetection(bytes('{"__proto__": {"polluted": true}, "Year": 2011}'))
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('honours a configured size limit', () => {
    const value = json(valid)
    expect(decodeDetection(value, { maxBytes: value.length }).ok).toBe(true)
    const result = decodeDetection(value, { maxBytes: value.length - 1 })
    expect(result.ok ? null : result.error.code).toBe('TOO_LARGE')
  })
})
