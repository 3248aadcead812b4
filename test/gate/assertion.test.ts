/**
 * The identity assertion and the key set origins verify it with, inside workerd: ES256 and EdDSA
 * tokens the (fake) origin receives verify against the gate's published JWKS, with hono/jwt's
 * verifyWithJwks and with plain Web Crypto; rotation, the HS256 form of earlier versions, the
 * audience override, bad keys, the endpoint itself, and the demo origin's own check.
 */
import fc from 'fast-check'
import { decode, sign, verify, verifyWithJwks } from 'hono/jwt'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { checkAssertion } from '../../demo-origin/src/assertion.ts'
import { jwsSignature } from '../../src/gate/assertion.ts'
import {
  jwkThumbprint,
  type PublicJwk,
  publicJwk,
  readAssertionKey,
  readPublishedKey,
  signingKey,
} from '../../src/gate/assertion-keys.ts'
import { ConfigError, readConfig } from '../../src/gate/config.ts'
import { JWKS_PATH } from '../../src/gate/jwks.ts'
import { client, type FakeOrigin, GATE, type GateFetch, gate, installPeers } from './fakes.ts'
import { type FakeClock, fakeClock } from './support/clock.ts'

let origin: FakeOrigin
let authority: { calls: number }
/** The gate signs and hono/jwt verifies by this clock (Date.now). */
let clock: FakeClock
beforeEach(() => {
  ;({ origin, authority } = installPeers())
  clock = fakeClock()
})
afterEach(() => {
  vi.restoreAllMocks()
})

/** The test environment's ASSERTION_KEY (vitest.config.ts): a plain secret, so HS256. */
const SECRET_OF_TEST_ENV = 'test-assertion-key-0123456789abcdef'

const baseVars = {
  REALM: 'r',
  ORIGIN_URL: 'https://origin.test',
  AUTHORITY_URL: 'https://authority.test/v1/verify',
  NONCE_KEY: 'k'.repeat(32),
  AUTHORITY_TOKEN: 't',
}

/** RFC 8037 A.1: the Ed25519 private key of the JOSE examples. */
const RFC8037_KEY = {
  kty: 'OKP',
  crv: 'Ed25519',
  d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
  x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
}

/** RFC 7515 A.3.1: the P-256 key of the ES256 example. */
const RFC7515_KEY = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
  d: 'jpsQnnGQmL-YBIffH1136cLNPvKTOjE2yTTK8LsZqVA',
}

type Jwk = Record<string, string>

/** A fresh private JWK with the members a key file holds (workerd's export adds empty ones). */
async function newJwk(kind: 'ES256' | 'EdDSA', extra: Jwk = {}): Promise<Jwk> {
  const algorithm = kind === 'ES256' ? { name: 'ECDSA', namedCurve: 'P-256' } : { name: 'Ed25519' }
  const pair = (await crypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair
  const { kty, crv, x, y, d } = (await crypto.subtle.exportKey(
    'jwk',
    pair.privateKey
  )) as JsonWebKey
  return JSON.parse(JSON.stringify({ kty, crv, x, y, d, ...extra }))
}

const publicHalf = ({ d: _, ...rest }: Jwk) => rest

/** alice logs in through `g`; the assertion the origin received. */
async function assertionFrom(g: GateFetch, path = '/private/me'): Promise<string> {
  const res = await client(g, 'alice', 'wonderland').fetch(path)
  expect(res.status).toBe(200)
  const token = origin.requests.at(-1)?.headers['x-auth-assertion']
  expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
  return token as string
}

async function keySet(g: GateFetch): Promise<PublicJwk[]> {
  const res = await g(new Request(GATE + JWKS_PATH))
  expect(res.status).toBe(200)
  return ((await res.json()) as { keys: PublicJwk[] }).keys
}

const verifyFromSet = (token: string, keys: PublicJwk[], aud = 'https://origin.test') =>
  verifyWithJwks(token, {
    keys,
    allowedAlgorithms: ['ES256', 'EdDSA'],
    verification: { aud, iss: 'gate-test' },
  })

/** Verification with Web Crypto alone: no JWT library between the published key and the bytes. */
async function verifiesWithWebCrypto(token: string, jwk: PublicJwk): Promise<boolean> {
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const algorithm =
    jwk.alg === 'ES256'
      ? { key: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } }
      : { key: { name: 'Ed25519' }, sign: { name: 'Ed25519' } }
  const key = await crypto.subtle.importKey('jwk', jwk, algorithm.key, false, ['verify'])
  const bytes = Uint8Array.from(atob(signature.replace(/-/g, '+').replace(/_/g, '/')), (c) =>
    c.charCodeAt(0)
  )
  return crypto.subtle.verify(
    algorithm.sign,
    key,
    bytes,
    new TextEncoder().encode(`${header}.${payload}`)
  )
}

