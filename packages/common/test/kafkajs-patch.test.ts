// kafkajs is patched (patches/kafkajs@2.2.4.patch) where producing keyed messages spent most of its
// time: murmur2 on 64-bit BigInt-backed Longs, a per-message copy of each partition's list, and
// encoding each record (a buffer regrown for any record over 512 bytes, an array and a Buffer per
// varint, BigInt arithmetic for the timestamp delta, CRC32C one byte per step). A patch to a
// partitioner must not move a single key: alerts are keyed by detection id, and every consumer
// relies on a key staying on its partition. A patch to the encoder must not change a byte: the
// oracles below spell the record format and the checksum as the protocol defines them.

import { randomBytes, randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { Partitioners } from 'kafkajs'
import { describe, expect, it } from 'vitest'

const require = createRequire(import.meta.url)
const murmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (key: unknown) => number
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition.js') as (args: {
  topic: string
  partitionMetadata: { partitionId: number; leader: number }[]
  messages: { key?: string; partition?: number }[]
  partitioner: (args: unknown) => number
}) => Record<string, { key?: string }[]>
interface Encoder {
  buffer: Buffer
  writeVarInt(value: number): Encoder
  writeVarLong(value: number | bigint): Encoder
  writeInt32(value: number): Encoder
  writeBytes(value: Buffer | string | null): Encoder
}
const Encoder = require('kafkajs/src/protocol/encoder.js') as {
  new (initialSize?: number): Encoder
  sizeOfVarLong(value: number | bigint): number
}
const crc32C = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number
type Headers = Record<string, string | Buffer | (string | Buffer)[]>
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: {
  offsetDelta?: number
  timestampDelta?: number
  key: string | Buffer | null
  value: string | Buffer | null
  headers?: Headers
}) => Encoder
const Long = require('kafkajs/src/utils/long.js') as {
  fromValue(value: unknown): {
    xor(other: unknown): ReturnType<typeof Long.fromValue>
    multiply(other: unknown): ReturnType<typeof Long.fromValue>
    toInt(): number
  }
}

/** kafkajs's own murmur2 before the patch, kept as the oracle. */
function unpatchedMurmur2(key: string | Buffer): number {
  const data = Buffer.isBuffer(key) ? key : Buffer.from(String(key))
  const length = data.length
  const M = Long.fromValue(0x5bd1e995)
  let h = Long.fromValue(Long.fromValue(0x9747b28c).xor(length))
  for (let i = 0; i < Math.floor(length / 4); i++) {
    const i4 = i * 4
    let k = Long.fromValue(
      (data[i4]! & 0xff) +
        ((data[i4 + 1]! & 0xff) << 8) +
        ((data[i4 + 2]! & 0xff) << 16) +
        ((data[i4 + 3]! & 0xff) << 24),
    )
    k = k.multiply(M)
    k = k.xor(k.toInt() >>> 24)
    k = Long.fromValue(k).multiply(M)
    h = h.multiply(M)
    h = h.xor(k)
  }
  const tail = length & ~3
  const rest = length % 4
  if (rest >= 3) h = h.xor((data[tail + 2]! & 0xff) << 16)
  if (rest >= 2) h = h.xor((data[tail + 1]! & 0xff) << 8)
  if (rest >= 1) h = h.xor(data[tail]! & 0xff).multiply(M)
  h = h.xor(h.toInt() >>> 13)
  h = h.multiply(M)
  h = h.xor(h.toInt() >>> 15)
  return h.toInt()
}

