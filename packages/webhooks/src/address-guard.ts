import type { LookupAddress, LookupOptions } from 'node:dns'
import { lookup as dnsLookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { IntellisiteError } from '@intellisite/common'
import { type AddressKind, classifyAddress } from './address-policy.js'

/** Resolves a host name to every address it has (A and AAAA). Injected so tests control DNS. */
export type HostResolver = (hostname: string) => Promise<LookupAddress[]>

export const systemResolver: HostResolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true })

export type TargetRefusal =
  | { reason: 'address'; address: string; kind: AddressKind }
  | { reason: 'unresolvable'; detail: string }

/**
 * A webhook target we will not connect to. `retriable` is false: asking again gets the same answer
 * (a name that does not resolve today may tomorrow, but that is the next attempt's business).
 */
export class TargetRefusedError extends IntellisiteError<'TARGET_REFUSED'> {
  constructor(
    readonly hostname: string,
    readonly refusal: TargetRefusal,
  ) {
    super('TARGET_REFUSED', describeRefusal(hostname, refusal))
  }
}

export function describeRefusal(hostname: string, refusal: TargetRefusal): string {
  if (refusal.reason === 'unresolvable') return `${hostname} does not resolve (${refusal.detail})`
  const via = refusal.address === hostname ? '' : ` (${hostname} resolves to it)`
  const article = /^[aeiou]/i.test(refusal.kind) ? 'an' : 'a'
  return `${refusal.address} is ${article} ${refusal.kind} address${via}: webhooks go to public addresses only`
}

export interface GuardOptions {
  /** Lets every address through: local runs and tests (WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: boolean
  resolve?: HostResolver
}

/** Throws TargetRefusedError unless `address` (a literal) is public or private targets are allowed. */
export function assertAddressAllowed(hostname: string, address: string, allowPrivate: boolean): void {
  if (allowPrivate) return
  const kind = classifyAddress(address)
  if (kind !== null) throw new TargetRefusedError(hostname, { reason: 'address', address, kind })
}

/**
 * Resolves `hostname` and checks EVERY address it has: one private answer among public ones is
 * enough to refuse, since the connection may pick any of them.
 */
export async function resolveAllowed(hostname: string, options: GuardOptions): Promise<LookupAddress[]> {
  if (isIP(hostname)) {
    assertAddressAllowed(hostname, hostname, options.allowPrivate)
    return [{ address: hostname, family: isIP(hostname) }]
  }
  let addresses: LookupAddress[]
  try {
    addresses = await (options.resolve ?? systemResolver)(hostname)
  } catch (err) {
    const code = (err as { code?: string }).code ?? (err as Error).message
    throw new TargetRefusedError(hostname, { reason: 'unresolvable', detail: String(code) })
  }
  if (addresses.length === 0)
    throw new TargetRefusedError(hostname, { reason: 'unresolvable', detail: 'no address' })
  for (const { address } of addresses) assertAddressAllowed(hostname, address, options.allowPrivate)
  return addresses
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

/**
 * A `lookup` for node:net / node:http(s) sockets: the connection goes only to an address that was
 * checked in the same lookup, so a DNS answer that changes between registration and delivery (or
 * between two lookups: DNS rebinding) cannot lead it into our network. Node calls `lookup` only for
 * host names; a literal IP host must be checked before the request is made (see
 * `assertAddressAllowed`).
 */
export function guardedLookup(options: GuardOptions) {
  return (hostname: string, lookupOptions: LookupOptions, callback: LookupCallback): void => {
    resolveAllowed(hostname, options).then(
      (addresses) => {
        const family =
          lookupOptions.family === 'IPv4' ? 4 : lookupOptions.family === 'IPv6' ? 6 : lookupOptions.family
        const usable = family ? addresses.filter((a) => a.family === family) : addresses
        if (usable.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`${hostname} has no IPv${family} address`)
          err.code = 'ENOTFOUND'
          return callback(err, [])
        }
        if (lookupOptions.all) return callback(null, usable)
        const first = usable[0]!
        callback(null, first.address, first.family)
      },
      (err: unknown) => callback(err as NodeJS.ErrnoException, []),
    )
  }
}
