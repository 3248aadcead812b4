/**
 * The bucket a client's attempts are counted in by the brakes.
 *
 * - IPv4: the address itself.
 * - IPv6: its /64, the block one subscriber gets; counting addresses one by one would give a
 *   guesser 2^64 fresh counters. IPv4-mapped addresses (::ffff:a.b.c.d) are the IPv4 address.
 * - Other Cloudflare Workers reach the gate from one shared Cloudflare address: their requests are
 *   told apart by the CF-Worker header (the calling zone) so that one tenant cannot brake the rest.
 *   The zone is added to the address, never put in its place, so a client that forges CF-Worker
 *   only splits its own address's bucket; the per-user counter over all buckets still holds it.
 * - Anything else (no address, a proxy's garbage) gets a bucket of its own, `junk:` + JSON, which
 *   no address bucket can equal: address buckets are made of hex digits, dots, colons and a slash.
 */

/** Junk is cut to this many characters: a client cannot make the name of an object arbitrarily long. */
const MAX_JUNK = 64
/** A DNS name in its usual spelling, at most 253 characters. */
const ZONE = /^(?=.{1,253}$)[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/

export function clientBucket(address: string, cfWorker: string | undefined): string {
  return addressBucket(address.trim()) + workerPart(cfWorker)
}

function addressBucket(address: string): string {
  const v4 = ipv4(address)
  if (v4) return v4
  const groups = ipv6Groups(address)
  if (!groups) return `junk:${JSON.stringify(address.slice(0, MAX_JUNK))}`
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6)
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  }
  // RFC 5952 spelling of the /64's first address: the zero groups at the end fold into '::'.
  const prefix = groups.slice(0, 4)
  while (prefix.length > 0 && prefix.at(-1) === 0) prefix.pop()
  return `${prefix.map((g) => g.toString(16)).join(':')}::/64`
}

/** Dotted decimal only, no leading zeros: other spellings (octal, hex, short forms) are junk. */
function ipv4(s: string): string | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  for (const p of parts) {
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined
  }
  return s
}

/** The eight 16-bit groups, or undefined if this is no IPv6 address. */
function ipv6Groups(s: string): number[] | undefined {
  let a = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s
  // A zone id (fe80::1%eth0) names the sender's interface, not a part of the address.
  const zone = a.indexOf('%')
  if (zone >= 0) a = a.slice(0, zone)
  // Only address characters reach the URL parser, so nothing but the host part can be read.
  if (!a.includes(':') || !/^[0-9A-Fa-f:.]+$/.test(a)) return undefined
  let host: string
  try {
    host = new URL(`http://[${a}]/`).hostname
  } catch {
    return undefined
  }
  // The URL standard serialises IPv6 one way: lower-case hex groups, no leading zeros, no
  // dotted tail, the longest run of zero groups as '::'.
  const [head = '', tail] = host.slice(1, -1).split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill('0')
  return [...left, ...zeros, ...right].map((g) => Number.parseInt(g, 16))
}

function workerPart(cfWorker: string | undefined): string {
  const zone = cfWorker?.trim().toLowerCase().replace(/\.$/, '')
  if (!zone) return ''
  // A malformed zone is no Cloudflare zone: one bucket for all of them, per address.
  return `|worker:${ZONE.test(zone) ? zone : '?'}`
}