describe('RFC vectors', () => {
  it('names a key by its RFC 7638 thumbprint (RFC 8037 A.3)', async () => {
    expect(await jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: RFC8037_KEY.x })).toBe(
      'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k'
    )
    const key = readAssertionKey(JSON.stringify(RFC8037_KEY), 'ASSERTION_KEY')
    expect((await signingKey(key)).kid).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k')
  })

  it('signs EdDSA as RFC 8037 A.4 does, byte for byte', async () => {
    const key = await signingKey(readAssertionKey(JSON.stringify(RFC8037_KEY), 'ASSERTION_KEY'))
    expect(
      await jwsSignature('eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc', key)
    ).toBe('hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg')
  })

  it('publishes a P-256 key that verifies the ES256 example of RFC 7515 A.3', async () => {
    const jwk = await publicJwk(readPublishedKey(JSON.stringify(RFC7515_KEY), 'K'))
    expect(jwk).toEqual({
      kty: 'EC',
      crv: 'P-256',
      x: RFC7515_KEY.x,
      y: RFC7515_KEY.y,
      kid: await jwkThumbprint(readPublishedKey(JSON.stringify(RFC7515_KEY), 'K').members),
      alg: 'ES256',
      use: 'sig',
    })
    const token =
      'eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q'
    expect(await verifiesWithWebCrypto(token, jwk)).toBe(true)
    expect(await verifiesWithWebCrypto(token.replace(/Q$/, 'g'), jwk)).toBe(false)
  })
})

describe('asymmetric assertions verify with the published key set alone', () => {
  it.each(['ES256', 'EdDSA'] as const)(
    '%s: the origin gets a token its JWKS verifies',
    async (alg) => {
      const jwk = await newJwk(alg)
      const g = gate({ ASSERTION_KEY: JSON.stringify(jwk) })
      const token = await assertionFrom(g)
      const keys = await keySet(g)
      expect(keys).toHaveLength(1)
      const [published] = keys as [PublicJwk]
      // The set holds the public half only.
      expect(JSON.stringify(keys)).not.toContain(jwk.d)
      expect(published).toEqual({ ...publicHalf(jwk), kid: published.kid, alg, use: 'sig' })

      const { header } = decode(token)
      expect(header).toEqual({ alg, typ: 'JWT', kid: published.kid })
      expect(published.kid).toBe(
        await jwkThumbprint(readPublishedKey(JSON.stringify(jwk), 'K').members)
      )
      const claims = await verifyFromSet(token, keys)
      expect(claims).toEqual({
        iss: 'gate-test',
        aud: 'https://origin.test',
        sub: 'alice',
        groups: ['admin'],
        realm: 'digest-gate',
        iat: clock.now(),
        exp: clock.now() + 60,
      })
      expect(await verifiesWithWebCrypto(token, published)).toBe(true)

      // Any other key, or a changed claim, fails.
      const other = await publicJwk(readPublishedKey(JSON.stringify(await newJwk(alg)), 'K'))
      await expect(verifyFromSet(token, [{ ...other, kid: published.kid }])).rejects.toThrow()
      const [h, , s] = token.split('.')
      const forged = `${h}.${btoa(JSON.stringify({ ...claims, sub: 'root' }))
        .replace(/=+$/, '')
        .replace(/\+/g, '-')
        .replace(/\//g, '_')}.${s}`
      await expect(verifyFromSet(forged, keys)).rejects.toThrow()
    }
  )

  it("uses the JWK's own kid when it has one", async () => {
    const g = gate({
      ASSERTION_KEY: JSON.stringify(await newJwk('ES256', { kid: '2026-11 gate' })),
    })
    const token = await assertionFrom(g)
    expect(decode(token).header.kid).toBe('2026-11 gate')
    expect((await keySet(g)).map((k) => k.kid)).toEqual(['2026-11 gate'])
    expect((await verifyFromSet(token, await keySet(g))).sub).toBe('alice')
  })

  it('reuses the token within a second: ECDSA signatures are random, so equality shows the cache', async () => {
    const g = gate({ ASSERTION_KEY: JSON.stringify(await newJwk('ES256')) })
    const alice = client(g, 'alice', 'wonderland')
    await alice.fetch('/private/a')
    await alice.fetch('/private/b')
    const [first, second] = origin.requests.map((r) => r.headers['x-auth-assertion'])
    expect(second).toBe(first)
    clock.advance(1)
    await alice.fetch('/private/c')
    expect(origin.requests.at(-1)?.headers['x-auth-assertion']).not.toBe(first)
  })

  it('rotation: tokens of the previous key still verify from the set, beside the new key', async () => {
    const old = await newJwk('ES256')
    const next = await newJwk('EdDSA')
    const before = gate({ ASSERTION_KEY: JSON.stringify(old) })
    const oldToken = await assertionFrom(before)
    const after = gate({
      ASSERTION_KEY: JSON.stringify(next),
      ASSERTION_KEY_PREVIOUS: JSON.stringify(old),
    })
    const newToken = await assertionFrom(after)
    const keys = await keySet(after)
    expect(keys.map((k) => k.alg)).toEqual(['EdDSA', 'ES256'])
    expect(decode(newToken).header.kid).toBe(keys[0]?.kid)
    expect(decode(oldToken).header.kid).toBe(keys[1]?.kid)
    expect((await verifyFromSet(oldToken, keys)).sub).toBe('alice')
    expect((await verifyFromSet(newToken, keys)).sub).toBe('alice')
  })

  it('takes the previous key as a public JWK too, and lists a key given twice once', async () => {
    const old = await newJwk('EdDSA')
    const current = JSON.stringify(await newJwk('ES256'))
    const withPublic = gate({
      ASSERTION_KEY: current,
      ASSERTION_KEY_PREVIOUS: JSON.stringify(publicHalf(old)),
    })
    expect((await keySet(withPublic)).map((k) => k.alg)).toEqual(['ES256', 'EdDSA'])
    const twice = gate({ ASSERTION_KEY: current, ASSERTION_KEY_PREVIOUS: current })
    expect(await keySet(twice)).toHaveLength(1)
  })

  it('publishes the previous key beside an HS256 one (rotating back to a shared secret)', async () => {
    const old = await newJwk('ES256')
    const g = gate({ ASSERTION_KEY_PREVIOUS: JSON.stringify(old) })
    expect((await keySet(g)).map((k) => k.x)).toEqual([old.x])
  })

  it('sets aud from ASSERTION_AUDIENCE', async () => {
    const g = gate({
      ASSERTION_KEY: JSON.stringify(await newJwk('ES256')),
      ASSERTION_AUDIENCE: ' https://app.example ',
    })
    const token = await assertionFrom(g)
    expect((await verifyFromSet(token, await keySet(g), 'https://app.example')).aud).toBe(
      'https://app.example'
    )
    await expect(verifyFromSet(token, await keySet(g))).rejects.toThrow(/aud/i)
  })
})

