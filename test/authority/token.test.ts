import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type GateTokenClaims,
  MAX_EXPIRES_AT,
  MAX_TOKEN_LENGTH,
  MAX_TOKEN_REALM_BYTES,
  MAX_TOKEN_REALMS,
  mintGateToken,
  verifyGateToken,
} from '../../src/authority-protocol/token.ts'
import { decodeBase64Url, encodeBase64Url } from '../../src/digest/base64url.ts'

const SECRET = 'a-secret-of-the-authority'
const NOW = 1_800_000_000
const CLAIMS: GateTokenClaims = {
  serverId: 'gate-local',
  realms: ['digest-gate'],
  expiresAt: NOW + 3600,
}

async function hmac(secret: string, input: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign']
  )
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, input))
}

function concat(...parts: (Uint8Array | number[] | string)[]): Uint8Array<ArrayBuffer> {
  const bytes = parts.map((p) =>
    typeof p === 'string' ? new TextEncoder().encode(p) : Uint8Array.from(p)
  )
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0))
  let at = 0
  for (const b of bytes) {
    out.set(b, at)
    at += b.length
  }
  return out
}

/** The payload layout, written independently of token.ts. */
function payloadOf(claims: GateTokenClaims): Uint8Array {
  const expiry = new Uint8Array(4)
  new DataView(expiry.buffer).setUint32(0, claims.expiresAt)
  const prefixed = (text: string) => {
    const bytes = new TextEncoder().encode(text)
    return concat([bytes.length], bytes)
  }
  return concat(
    expiry,
    prefixed(claims.serverId),
    [claims.realms.length],
    ...claims.realms.map(prefixed)
  )
}

/** Valid claims: any serverId and realms within the bounds, any expiry. */
const utf8Text = (maxBytes: number) =>
  fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
    .filter((text) => new TextEncoder().encode(text).length <= maxBytes)
const claimsArbitrary = fc.record({
  serverId: utf8Text(64),
  realms: fc.uniqueArray(utf8Text(MAX_TOKEN_REALM_BYTES), {
    minLength: 1,
    maxLength: MAX_TOKEN_REALMS,
  }),
  expiresAt: fc.integer({ min: 1, max: MAX_EXPIRES_AT }),
})