describe('the patched kafkajs producer', () => {
  it("hashes keys as Java Kafka's murmur2 does (its own test vectors)", () => {
    expect(murmur2('21')).toBe(-973932308)
    expect(murmur2('foobar')).toBe(-790332482)
    expect(murmur2('a-little-bit-long-string')).toBe(-985981536)
    expect(murmur2('a-little-bit-longer-string')).toBe(-1486304829)
    expect(murmur2('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8')).toBe(-58897971)
    expect(murmur2(Buffer.from('abc'))).toBe(479470107)
  })

  it('hashes every key exactly as before the patch: ASCII, non-ASCII, long, and raw bytes', () => {
    const keys: (string | Buffer)[] = ['', 'a', 'Ωmega-€', '🚗 car', 'x'.repeat(1000), 'é'.repeat(300)]
    for (let i = 0; i < 3_000; i++) {
      keys.push(randomUUID(), randomBytes(i % 41).toString('latin1'), randomBytes(i % 41))
    }
    for (const key of keys) expect(murmur2(key), JSON.stringify(String(key))).toBe(unpatchedMurmur2(key))
  })

  it('groups messages by partition in their order, as the default partitioner places them', () => {
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1 }))
    const partitioner = Partitioners.DefaultPartitioner() as (args: unknown) => number
    const messages: { key: string; partition?: number }[] = [
      ...Array.from({ length: 500 }, () => ({ key: randomUUID() })),
      { key: 'explicit', partition: 2 },
    ]
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata, messages, partitioner })
    const expected: Record<string, { key?: string }[]> = {}
    for (const message of messages) {
      const partition =
        message.partition ?? (unpatchedMurmur2(message.key) & 0x7fffffff) % partitionMetadata.length
      expected[partition] = [...(expected[partition] ?? []), message]
    }
    expect(grouped).toEqual(expected)
    expect(grouped[2]?.at(-1)).toEqual({ key: 'explicit', partition: 2 })
  })

  it('computes CRC32C as one byte per step through the table does, at every length and offset', () => {
    expect(crc32C(Buffer.from('123456789'))).toBe(0xe3069283)
    for (let length = 0; length < 600; length++) {
      const bytes = randomBytes(length + 3).subarray(length % 4)
      expect(crc32C(bytes), `length ${bytes.length}`).toBe(bytewiseCrc32C(bytes))
    }
    const batch = randomBytes(1 << 20)
    expect(crc32C(batch)).toBe(bytewiseCrc32C(batch))
  })

  it('writes varints and varlongs as zigzag LEB128, over 32 bits too', () => {
    const values = [0, 1, -1, 63, -64, 64, -65, 127, 128, 8191, 8192, 2 ** 20, -(2 ** 20)]
    values.push(2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 40, -(2 ** 40), Date.now())
    for (let i = 0; i < 2_000; i++) values.push(Math.round((Math.random() - 0.5) * 2 ** (1 + (i % 52))))
    for (const value of values) {
      const asLong = [...zigzagLeb128(BigInt(value), 64)]
      expect([...new Encoder().writeVarLong(value).buffer], `varlong ${value}`).toEqual(asLong)
      expect(Encoder.sizeOfVarLong(value), `size of varlong ${value}`).toBe(asLong.length)
      if (value === (value | 0)) {
        expect([...new Encoder().writeVarInt(value).buffer], `varint ${value}`).toEqual([
          ...zigzagLeb128(BigInt(value), 32),
        ])
      }
    }
    expect([...new Encoder().writeVarLong(-(2n ** 63n)).buffer]).toEqual([...zigzagLeb128(-(2n ** 63n), 64)])
  })

  it('encodes records byte for byte as the protocol spells them, whatever their size', () => {
    const records: Parameters<typeof Record>[0][] = [
      { key: null, value: null },
      { key: '', value: '', headers: {} },
      { key: 'k', value: 'é'.repeat(3000), timestampDelta: 2 ** 33, offsetDelta: 70_000 },
      {
        key: Buffer.from([0, 255]),
        value: Buffer.alloc(0),
        headers: { a: ['1', Buffer.from('2')], 'x-ω': '' },
      },
    ]
    for (let i = 0; i < 500; i++) {
      records.push({
        key: i % 7 === 0 ? null : randomUUID(),
        value: i % 2 ? randomBytes(i * 3) : `{"text":"${'🚗x'.repeat(i)}"}`,
        offsetDelta: i,
        timestampDelta: i % 5 === 0 ? -i : i * 1000,
        ...(i % 3 === 0 && { headers: { 'x-error-code': 'DECODE', 'x-source-offset': String(i) } }),
      })
    }
    for (const record of records) expect(Record(record).buffer).toEqual(specRecord(record))
  })

  it('writes a buffer into an encoder and grows it without changing the bytes written', () => {
    const chunks = Array.from({ length: 50 }, (_, i) => randomBytes(i * 37))
    const encoder = new Encoder(1)
    for (const chunk of chunks) encoder.writeInt32(chunk.length).writeBytes(chunk)
    const expected = Buffer.concat(chunks.flatMap((c) => [int32(c.length), int32(c.length), c]))
    expect(encoder.buffer).toEqual(expected)
  })
})

function int32(value: number): Buffer {
  const bytes = Buffer.alloc(4)
  bytes.writeInt32BE(value)
  return bytes
}

/** CRC32C (Castagnoli, reflected 0x82f63b78), one bit at a time: the definition itself. */
function bytewiseCrc32C(bytes: Buffer): number {
  let crc = 0xffffffff
  for (const byte of bytes) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

/** A signed integer as Kafka's varint (32 bits) or varlong (64): zigzag, then 7 bits a byte, low first. */
function zigzagLeb128(value: bigint, bits: 32 | 64): Buffer {
  let zigzag = BigInt.asUintN(bits, (value << 1n) ^ (value >> BigInt(bits - 1)))
  const bytes: number[] = []
  while (zigzag >= 0x80n) {
    bytes.push(Number(zigzag & 0x7fn) | 0x80)
    zigzag >>= 7n
  }
  bytes.push(Number(zigzag))
  return Buffer.from(bytes)
}

/** A nullable byte string in a record: its varint length (-1 for null), then its bytes. */
const varBytes = (value: string | Buffer | null | undefined) => {
  if (value == null) return zigzagLeb128(-1n, 32)
  const bytes = Buffer.from(value)
  return Buffer.concat([zigzagLeb128(BigInt(bytes.length), 32), bytes])
}

/** A v2 record as KIP-98 defines it: length, attributes, timestamp and offset deltas, key, value, headers. */
function specRecord(record: Parameters<typeof Record>[0]): Buffer {
  const headers = Object.entries(record.headers ?? {}).flatMap(([name, value]) =>
    (Array.isArray(value) ? value : [value]).map((item) => Buffer.concat([varBytes(name), varBytes(item)])),
  )
  const body = Buffer.concat([
    Buffer.from([0]),
    zigzagLeb128(BigInt(record.timestampDelta ?? 0), 64),
    zigzagLeb128(BigInt(record.offsetDelta ?? 0), 32),
    varBytes(record.key),
    varBytes(record.value),
    zigzagLeb128(BigInt(headers.length), 32),
    ...headers,
  ])
  return Buffer.concat([zigzagLeb128(BigInt(body.length), 32), body])
}