describe('HS256 with a plain secret, as before', () => {
  it('signs HS256 without a kid, byte for byte what hono/jwt signs, and publishes nothing', async () => {
    const g = gate({ ASSERTION_KEY: SECRET_OF_TEST_ENV })
    const token = await assertionFrom(g)
    expect(decode(token).header).toEqual({ alg: 'HS256', typ: 'JWT' })
    const claims = await verify(token, SECRET_OF_TEST_ENV, {
      alg: 'HS256',
      aud: 'https://origin.test',
    })
    expect(claims.sub).toBe('alice')
    expect(await sign(claims, SECRET_OF_TEST_ENV, 'HS256')).toBe(token)

    const res = await g(new Request(GATE + JWKS_PATH))
    expect(res.status).toBe(404)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toMatchObject({ error: 'not_found', message: expect.any(String) })
  })

  it('keeps the secret byte for byte (no trimming)', () => {
    expect(readAssertionKey(' s3cret ', 'ASSERTION_KEY')).toEqual({
      alg: 'HS256',
      secret: ' s3cret ',
      variable: 'ASSERTION_KEY',
    })
  })
})

describe('the key set endpoint', () => {
  it('is public, cacheable and never asks the authority or the origin', async () => {
    const g = gate({ ASSERTION_KEY: JSON.stringify(await newJwk('EdDSA')) })
    for (const method of ['GET', 'HEAD']) {
      const res = await g(new Request(GATE + JWKS_PATH, { method }))
      expect(res.status, method).toBe(200)
      expect(res.headers.get('cache-control')).toBe('public, max-age=300')
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      expect(res.headers.get('www-authenticate')).toBeNull()
    }
    expect(authority.calls).toBe(0)
    expect(origin.requests).toHaveLength(0)
  })

  it('stays public whatever the route rules say, and answers other methods 405', async () => {
    const g = gate({
      ASSERTION_KEY: JSON.stringify(await newJwk('ES256')),
      ROUTES: '[{"path":"/*","groups":["admin"]}]',
    })
    expect((await g(new Request(GATE + JWKS_PATH))).status).toBe(200)
    const post = await g(new Request(GATE + JWKS_PATH, { method: 'POST', body: 'x' }))
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD')
    expect(origin.requests).toHaveLength(0)
  })
})

