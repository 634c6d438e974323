import { describe, expect, it } from 'vitest'
import {
  classifyAddress,
  guardedLookup,
  literalAddress,
  parseIPv6,
  parseWebhookUrl,
  resolveAllowed,
  TargetRefusedError,
} from '../src/index.js'

describe('the address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'shared address space (CGNAT)'],
    ['100.100.100.200', 'shared address space (CGNAT)'],
    ['169.254.169.254', 'link-local'],
    ['224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fc00::1', 'unique-local'],
    ['fd00:ec2::254', 'unique-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped IPv6'],
    ['::ffff:7f00:1', 'IPv4-mapped IPv6'],
    ['::ffff:8.8.8.8', 'IPv4-mapped IPv6'],
    ['::127.0.0.1', 'IPv4-compatible IPv6'],
    ['64:ff9b::10.0.0.1', 'private'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
    ['64:ff9b:1::1', 'local-use NAT64'],
    ['2002:7f00:1::', 'loopback'],
    ['2002:c0a8:0101::1', 'private'],
    ['2001:db8::1', 'documentation'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'reserved'],
    ['100::1', 'reserved'],
    ['4000::1', 'reserved'],
    ['fec0::1', 'site-local'],
    ['example.com', 'not an IP address'],
  ])('refuses %s as %s', (address, kind) => {
    expect(classifyAddress(address)).toBe(kind)
  })

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '172.15.255.255',
    '172.32.0.1',
    '100.128.0.1',
    '169.253.255.255',
    '2606:4700:4700::1111',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '2a00:1450:4007:80f::200e',
  ])('lets the public address %s through', (address) => {
    expect(classifyAddress(address)).toBeNull()
  })

  it('parses every IPv6 spelling to the same bytes', () => {
    const expected = parseIPv6('0:0:0:0:0:ffff:7f00:1')
    expect(parseIPv6('::ffff:127.0.0.1')).toEqual(expected)
    expect(parseIPv6('[::FFFF:7F00:0001]')).toEqual(expected)
    expect(parseIPv6('not-an-address')).toBeNull()
    expect(literalAddress('[::1]')).toBe('::1')
    expect(literalAddress('10.0.0.1')).toBe('10.0.0.1')
    expect(literalAddress('hooks.example.com')).toBeNull()
  })
})

describe('webhook URLs', () => {
  const strict = { allowPrivate: false }
  it('normalises numeric IPv4 spellings before judging them', () => {
    expect(parseWebhookUrl('https://2130706433/x', strict).literal).toBe('127.0.0.1')
    expect(parseWebhookUrl('https://0x7f.1/x', strict).literal).toBe('127.0.0.1')
    expect(parseWebhookUrl('https://[::ffff:127.0.0.1]/x', strict).literal).toBe('::ffff:7f00:1')
  })

  it('refuses plain http unless private targets are allowed, credentials, fragments, other schemes', () => {
    expect(() => parseWebhookUrl('http://hooks.example.com/', strict)).toThrow(/plain http/)
    expect(parseWebhookUrl('http://127.0.0.1:9/', { allowPrivate: true }).literal).toBe('127.0.0.1')
    expect(() => parseWebhookUrl('https://u:p@hooks.example.com/', strict)).toThrow(/credentials/)
    expect(() => parseWebhookUrl('https://hooks.example.com/#x', strict)).toThrow(/fragment/)
    expect(() => parseWebhookUrl('ftp://hooks.example.com/', strict)).toThrow(/ftp/)
    expect(() => parseWebhookUrl('hooks.example.com', strict)).toThrow(/absolute/)
  })
})

describe('resolving', () => {
  const dns = (answers: Record<string, string[]>) => async (hostname: string) => {
    const found = answers[hostname]
    if (!found) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' })
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
  const resolve = dns({
    'public.test': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'mixed.test': ['93.184.216.34', '10.1.2.3'],
    'loopback.test': ['127.0.0.1'],
  })

  it('refuses a name when any one of its addresses is not public', async () => {
    await expect(resolveAllowed('public.test', { allowPrivate: false, resolve })).resolves.toHaveLength(2)
    await expect(resolveAllowed('mixed.test', { allowPrivate: false, resolve })).rejects.toThrow(
      /10\.1\.2\.3 is a private address \(mixed\.test resolves to it\)/,
    )
    await expect(resolveAllowed('nowhere.test', { allowPrivate: false, resolve })).rejects.toThrow(
      /does not resolve \(ENOTFOUND\)/,
    )
    await expect(resolveAllowed('loopback.test', { allowPrivate: true, resolve })).resolves.toHaveLength(1)
  })

  it('gives sockets only checked addresses, in both lookup shapes', async () => {
    const lookup = guardedLookup({ allowPrivate: false, resolve })
    const call = (hostname: string, options: { all?: boolean; family?: number }) =>
      new Promise<{ err: Error | null; address: unknown; family?: number }>((done) =>
        lookup(hostname, options, (err, address, family) => done({ err, address, family })),
      )
    expect(await call('public.test', {})).toEqual({ err: null, address: '93.184.216.34', family: 4 })
    expect((await call('public.test', { all: true })).address).toHaveLength(2)
    expect((await call('public.test', { family: 6 })).address).toBe('2606:2800:220:1:248:1893:25c8:1946')
    const refused = await call('loopback.test', { all: true })
    expect(refused.err).toBeInstanceOf(TargetRefusedError)
    expect(refused.err?.message).toMatch(/127\.0\.0\.1 is a loopback address/)
  })
})
