/**
 * clientBucket(): IPv4 exact, IPv6 by /64 whatever the spelling, CF-Worker zones added to the
 * address, junk apart. Runs in workerd: the URL parser it relies on is workerd's.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clientBucket } from '../../src/gate/client-bucket.ts'

/** What an address bucket may look like; junk buckets start with `junk:` instead. */
const ADDRESS_BUCKET = /^(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f:]*::\/64)$/

const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }))
const groups = fc.array(group, { minLength: 8, maxLength: 8 })
const isMapped = (g: number[]) => g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff

/** Runs of zero groups [start, end) before `limit`: each may be written '::'. */
function zeroRuns(g: number[], limit: number): [number, number][] {
  const runs: [number, number][] = []
  for (let start = 0; start < limit; start++) {
    for (let end = start + 1; end <= limit && g[end - 1] === 0; end++) runs.push([start, end])
  }
  return runs
}

/** One of the many ways to write the address `g` (eight 16-bit groups). */
function spelling(g: number[]) {
  return fc.boolean().chain((dotted) => {
    const runs = zeroRuns(g, dotted ? 6 : 8)
    return fc
      .record({
        pads: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
        upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
        fold: runs.length > 0 ? fc.option(fc.constantFrom(...runs)) : fc.constant(null),
        zone: fc.constantFrom('', '%eth0', '%25', '%1'),
        brackets: fc.boolean(),
        space: fc.constantFrom('', ' ', '\t'),
      })
      .map((s) => {
        const hex = g.map((x, i) => {
          const digits = x.toString(16)
          const h = digits.padStart(Math.min(4, digits.length + (s.pads[i] ?? 0)), '0')
          return s.upper[i] ? h.toUpperCase() : h
        })
        // The dotted tail stands for the last two groups.
        const [g6 = 0, g7 = 0] = g.slice(6)
        const words = dotted
          ? [...hex.slice(0, 6), [g6 >> 8, g6 & 255, g7 >> 8, g7 & 255].join('.')]
          : hex
        const text = s.fold
          ? `${words.slice(0, s.fold[0]).join(':')}::${words.slice(s.fold[1]).join(':')}`
          : words.join(':')
        const inner = `${text}${s.zone}`
        return `${s.space}${s.brackets ? `[${inner}]` : inner}${s.space}`
      })
  })
}

describe('clientBucket', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['2001:db8::1', '2001:db8::/64'],
    ['2001:0DB8:0000:0000:FFFF:0000:0000:0001', '2001:db8::/64'],
    ['[2001:db8:1:2:3:4:5:6]', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::ffff:1.2.3.4', '2001:db8:1:2::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
    ['0:1::', '0:1::/64'],
    ['::1', '::/64'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:0201', '192.0.2.1'],
    ['2a06:98c0:3600::103', '2a06:98c0:3600::/64'],
  ])('%s -> %s', (address, bucket) => {
    expect(clientBucket(address, undefined)).toBe(bucket)
  })

  it.each([
    'unknown',
    '',
    '010.0.0.1',
    '1.2.3',
    '256.1.1.1',
    '0x7f.0.0.1',
    '1.2.3.4:80',
    '2001:db8::1::2',
    '12345::1',
    '::1]/x[',
  ])('puts %j in a junk bucket', (address) => {
    expect(clientBucket(address, undefined)).toBe(`junk:${JSON.stringify(address.trim())}`)
  })

  it('gives every spelling of one /64 one bucket (outside ::ffff:0:0/96)', () => {
    fc.assert(
      fc.property(
        groups
          .filter((g) => !isMapped(g))
          .chain((g) => fc.tuple(fc.constant(g), spelling(g), spelling(g))),
        ([g, a, b]) => {
          const bucket = clientBucket(a, undefined)
          expect(bucket).toBe(clientBucket(b, undefined))
          expect(bucket).toMatch(ADDRESS_BUCKET)
          // The same /64 with other low bits, spelled plainly.
          const sibling = [...g.slice(0, 4), 0, 0, 0, 1].map((x) => x.toString(16)).join(':')
          expect(bucket).toBe(clientBucket(sibling, undefined))
        }
      ),
      { numRuns: 500 }
    )
  })

  it('never gives two different /64s one bucket', () => {
    fc.assert(
      fc.property(
        fc
          .tuple(groups, groups)
          .chain(([g, h]) => fc.tuple(spelling(g), spelling(h), fc.constant(g), fc.constant(h))),
        ([a, b, g, h]) => {
          if (isMapped(g) || isMapped(h)) return
          const same = g.slice(0, 4).every((x, i) => x === h[i])
          expect(clientBucket(a, undefined) === clientBucket(b, undefined)).toBe(same)
        }
      ),
      { numRuns: 500 }
    )
  })

  it('counts IPv4 addresses one by one, mapped or not', () => {
    const octets = fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 })
    fc.assert(
      fc.property(octets, octets, (p, q) => {
        const [a, b] = [p.join('.'), q.join('.')]
        expect(clientBucket(a, undefined)).toBe(a)
        expect(clientBucket(`::ffff:${a}`, undefined)).toBe(a)
        expect(clientBucket(a, undefined) === clientBucket(b, undefined)).toBe(a === b)
      })
    )
  })

  it('never throws, and what is no address lands in junk, apart from every address', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.ipV4(),
          fc.ipV6(),
          fc.ipV4Extended()
        ),
        fc.option(fc.string(), { nil: undefined }),
        (address, worker) => {
          const bucket = clientBucket(address, worker)
          const junk = /^junk:("(?:[^"\\]|\\.)*")(.*)$/s.exec(bucket)
          const [base = '', rest = ''] = junk ? [junk[1], junk[2]] : bucket.split(/(?=\|)/)
          if (junk) expect(typeof JSON.parse(base)).toBe('string')
          else expect(base).toMatch(ADDRESS_BUCKET)
          expect(rest).toMatch(/^(?:\|worker:[a-z0-9_.?-]+)?$/)
        }
      ),
      { numRuns: 1000 }
    )
  })

  it('adds the CF-Worker zone to the address: tenants apart, forging splits only one address', () => {
    const shared = '2a06:98c0:3600::103'
    const a = clientBucket(shared, 'tenant-a.example')
    const b = clientBucket(shared, 'Tenant-B.example.')
    expect(a).toBe('2a06:98c0:3600::/64|worker:tenant-a.example')
    expect(b).toBe('2a06:98c0:3600::/64|worker:tenant-b.example')
    expect(clientBucket(shared, '  ')).toBe('2a06:98c0:3600::/64')
    expect(clientBucket(shared, 'not a zone')).toBe('2a06:98c0:3600::/64|worker:?')
    const zone = fc.oneof(fc.domain(), fc.string())
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), zone, zone, (p, q, z, y) => {
        const [bp, bq] = [clientBucket(p, z), clientBucket(q, y)]
        // A forged zone never moves a client into another address's bucket.
        if (p !== q) expect(bp).not.toBe(bq)
        expect(bp.startsWith(clientBucket(p, undefined))).toBe(true)
      })
    )
  })
})