describe('bad keys are configuration errors by name, never quoting the key', () => {
  const D = 'c2VjcmV0LXNjYWxhci1ub3QtdG8tYmUtbG9nZ2VkLTA'
  const ec = (extra: object) => JSON.stringify({ ...RFC7515_KEY, d: D, ...extra })

  it.each([
    ['a PEM key', `-----BEGIN PRIVATE KEY-----\n${D}\n-----END PRIVATE KEY-----`],
    ['not JSON', `{"kty":"EC","d":"${D}"`],
    ['an array', `[{"d":"${D}"}]`],
    ['a key set', JSON.stringify({ keys: [{ ...RFC7515_KEY, d: D }] })],
    ['a public JWK', JSON.stringify(publicHalf(RFC7515_KEY))],
    ['an RSA key', JSON.stringify({ kty: 'RSA', n: D, e: 'AQAB', d: D })],
    ['a P-384 key', ec({ crv: 'P-384' })],
    ['a symmetric JWK', JSON.stringify({ kty: 'oct', k: D })],
    ['an X25519 key', JSON.stringify({ ...RFC8037_KEY, crv: 'X25519', d: D })],
    ['another alg', ec({ alg: 'RS256' })],
    ['an encryption key', ec({ use: 'enc' })],
    ['an empty kid', ec({ kid: '' })],
    ['a short x', ec({ x: 'AAAA' })],
    ['a d that is not base64url', ec({ d: `${D.slice(0, 42)}=` })],
    ['a number for y', ec({ y: 5 })],
  ])('%s', (_, value) => {
    let error: unknown
    try {
      readConfig({ ...baseVars, ASSERTION_KEY: value }, false)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as Error).message).toMatch(/^ASSERTION_KEY\b/)
    expect((error as Error).message).not.toContain(D.slice(0, 16))
  })

  it('ASSERTION_KEY_PREVIOUS must be publishable, and not another key under the same kid', async () => {
    expect(() =>
      readConfig({ ...baseVars, ASSERTION_KEY_PREVIOUS: 'plain-secret' }, false)
    ).toThrow(/^ASSERTION_KEY_PREVIOUS must be a JWK/)
    const a = JSON.stringify(await newJwk('ES256', { kid: 'k1' }))
    const b = JSON.stringify(await newJwk('ES256', { kid: 'k1' }))
    expect(() =>
      readConfig({ ...baseVars, ASSERTION_KEY: a, ASSERTION_KEY_PREVIOUS: b }, false)
    ).toThrow(ConfigError)
  })

  it('a key whose halves do not match fails as a ConfigError once imported, answered 500', async () => {
    // workerd imports this Ed25519 JWK: only the probe signature shows x is not d's.
    const mismatched = { ...RFC8037_KEY, x: (await newJwk('EdDSA')).x }
    const key = readAssertionKey(JSON.stringify(mismatched), 'ASSERTION_KEY')
    await expect(signingKey(key)).rejects.toThrow(ConfigError)
    // A point off the curve: its public half cannot even be published.
    const offCurve = { ...RFC7515_KEY, y: (await newJwk('ES256')).y }
    const off = readPublishedKey(JSON.stringify(offCurve), 'ASSERTION_KEY')
    await expect(publicJwk(off)).rejects.toThrow(ConfigError)

    const errors = vi.spyOn(console, 'error').mockImplementation(() => {})
    const g = gate({ ASSERTION_KEY: JSON.stringify(mismatched) })
    const res = await client(g, 'alice', 'wonderland').fetch('/private/me')
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ error: 'misconfigured' })
    const jwks = await gate({ ASSERTION_KEY: JSON.stringify(offCurve) })(
      new Request(GATE + JWKS_PATH)
    )
    expect(jwks.status).toBe(500)
    const logged = errors.mock.calls.map((c) => String(c[0])).join('\n')
    expect(logged).toContain('digest-gate.config_error')
    expect(logged).toContain('ASSERTION_KEY')
    expect(logged).not.toContain(RFC8037_KEY.d)
    expect(origin.requests).toHaveLength(0)
  })

  it('reads any value into a key or a ConfigError, never another error (fast-check)', () => {
    const b64 = fc.oneof(
      fc.constantFrom(RFC7515_KEY.x, RFC7515_KEY.y, RFC8037_KEY.x, D),
      fc.string()
    )
    const jwkLike = fc.record(
      {
        kty: fc.constantFrom('EC', 'OKP', 'RSA', 'oct', '', 'ec'),
        crv: fc.constantFrom('P-256', 'Ed25519', 'P-384', 'X25519', 'toString'),
        x: b64,
        y: b64,
        d: fc.oneof(fc.constant(D), b64),
        alg: fc.constantFrom('ES256', 'EdDSA', 'HS256', 'none'),
        use: fc.constantFrom('sig', 'enc'),
        kid: fc.oneof(fc.string(), fc.integer()),
      },
      { requiredKeys: [] }
    )
    const value = fc.oneof(
      fc.string(),
      fc.json(),
      jwkLike.map((j) => JSON.stringify(j)),
      jwkLike.map((j) => ` ${JSON.stringify(j)}\n`)
    )
    fc.assert(
      fc.property(value, (v) => {
        for (const read of [readAssertionKey, readPublishedKey]) {
          try {
            const key = read(v, 'ASSERTION_KEY')
            expect(['HS256', 'ES256', 'EdDSA']).toContain(key.alg)
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError)
            expect((err as Error).message).not.toContain(D)
          }
        }
      }),
      { numRuns: 2000 }
    )
  })
})

