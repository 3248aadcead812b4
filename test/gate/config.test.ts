/** Configuration, route rules, the uri check and the authority's answers: the gate's own parsers. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { httpAuthority, parseAnswer } from '../../src/gate/authority-client.ts'
import { ConfigError, keyId, readConfig } from '../../src/gate/config.ts'
import { encodeHeaderValue } from '../../src/gate/forward.ts'
import { DEFAULTS } from '../../src/gate/options.ts'
import { uriMatchesTarget } from '../../src/gate/request-path.ts'
import { resolveOptions } from '../../src/gate/resolve-options.ts'
import { isAllowed, matchRoute, parseRoutes } from '../../src/gate/routes.ts'

const base = {
  REALM: 'r',
  ORIGIN_URL: 'https://origin.test',
  AUTHORITY_URL: 'https://authority.test/v1/verify',
  NONCE_KEY: 'k'.repeat(32),
  AUTHORITY_TOKEN: 't',
}

describe('readConfig', () => {
  it('leaves unset variables to the one table of defaults', () => {
    const c = readConfig(base, false)
    // Only what was set (and the required keys) is read: nothing has a default of its own here.
    expect(Object.keys(c.auth).sort()).toEqual(['nonceKeys', 'realm'])
    const o = resolveOptions({
      ...c.auth,
      authority: { verify: async () => ({ result: 'fault', reason: 'x' }) },
      brakes: false,
    })
    expect(o).toMatchObject({
      serverId: 'gate',
      algorithms: ['SHA-256', 'MD5'],
      qop: ['auth'],
      userhash: false,
      nonceLifetime: 300,
      replay: 'window',
      windowSize: 128,
      idleTimeout: 1800,
      maxLifetime: 43_200,
      revalidateAfter: 600,
      revalidateGrace: 3600,
      maxAuthIntBody: 1024 * 1024,
      binding: 'none',
    })
    // The Durable Object contexts get it with every call.
    expect(o.policy.releaseAfter).toBe(false)
    expect(c.brakes).toEqual({ policy: {} })
    expect(c.forward.headers).toEqual({
      user: 'x-auth-user',
      groups: 'x-auth-groups',
      assertion: 'x-auth-assertion',
    })
    expect(c.forward.timeoutMs).toBe(DEFAULTS.worker.originTimeoutMs)
    expect(c.authority.timeoutMs).toBe(DEFAULTS.worker.authorityTimeoutMs)
  })

  it('reads each set variable into its option', () => {
    const c = readConfig(
      {
        ...base,
        SERVER_ID: 'g1',
        ALGORITHMS: 'MD5',
        QOP: 'none',
        USERHASH: 'true',
        NONCE_LIFETIME: '60',
        NEXTNONCE_LEAD: '0',
        REPLAY_MODE: 'strict',
        REPLAY_WINDOW: '64',
        VALIDATE_URI: 'false',
        IDLE_TIMEOUT: '5',
        MAX_LIFETIME: '6',
        REVALIDATE_AFTER: '7',
        REVALIDATE_GRACE: '0',
        AUTH_INT_MAX_BODY: '9',
        CONTEXT_RELEASE_AFTER: 'off',
        BINDING: 'address',
        BRAKES: 'false',
      },
      false
    )
    expect(c.auth).toMatchObject({
      serverId: 'g1',
      algorithms: ['MD5'],
      qop: [],
      userhash: true,
      nonceLifetime: 60,
      nextnonceLead: 0,
      replay: 'strict',
      windowSize: 64,
      validateUri: false,
      idleTimeout: 5,
      maxLifetime: 6,
      revalidateAfter: 7,
      revalidateGrace: 0,
      maxAuthIntBody: 9,
      contextReleaseAfter: false,
      binding: 'address',
    })
    expect(readConfig({ ...base, CONTEXT_RELEASE_AFTER: '30' }, false).auth).toMatchObject({
      contextReleaseAfter: 30,
    })
    expect(c.brakes).toBe(false)
    expect(c.forward.issuer).toBe('g1')
  })

  it.each([
    [{ NONCE_KEY: undefined }, /NONCE_KEY/],
    [{ NONCE_KEY: 'short' }, /NONCE_KEY/],
    [{ ALGORITHMS: 'SHA-1' }, /ALGORITHMS/],
    [{ QOP: 'auth-conf' }, /QOP/],
    [{ REPLAY_MODE: 'sometimes' }, /REPLAY_MODE/],
    [{ REPLAY_WINDOW: '8' }, /REPLAY_WINDOW/],
    [{ NONCE_LIFETIME: '-1' }, /NONCE_LIFETIME/],
    [{ USERHASH: 'maybe' }, /USERHASH/],
    [{ CONTEXT_RELEASE_AFTER: '1' }, /CONTEXT_RELEASE_AFTER/],
    [{ CONTEXT_RELEASE_AFTER: 'never' }, /CONTEXT_RELEASE_AFTER/],
    [{ ORIGIN_URL: 'ftp://x' }, /ORIGIN_URL/],
    [{ AUTHORITY_URL: undefined }, /AUTHORITY/],
    [{ ROUTES: '{' }, /ROUTES/],
    [{ IDENTITY_HEADER_USER: 'bad header' }, /IDENTITY_HEADER_USER/],
  ])('refuses %j naming the variable', (patch, message) => {
    expect(() => readConfig({ ...base, ...patch }, false)).toThrow(message)
  })

  it('accepts a service binding instead of AUTHORITY_URL', () => {
    expect(readConfig({ ...base, AUTHORITY_URL: '' }, true).authority.url).toBeUndefined()
  })

  it('reads vars that arrive typed (numbers, booleans, JSON) as their text', () => {
    const c = readConfig(
      { ...base, NONCE_LIFETIME: 60, USERHASH: true, ROUTES: [{ path: '/*', access: 'public' }] },
      false
    )
    expect(c.auth.nonceLifetime).toBe(60)
    expect(c.auth.userhash).toBe(true)
    expect(c.routes).toEqual([{ path: '/*', access: 'public' }])
  })

  it('throws nothing but ConfigError, whatever the vars hold', () => {
    const value = fc.oneof(
      fc.string(),
      fc.integer(),
      fc.boolean(),
      fc.constant(undefined),
      fc.json()
    )
    const keys = [
      'ALGORITHMS',
      'QOP',
      'USERHASH',
      'NONCE_LIFETIME',
      'REPLAY_MODE',
      'ROUTES',
      'SERVER_ID',
      'ORIGIN_URL',
    ]
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), value), (vars) => {
        try {
          readConfig({ ...base, ...vars }, false)
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError)
        }
      }),
      { numRuns: 1000 }
    )
  })

  it('derives a stable key id per secret, so rotation needs no extra variable', () => {
    expect(keyId('a'.repeat(32))).toBe(keyId('a'.repeat(32)))
    expect(keyId('a'.repeat(32))).toBeGreaterThanOrEqual(0)
    expect(keyId('a'.repeat(32))).toBeLessThan(256)
  })
})

describe('routes', () => {
  const rules = parseRoutes(
    '[{"path":"/public/*","access":"public"},{"path":"/admin/*","groups":["admin"]},{"path":"/exact","access":"public"},{"path":"/*","access":"authenticated"}]'
  )

  it('matches first rule, prefix and exact', () => {
    expect(matchRoute(rules, '/public/a/b')).toMatchObject({ access: 'public' })
    expect(matchRoute(rules, '/admin')).toMatchObject({ groups: ['admin'] })
    expect(matchRoute(rules, '/admin/x')).toMatchObject({ groups: ['admin'] })
    expect(matchRoute(rules, '/exact')).toMatchObject({ access: 'public' })
    expect(matchRoute(rules, '/exact/more')).toMatchObject({ access: 'authenticated' })
    expect(matchRoute(rules, '/publicity')).toMatchObject({ access: 'authenticated' })
  })

  it('requires authentication where no rule matches', () => {
    expect(matchRoute([], '/x')).toMatchObject({ access: 'authenticated' })
  })

  it('grants a group rule to members only', () => {
    const admin = matchRoute(rules, '/admin/x')
    expect(isAllowed(admin, ['admin'])).toBe(true)
    expect(isAllowed(admin, ['staff'])).toBe(false)
    expect(isAllowed(matchRoute(rules, '/x'), [])).toBe(true)
  })

  it('parses or refuses with an Error naming the rule, for any JSON', () => {
    fc.assert(
      fc.property(fc.json(), (json) => {
        try {
          parseRoutes(json)
        } catch (err) {
          expect(err).toBeInstanceOf(Error)
          expect((err as Error).message).toMatch(/ROUTES/)
        }
      }),
      { numRuns: 1000 }
    )
  })
})

describe('uri check', () => {
  const url = { path: '/dir/index.html', search: '?a=1&b=%20x' }

  it('accepts the origin-form and the absolute-form of the target', () => {
    expect(uriMatchesTarget('/dir/index.html?a=1&b=%20x', url)).toBe(true)
    expect(uriMatchesTarget('https://gate.test/dir/index.html?a=1&b=%20x', url)).toBe(true)
    expect(uriMatchesTarget('/dir/index.html?a=1&b= x', url)).toBe(true)
  })

  it('refuses another target, or the path without its query', () => {
    expect(uriMatchesTarget('/dir/other.html?a=1&b=%20x', url)).toBe(false)
    expect(uriMatchesTarget('/dir/index.html', url)).toBe(false)
  })

  it('an empty query (`/x?`) is no query, on either side', () => {
    // A client asked for `/x?` sends that uri while the target reads as `/x` (pathAndQuery).
    expect(uriMatchesTarget('/dir/index.html?', { path: '/dir/index.html', search: '' })).toBe(true)
    expect(uriMatchesTarget('https://gate.test/dir/?', { path: '/dir/', search: '' })).toBe(true)
    expect(uriMatchesTarget('/dir/index.html?', url)).toBe(false)
  })

  it('never throws on arbitrary directives', () => {
    fc.assert(fc.property(fc.string(), (s) => typeof uriMatchesTarget(s, url) === 'boolean'))
  })
})

describe('authority answers', () => {
  const ok = {
    result: 'ok',
    principal: { name: 'alice', groups: ['admin'] },
    sessionKey: 'a'.repeat(64),
    algorithm: 'SHA-256',
  }

  it('accepts exactly the v1 verdicts', () => {
    expect(parseAnswer(ok)).toEqual(ok)
    expect(parseAnswer({ result: 'denied', reason: 'logon_denied' })).toEqual({
      result: 'denied',
      reason: 'logon_denied',
    })
    expect(parseAnswer({ ...ok, sessionKey: 'zz' })).toBeUndefined()
    expect(parseAnswer({ ...ok, algorithm: 'SHA-1' })).toBeUndefined()
    expect(parseAnswer({ ...ok, principal: { name: '', groups: [] } })).toBeUndefined()
    expect(parseAnswer({ result: 'denied', reason: 'nope' })).toBeUndefined()
  })

  it('never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        (v) => parseAnswer(v) === undefined || typeof parseAnswer(v) === 'object'
      )
    )
  })

  it('sends through a service binding when given one, with the bearer token', async () => {
    const seen: Request[] = []
    const authority = httpAuthority({
      url: 'https://authority/v1/verify',
      token: 'tok',
      fetcher: {
        fetch: async (req: Request) => {
          seen.push(req)
          return Response.json({ result: 'denied', reason: 'logon_denied' })
        },
      },
    })
    const answer = await authority.verify({
      version: 1,
      serverId: 's',
      method: 'GET',
      directives: {
        username: 'u',
        userhash: false,
        realm: 'r',
        nonce: 'n',
        uri: '/',
        response: 'x',
      },
    })
    expect(answer).toEqual({ result: 'denied', reason: 'logon_denied' })
    expect(seen[0]?.headers.get('authorization')).toBe('Bearer tok')
  })
})

describe('identity header values', () => {
  it('percent-encodes non-ASCII, commas, percent signs and controls only', () => {
    expect(encodeHeaderValue('alice')).toBe('alice')
    expect(encodeHeaderValue('Jäsøn Doe')).toBe('J%C3%A4s%C3%B8n Doe')
    expect(encodeHeaderValue('a,b%c\n')).toBe('a%2Cb%25c%0A')
  })

  it('always yields a valid header value', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const v = encodeHeaderValue(s)
        expect(v).toMatch(/^[\x20-\x7e]*$/)
        expect(() => new Headers({ x: v })).not.toThrow()
      })
    )
  })
})
