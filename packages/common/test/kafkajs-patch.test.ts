// kafkajs is patched (patches/kafkajs@2.2.4.patch) where producing keyed messages spent most of its
// time: murmur2 on 64-bit BigInt-backed Longs, and a per-message copy of each partition's list. A
// patch to a partitioner must not move a single key: alerts are keyed by detection id, and every
// consumer relies on a key staying on its partition.

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
})