describe("the demo origin verifies with the gate's key set alone", () => {
  /** The gate answers the demo origin's key set fetches at `<host>.gate.test`. */
  function serveGate(g: GateFetch) {
    const peers = vi.mocked(globalThis.fetch).getMockImplementation()
    vi.mocked(globalThis.fetch).mockImplementation(async (input, init) => {
      // Read the URL without new Request(input): that would take a request's body.
      const url = new URL(input instanceof Request ? input.url : String(input))
      if (url.host.endsWith('gate.test')) return g(new Request(input as RequestInfo, init))
      return (peers as typeof fetch)(input, init)
    })
  }

  it('verified: true with the claims; false for a forgery, another audience or HS256', async () => {
    const g = gate({ ASSERTION_KEY: JSON.stringify(await newJwk('ES256')) })
    serveGate(g)
    const token = await assertionFrom(g)
    const o = { gateUrl: 'https://demo1.gate.test', audience: 'https://origin.test' }
    expect(await checkAssertion(token, o)).toEqual({
      verified: true,
      claims: expect.objectContaining({ sub: 'alice', groups: ['admin'], iss: 'gate-test' }),
    })
    expect(await checkAssertion(null, o)).toBeNull()
    const tampered = `${token.slice(0, -4)}AAAA`
    expect(await checkAssertion(tampered, o)).toMatchObject({ verified: false })
    expect(await checkAssertion(token, { ...o, audience: 'https://elsewhere.test' })).toMatchObject(
      { verified: false, error: expect.stringMatching(/aud/i) }
    )
    const hs = await assertionFrom(gate({ ASSERTION_KEY: SECRET_OF_TEST_ENV }))
    expect(await checkAssertion(hs, o)).toMatchObject({
      verified: false,
      error: expect.stringMatching(/JwtHeaderRequiresKid/),
    })
    expect(await checkAssertion(token, { ...o, gateUrl: undefined })).toMatchObject({
      verified: false,
    })
  })

  it('fetches the set once, and again for a kid it lacks (a rotation)', async () => {
    const old = await newJwk('ES256')
    const next = await newJwk('EdDSA')
    let current = gate({ ASSERTION_KEY: JSON.stringify(old) })
    let fetches = 0
    serveGate((req) => {
      fetches++
      return current(req)
    })
    const o = { gateUrl: 'https://demo2.gate.test', audience: 'https://origin.test' }
    const alice = client((r) => current(r), 'alice', 'wonderland')
    const ask = async () => {
      await alice.fetch('/private/me')
      return checkAssertion(origin.requests.at(-1)?.headers['x-auth-assertion'] ?? '', o)
    }
    expect(await ask()).toMatchObject({ verified: true })
    expect(await ask()).toMatchObject({ verified: true })
    expect(fetches).toBe(1)
    current = gate({
      ASSERTION_KEY: JSON.stringify(next),
      ASSERTION_KEY_PREVIOUS: JSON.stringify(old),
    })
    // Within the cooldown the new kid is not fetched for; after it, it is.
    clock.advance(1)
    expect(await ask()).toMatchObject({ verified: false })
    expect(fetches).toBe(1)
    clock.advance(5)
    expect(await ask()).toMatchObject({ verified: true })
    expect(fetches).toBe(2)
  })
})