describe('gate tokens (format v2)', () => {
  it('match the documented example (computed independently)', async () => {
    const claims = { serverId: 'gate-local', realms: ['digest-gate'], expiresAt: 1893456000 }
    const token = await mintGateToken('example-secret-do-not-use', claims)
    expect(token).toBe(
      'v2.cNvYgApnYXRlLWxvY2FsAQtkaWdlc3QtZ2F0ZQ.7csZBeOIXcywtP4n1vpDCORnHTSTUsgq84Jdk-XT06s'
    )
    // expiresAt 2030-01-01T00:00:00Z = 0x70dbd880, then length-prefixed serverId and realms.
    const payload = concat([0x70, 0xdb, 0xd8, 0x80, 10], 'gate-local', [1, 11], 'digest-gate')
    const mac = await hmac('example-secret-do-not-use', concat('digest-gate token v2:', payload))
    expect(token).toBe(`v2.${encodeBase64Url(payload)}.${encodeBase64Url(mac)}`)
    expect(await verifyGateToken('example-secret-do-not-use', token, 1893455999)).toEqual({
      kind: 'valid',
      claims,
    })
  })

  it('round-trip any valid claims, and only under their secret', async () => {
    await fc.assert(
      fc.asyncProperty(claimsArbitrary, async (claims) => {
        const token = await mintGateToken(SECRET, claims)
        expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH)
        expect(decodeBase64Url(token.split('.')[1] as string)).toEqual(payloadOf(claims))
        expect(await verifyGateToken(SECRET, token, claims.expiresAt - 1)).toEqual({
          kind: 'valid',
          claims,
        })
        expect(await verifyGateToken(`${SECRET}x`, token, claims.expiresAt - 1)).toEqual({
          kind: 'invalid',
          reason: 'forged',
        })
      }),
      { numRuns: 100 }
    )
  })

  it('expire at expiresAt, and say so only for an authentic token', async () => {
    const token = await mintGateToken(SECRET, CLAIMS)
    expect((await verifyGateToken(SECRET, token, CLAIMS.expiresAt - 1)).kind).toBe('valid')
    expect(await verifyGateToken(SECRET, token, CLAIMS.expiresAt)).toEqual({
      kind: 'invalid',
      reason: 'expired',
      claims: CLAIMS,
    })
    // Checked against the clock by default: a token that expired a second ago is refused.
    const past = await mintGateToken(SECRET, {
      ...CLAIMS,
      expiresAt: Math.floor(Date.now() / 1000) - 1,
    })
    expect(await verifyGateToken(SECRET, past)).toMatchObject({ reason: 'expired' })
    expect(await verifyGateToken('another', past)).toEqual({ kind: 'invalid', reason: 'forged' })
  })

  it('refuse any change to a single character', async () => {
    const token = await mintGateToken(SECRET, { ...CLAIMS, realms: ['digest-gate', 'other'] })
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: token.length - 1 }),
        fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.'),
        async (at, char) => {
          fc.pre(token[at] !== char)
          const altered = token.slice(0, at) + char + token.slice(at + 1)
          expect((await verifyGateToken(SECRET, altered, NOW)).kind).toBe('invalid')
        }
      ),
      { numRuns: 300 }
    )
  })

  it('refuse one token’s claims with another’s MAC', async () => {
    const a = (await mintGateToken(SECRET, CLAIMS)).split('.')
    const b = (await mintGateToken(SECRET, { ...CLAIMS, realms: ['elsewhere'] })).split('.')
    expect(await verifyGateToken(SECRET, `v2.${b[1]}.${a[2]}`, NOW)).toEqual({
      kind: 'invalid',
      reason: 'forged',
    })
  })

  it('are bound to their label: a MAC under the v1 label does not verify', async () => {
    const [, payload] = (await mintGateToken(SECRET, CLAIMS)).split('.') as [string, string]
    const bytes = decodeBase64Url(payload) as Uint8Array
    const v1Mac = await hmac(SECRET, concat('digest-gate token v1:', bytes))
    expect(await verifyGateToken(SECRET, `v2.${payload}.${encodeBase64Url(v1Mac)}`, NOW)).toEqual({
      kind: 'invalid',
      reason: 'forged',
    })
  })

  it('recognise format v1 (serverId only, no expiry) as outdated', async () => {
    const v1 = 'v1.Z2F0ZS1sb2NhbA.Lz-TnS130JVUiQGL9q8Oc0umXhpD6FC6RUvh-QLNHGw'
    expect(await verifyGateToken('example-secret-do-not-use', v1)).toEqual({
      kind: 'invalid',
      reason: 'outdated_format',
    })
  })

  it('refuse claims that cannot be minted', async () => {
    const bad: Partial<GateTokenClaims>[] = [
      { serverId: '' },
      { serverId: 'x'.repeat(65) },
      { serverId: '\ud800' },
      { realms: [] },
      { realms: Array.from({ length: MAX_TOKEN_REALMS + 1 }, (_, i) => `r${i}`) },
      { realms: ['a', 'a'] },
      { realms: [''] },
      { realms: ['é'.repeat(128)] }, // 256 bytes
      { realms: ['\udc00'] },
      { expiresAt: 0 },
      { expiresAt: MAX_EXPIRES_AT + 1 },
      { expiresAt: NOW + 0.5 },
      { expiresAt: Number.NaN },
    ]
    for (const change of bad) {
      await expect(mintGateToken(SECRET, { ...CLAIMS, ...change })).rejects.toThrow(RangeError)
    }
    await expect(mintGateToken('', CLAIMS)).rejects.toThrow(RangeError)
    // The largest claims fit in a Workers secret (5 KiB) and under the verifier's bound.
    const largest = await mintGateToken(SECRET, {
      serverId: 'g'.repeat(64),
      realms: Array.from({ length: MAX_TOKEN_REALMS }, (_, i) => `${i}`.padEnd(255, 'r')),
      expiresAt: MAX_EXPIRES_AT,
    })
    expect(largest.length).toBe(MAX_TOKEN_LENGTH)
    expect(largest.length).toBeLessThan(5 * 1024)
    expect((await verifyGateToken(SECRET, largest, NOW)).kind).toBe('valid')
  })

  it('never throw on, and never accept, arbitrary text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (text) => {
        for (const candidate of [text, `v2.${text}`, `v1.${text}`, `v2.${text}.${text}`]) {
          expect((await verifyGateToken(SECRET, candidate, NOW)).kind).toBe('invalid')
        }
      }),
      { numRuns: 300 }
    )
  })

  it('decode arbitrary authentic payloads canonically: malformed, or exactly re-minted', async () => {
    // MAC'd by the secret's holder, so only the payload parser stands between bytes and claims.
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }),
          // Genuine payloads, one byte of which is changed below: lengths and counts that lie.
          claimsArbitrary.map(payloadOf)
        ),
        fc.nat(),
        fc.nat(255),
        async (payload, at, value) => {
          const bytes = Uint8Array.from(payload)
          if (bytes.length > 0) bytes[at % bytes.length] = value
          const mac = await hmac(SECRET, concat('digest-gate token v2:', bytes))
          const token = `v2.${encodeBase64Url(bytes)}.${encodeBase64Url(mac)}`
          const check = await verifyGateToken(SECRET, token, 0)
          if (check.kind === 'valid') expect(await mintGateToken(SECRET, check.claims)).toBe(token)
          else expect(check.reason).toBe('malformed')
        }
      ),
      { numRuns: 300 }
    )
  })
})
