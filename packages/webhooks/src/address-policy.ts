import { isIPv4, isIPv6 } from 'node:net'

/**
 * Which IP addresses a webhook may be delivered to: public unicast ones only. Every other kind is
 * named, so that a refusal says why. Pure: no DNS here (see address-guard.ts for the resolving
 * half).
 *
 * IPv6 forms that embed an IPv4 address are judged by the address they reach: NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16) go to the embedded IPv4 address, so they are refused when
 * it is. IPv4-mapped and IPv4-compatible addresses are refused whatever they embed: a socket to
 * `::ffff:127.0.0.1` is a socket to 127.0.0.1, and no public service needs to be named that way.
 */
export type AddressKind =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'shared address space (CGNAT)'
  | 'link-local'
  | 'unique-local'
  | 'site-local'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmarking'
  | 'reserved'
  | 'IPv4-mapped IPv6'
  | 'IPv4-compatible IPv6'
  | 'local-use NAT64'
  | 'not an IP address'

interface Range {
  /** Network address as bytes (4 or 16). */
  base: Uint8Array
  bits: number
  kind: AddressKind
}

function v4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number))
}

const V4_RANGES: Range[] = (
  [
    ['0.0.0.0', 8, 'unspecified'],
    ['10.0.0.0', 8, 'private'],
    ['100.64.0.0', 10, 'shared address space (CGNAT)'],
    ['127.0.0.0', 8, 'loopback'],
    // 169.254.169.254 (cloud instance metadata) is in here.
    ['169.254.0.0', 16, 'link-local'],
    ['172.16.0.0', 12, 'private'],
    ['192.0.0.0', 24, 'reserved'],
    ['192.0.2.0', 24, 'documentation'],
    ['192.88.99.0', 24, 'reserved'],
    ['192.168.0.0', 16, 'private'],
    ['198.18.0.0', 15, 'benchmarking'],
    ['198.51.100.0', 24, 'documentation'],
    ['203.0.113.0', 24, 'documentation'],
    ['224.0.0.0', 4, 'multicast'],
    ['255.255.255.255', 32, 'broadcast'],
    ['240.0.0.0', 4, 'reserved'],
  ] as const
).map(([base, bits, kind]) => ({ base: v4(base), bits, kind }))

/** 16 bytes of an IPv6 address (zone id dropped, embedded dotted quad allowed), or null. */
export function parseIPv6(text: string): Uint8Array | null {
  const address = text.replace(/^\[|\]$/g, '').split('%')[0] ?? ''
  if (!isIPv6(address)) return null
  let head = address
  let tail: number[] = []
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address)
  if (dotted?.[1]) {
    const bytes = v4(dotted[1])
    tail = [(bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!]
    head = address.slice(0, -dotted[1].length)
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1)
  }
  const [left = '', right] = head.split('::')
  const words = (part: string) => (part === '' ? [] : part.split(':').map((w) => Number.parseInt(w, 16)))
  const before = words(left)
  const after = [...(right === undefined ? [] : words(right)), ...tail]
  const all =
    right === undefined
      ? [...before, ...after]
      : [...before, ...Array(8 - before.length - after.length).fill(0), ...after]
  if (all.length !== 8) return null
  const bytes = new Uint8Array(16)
  all.forEach((word, i) => {
    bytes[2 * i] = (word >> 8) & 0xff
    bytes[2 * i + 1] = word & 0xff
  })
  return bytes
}

function inRange(bytes: Uint8Array, base: Uint8Array, bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3
    const mask = 0x80 >> (i & 7)
    if ((bytes[byte]! & mask) !== (base[byte]! & mask)) return false
  }
  return true
}

function classifyV4(bytes: Uint8Array): AddressKind | null {
  for (const range of V4_RANGES) if (inRange(bytes, range.base, range.bits)) return range.kind
  return null
}

const v6 = (text: string) => parseIPv6(text)!

const V6_RANGES: Range[] = (
  [
    ['::', 128, 'unspecified'],
    ['::1', 128, 'loopback'],
    ['::ffff:0:0', 96, 'IPv4-mapped IPv6'],
    // SIIT's IPv4-translated form reaches the embedded IPv4 address like a mapped one.
    ['::ffff:0:0:0', 96, 'IPv4-mapped IPv6'],
    ['::', 96, 'IPv4-compatible IPv6'],
    ['64:ff9b:1::', 48, 'local-use NAT64'],
    ['100::', 64, 'reserved'],
    ['2001:db8::', 32, 'documentation'],
    // IETF protocol assignments, Teredo (2001::/32) among them: its embedded address is obfuscated.
    ['2001::', 23, 'reserved'],
    ['3fff::', 20, 'documentation'],
    ['5f00::', 16, 'reserved'],
    ['fc00::', 7, 'unique-local'],
    ['fe80::', 10, 'link-local'],
    ['fec0::', 10, 'site-local'],
    ['ff00::', 8, 'multicast'],
  ] as const
).map(([base, bits, kind]) => ({ base: v6(base), bits, kind }))

const NAT64 = v6('64:ff9b::')
const SIX_TO_FOUR = v6('2002::')
const GLOBAL_UNICAST = v6('2000::')

function classifyV6(bytes: Uint8Array): AddressKind | null {
  for (const range of V6_RANGES) if (inRange(bytes, range.base, range.bits)) return range.kind
  if (inRange(bytes, NAT64, 96)) return classifyV4(bytes.subarray(12, 16))
  if (inRange(bytes, SIX_TO_FOUR, 16)) return classifyV4(bytes.subarray(2, 6))
  // Outside 2000::/3 nothing is allocated for global unicast.
  if (!inRange(bytes, GLOBAL_UNICAST, 3)) return 'reserved'
  return null
}

/**
 * What kind of non-public address `address` is (a literal IPv4 or IPv6 address, brackets and zone
 * id allowed), or null when it is a public unicast address a webhook may reach.
 */
export function classifyAddress(address: string): AddressKind | null {
  if (isIPv4(address)) return classifyV4(v4(address))
  const bytes = parseIPv6(address)
  if (bytes === null) return 'not an IP address'
  return classifyV6(bytes)
}

/** The literal IP address a URL hostname names (IPv6 without its brackets), or null for a name. */
export function literalAddress(hostname: string): string | null {
  if (isIPv4(hostname)) return hostname
  const unbracketed = hostname.replace(/^\[|\]$/g, '')
  return isIPv6(unbracketed) ? unbracketed : null
}
