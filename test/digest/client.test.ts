/** The Digest client against an in-test server that issues challenges and verifies responses. */
import { describe, expect, it } from 'vitest'
import {
  baseHA1,
  computeResponse,
  computeRspauth,
  hashOf,
  userhash as userhashOf,
} from '../../src/digest/algorithms.ts'
import { createDigestClient, RspauthMismatchError } from '../../src/digest/client.ts'
import { hashHex } from '../../src/digest/hash.ts'
import {
  formatAuthenticationInfo,
  formatChallenge,
  parseAuthorization,
} from '../../src/digest/header.ts'
import type { AlgorithmName, DigestCredentials, Qop } from '../../src/digest/types.ts'

const ORIGIN = 'https://api.test'

interface ServerOptions {
  realm?: string
  /** One challenge per entry, in this order; null = no algorithm directive (MD5). */
  algorithms?: (AlgorithmName | null)[]
  /** Offered qop; undefined = RFC 2069 form. */
  qop?: Qop[] | undefined
  users?: Record<string, string>
  userhash?: boolean
  /** Verbatim challenge texts instead of generated ones; `{nonce}` is replaced. */
  challengeTemplates?: string[]
  /** After this many verified uses a nonce is answered with stale=true. */
  staleAfterUses?: number
  /** Send nextnonce in Authentication-Info after every verified request. */
  nextnonce?: boolean
  rspauth?: 'good' | 'bad' | 'none'
  /** For auth-int: which body the server's rspauth hashes. */
  rspauthBody?: 'response' | 'request'
}

interface LogEntry {
  method: string
  path: string
  body: string
  status: number
  credentials?: DigestCredentials
  stale?: boolean
}

const RESPONSE_TEXT = 'secret payload'

/** A small Digest server: just enough of RFC 7616 to judge the client. */
class FakeServer {
  readonly log: LogEntry[] = []
  private readonly opts: Required<Omit<ServerOptions, 'qop' | 'challengeTemplates'>> & ServerOptions
  private readonly nonces = new Map<string, { uses: number; seen: Set<number> }>()
  private nonceCounter = 0

  constructor(opts: ServerOptions = {}) {
    this.opts = {
      realm: 'http-auth@example.org',
      algorithms: ['SHA-256', 'MD5'],
      users: { Mufasa: 'Circle of Life' },
      userhash: false,
      staleAfterUses: Number.POSITIVE_INFINITY,
      nextnonce: false,
      rspauth: 'good',
      rspauthBody: 'response',
      ...opts,
      qop: 'qop' in opts ? opts.qop : ['auth'],
    }
  }

  /** Forget every nonce, as a restarted server would. */
  forget(): void {
    this.nonces.clear()
  }

  get statuses(): number[] {
    return this.log.map((e) => e.status)
  }

  private mint(): string {
    const nonce = `nonce-${++this.nonceCounter}-${crypto.randomUUID()}`
    this.nonces.set(nonce, { uses: 0, seen: new Set() })
    return nonce
  }

  private challenge(entry: LogEntry, stale = false): Response {
    const nonce = this.mint()
    const headers = new Headers()
    if (this.opts.challengeTemplates !== undefined) {
      for (const t of this.opts.challengeTemplates) {
        headers.append('WWW-Authenticate', t.replace('{nonce}', nonce))
      }
    } else {
      headers.append('WWW-Authenticate', 'Basic realm="legacy"')
      for (const algorithm of this.opts.algorithms) {
        const text = formatChallenge({
          realm: this.opts.realm,
          nonce,
          opaque: 'opaque-1',
          ...(algorithm === null ? {} : { algorithm }),
          ...(this.opts.qop === undefined ? {} : { qop: this.opts.qop }),
          ...(stale ? { stale: true } : {}),
          ...(this.opts.userhash ? { userhash: true, charset: 'UTF-8' as const } : {}),
        })
        headers.append('WWW-Authenticate', text)
      }
    }
    entry.status = 401
    entry.stale = stale
    return new Response('unauthorized', { status: 401, headers })
  }

  private findUser(c: DigestCredentials, algorithm: AlgorithmName) {
    for (const [name, password] of Object.entries(this.opts.users)) {
      const sentName = c.userhash ? userhashOf(hashOf(algorithm), name, c.realm) : name
      if (sentName === c.username) return { name, password }
    }
    return undefined
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const url = new URL(request.url)
    const bodyBytes = new Uint8Array(await request.arrayBuffer())
    const entry: LogEntry = {
      method: request.method,
      path: url.pathname + url.search,
      body: new TextDecoder().decode(bodyBytes),
      status: 0,
    }
    this.log.push(entry)
    const header = request.headers.get('Authorization')
    if (header === null) return this.challenge(entry)
    const c = parseAuthorization(header)
    entry.credentials = c
    const algorithm = c.algorithm ?? 'MD5'
    const offered = this.opts.challengeTemplates
      ? true
      : this.opts.algorithms.some((a) => (a ?? 'MD5') === algorithm)
    const state = this.nonces.get(c.nonce)
    const user = this.findUser(c, algorithm)
    if (!offered || state === undefined || user === undefined || c.uri !== entry.path) {
      return this.challenge(entry)
    }
    if (c.nc !== undefined && state.seen.has(c.nc)) return this.challenge(entry)
    const hash = hashOf(algorithm)
    const ha1 = baseHA1(hash, user.name, c.realm, user.password)
    const bodyHash = c.qop === 'auth-int' ? hashHex(hash, bodyBytes) : undefined
    const expected = computeResponse({
      algorithm,
      ha1,
      nonce: c.nonce,
      nc: c.ncRaw,
      cnonce: c.cnonce,
      qop: c.qop,
      method: request.method,
      uri: c.uri,
      bodyHash,
    })
    if (expected !== c.response) return this.challenge(entry)
    if (state.uses >= this.opts.staleAfterUses) return this.challenge(entry, true)
    state.uses++
    if (c.nc !== undefined) state.seen.add(c.nc)

    const payload = new TextEncoder().encode(`${RESPONSE_TEXT} for ${user.name}`)
    const headers = new Headers()
    const info: Parameters<typeof formatAuthenticationInfo>[0] = {}
    if (this.opts.nextnonce) info.nextnonce = this.mint()
    if (this.opts.rspauth !== 'none') {
      const rspauthBodyHash =
        c.qop !== 'auth-int'
          ? undefined
          : hashHex(hash, this.opts.rspauthBody === 'response' ? payload : bodyBytes)
      const rspauth = computeRspauth({
        algorithm,
        ha1,
        nonce: c.nonce,
        nc: c.ncRaw,
        cnonce: c.cnonce,
        qop: c.qop,
        uri: c.uri,
        bodyHash: rspauthBodyHash,
      })
      info.rspauth =
        this.opts.rspauth === 'good'
          ? rspauth
          : rspauth.replace(/^./, (d) => (d === '0' ? '1' : '0'))
      if (c.qop !== undefined) {
        info.qop = c.qop
        if (c.cnonce !== undefined) info.cnonce = c.cnonce
        if (c.ncRaw !== undefined) info.nc = c.ncRaw
      }
    }
    if (Object.keys(info).length > 0) {
      headers.set('Authentication-Info', formatAuthenticationInfo(info))
    }
    entry.status = 200
    return new Response(payload, { status: 200, headers })
  }
}

function client(server: FakeServer, extra: Partial<Parameters<typeof createDigestClient>[0]> = {}) {
  return createDigestClient({
    username: 'Mufasa',
    password: 'Circle of Life',
    fetch: server.fetch,
    ...extra,
  })
}

describe('challenge selection', () => {
  it('answers the RFC 7616 §3.9.1 challenges (verbatim) with SHA-256 and qop=auth', async () => {
    const server = new FakeServer({
      challengeTemplates: [
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="{nonce}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="{nonce}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
      ],
    })
    const response = await client(server).fetch(`${ORIGIN}/dir/index.html`)
    expect(response.status).toBe(200)
    expect(await response.text()).toBe(`${RESPONSE_TEXT} for Mufasa`)
    expect(server.statuses).toEqual([401, 200])
    expect(server.log[1]?.credentials).toMatchObject({
      algorithm: 'SHA-256',
      qop: 'auth',
      nc: 1,
      ncRaw: '00000001',
      uri: '/dir/index.html',
      opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
    })
    expect(server.log[1]?.credentials?.cnonce).toMatch(/^[0-9a-f]{16}$/)
  })

  it.each<[(AlgorithmName | null)[], AlgorithmName]>([
    [['MD5', 'SHA-256'], 'SHA-256'],
    [[null, 'MD5-sess'], 'MD5-sess'],
    [['SHA-256', 'SHA-256-sess', 'MD5'], 'SHA-256-sess'],
    [['MD5', 'SHA-512-256', 'SHA-256-sess'], 'SHA-512-256'],
    [['SHA-512-256', 'SHA-512-256-sess'], 'SHA-512-256-sess'],
  ])('offered %j: picks %s', async (algorithms, expected) => {
    const server = new FakeServer({ algorithms })
    expect((await client(server).fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(server.log[1]?.credentials?.algorithm).toBe(expected)
  })

  it('sends no algorithm when the challenge had none (MD5, RFC 2617)', async () => {
    const server = new FakeServer({ algorithms: [null] })
    expect((await client(server).fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(server.log[1]?.credentials?.algorithm).toBeUndefined()
  })

  it('uses a forced algorithm, and gives up when it is not offered', async () => {
    const server = new FakeServer({ algorithms: ['SHA-256', 'MD5'] })
    expect((await client(server, { algorithm: 'MD5' }).fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(server.log[1]?.credentials?.algorithm).toBe('MD5')
    const other = new FakeServer({ algorithms: ['SHA-256'] })
    expect((await client(other, { algorithm: 'MD5-sess' }).fetch(`${ORIGIN}/`)).status).toBe(401)
    expect(other.statuses).toEqual([401])
  })

  it('returns the 401 untouched when no challenge is usable', async () => {
    const server = new FakeServer({
      challengeTemplates: ['Digest realm="r", nonce="{nonce}", algorithm=SHA-1', 'Basic realm="r"'],
    })
    const response = await client(server).fetch(`${ORIGIN}/`)
    expect(response.status).toBe(401)
    expect(await response.text()).toBe('unauthorized')
    expect(server.statuses).toEqual([401])
  })

  it('speaks the RFC 2069 form when no qop is offered', async () => {
    const server = new FakeServer({ qop: undefined, algorithms: ['SHA-256', 'MD5-sess', 'MD5'] })
    expect((await client(server).fetch(`${ORIGIN}/`)).status).toBe(200)
    // -sess needs a cnonce, which only qop carries: skipped.
    expect(server.log[1]?.credentials).toMatchObject({ algorithm: 'SHA-256' })
    expect(server.log[1]?.credentials?.qop).toBeUndefined()
    expect(server.log[1]?.credentials?.nc).toBeUndefined()
  })

  it('uses auth-int only when preferred (or the only qop), hashing the body', async () => {
    const both = new FakeServer({ qop: ['auth', 'auth-int'] })
    await client(both).fetch(`${ORIGIN}/`, { method: 'POST', body: 'hello' })
    expect(both.log[1]?.credentials?.qop).toBe('auth')

    const preferred = new FakeServer({ qop: ['auth', 'auth-int'] })
    const r = await client(preferred, { preferAuthInt: true }).fetch(`${ORIGIN}/upload`, {
      method: 'PUT',
      body: 'the entity body',
    })
    expect(r.status).toBe(200)
    expect(preferred.log[1]).toMatchObject({ body: 'the entity body', status: 200 })
    expect(preferred.log[1]?.credentials?.qop).toBe('auth-int')

    const only = new FakeServer({ qop: ['auth-int'] })
    expect((await client(only).fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(only.log[1]?.credentials?.qop).toBe('auth-int')
  })

  it('a wrong body hash is refused by the server (auth-int really covers the body)', async () => {
    const server = new FakeServer({ qop: ['auth-int'] })
    const honest = server.fetch
    const tampering: typeof fetch = (input, init) =>
      honest(input, init?.body ? { ...init, body: 'tampered' } : init)
    const r = await createDigestClient({
      username: 'Mufasa',
      password: 'Circle of Life',
      fetch: tampering,
    }).fetch(`${ORIGIN}/`, { method: 'POST', body: 'original' })
    expect(r.status).toBe(401)
  })
})

describe('protection space cache', () => {
  it('preempts: one 401 for N sequential requests, nc counting from 1', async () => {
    const server = new FakeServer()
    const c = client(server)
    for (let i = 0; i < 5; i++) {
      expect((await c.fetch(`${ORIGIN}/item/${i}?q=${i}`)).status).toBe(200)
    }
    expect(server.statuses).toEqual([401, 200, 200, 200, 200, 200])
    const creds = server.log.slice(1).map((e) => e.credentials)
    expect(creds.map((x) => x?.nc)).toEqual([1, 2, 3, 4, 5])
    expect(new Set(creds.map((x) => x?.nonce)).size).toBe(1)
    expect(new Set(creds.map((x) => x?.cnonce)).size).toBe(5)
    expect(creds.map((x) => x?.uri)).toEqual([0, 1, 2, 3, 4].map((i) => `/item/${i}?q=${i}`))
  })

  it('keeps origins apart', async () => {
    const server = new FakeServer()
    const c = client(server)
    await c.fetch(`${ORIGIN}/`)
    await c.fetch('https://other.test/')
    expect(server.statuses).toEqual([401, 200, 401, 200])
  })

  it('parallel requests get distinct nc values', async () => {
    const server = new FakeServer()
    const c = client(server)
    await c.fetch(`${ORIGIN}/`)
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => c.fetch(`${ORIGIN}/p/${i}`))
    )
    expect(responses.every((r) => r.status === 200)).toBe(true)
    const ncs = server.log.slice(2).map((e) => e.credentials?.nc)
    expect(new Set(ncs).size).toBe(20)
    expect([...ncs].sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 2)
    )
  })

  it('authorizationFor: undefined before a challenge, then advances nc', async () => {
    const server = new FakeServer()
    const c = client(server)
    expect(await c.authorizationFor('GET', `${ORIGIN}/x`)).toBeUndefined()
    await c.fetch(`${ORIGIN}/`)
    const header = await c.authorizationFor('GET', `${ORIGIN}/x?y=1`)
    expect(header).toBeDefined()
    const parsed = parseAuthorization(header as string)
    expect(parsed).toMatchObject({ nc: 2, uri: '/x?y=1', algorithm: 'SHA-256' })
    // The precomputed header is accepted as is.
    const r = await server.fetch(`${ORIGIN}/x?y=1`, {
      headers: { Authorization: header as string },
    })
    expect(r.status).toBe(200)
    await c.fetch(`${ORIGIN}/`)
    expect(server.log.at(-1)?.credentials?.nc).toBe(3)
  })
})

describe('re-challenges', () => {
  it('stale=true: retries once with the new nonce, nc back to 1', async () => {
    const server = new FakeServer({ staleAfterUses: 2 })
    const c = client(server)
    for (let i = 0; i < 3; i++) expect((await c.fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(server.statuses).toEqual([401, 200, 200, 401, 200])
    expect(server.log[3]?.stale).toBe(true)
    const [first, , , staleOne, fresh] = server.log
    expect(first?.credentials).toBeUndefined()
    expect(fresh?.credentials?.nonce).not.toBe(staleOne?.credentials?.nonce)
    expect(fresh?.credentials?.nc).toBe(1)
  })

  it('stale twice in a row: the second stale 401 is returned', async () => {
    const server = new FakeServer({ staleAfterUses: 0 })
    const r = await client(server).fetch(`${ORIGIN}/`)
    expect(r.status).toBe(401)
    expect(server.statuses).toEqual([401, 401, 401])
    expect(server.log.map((e) => e.stale)).toEqual([false, true, true])
  })

  it('wrong password: one answer to the challenge, then the 401 is returned', async () => {
    const server = new FakeServer()
    const r = await client(server, { password: 'wrong' }).fetch(`${ORIGIN}/`)
    expect(r.status).toBe(401)
    expect(server.statuses).toEqual([401, 401])
  })

  it('non-stale 401 to cached credentials (server forgot): one retry, then success', async () => {
    const server = new FakeServer()
    const c = client(server)
    await c.fetch(`${ORIGIN}/`)
    server.forget()
    expect((await c.fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(server.statuses).toEqual([401, 200, 401, 200])
    expect(server.log[3]?.credentials?.nc).toBe(1)
  })

  it('non-stale 401 to cached credentials, then again: at most one retry', async () => {
    const server = new FakeServer()
    const good = client(server)
    await good.fetch(`${ORIGIN}/`)
    server.forget()
    const users = { Mufasa: 'changed' }
    Object.assign((server as unknown as { opts: { users: object } }).opts, { users })
    expect((await good.fetch(`${ORIGIN}/`)).status).toBe(401)
    expect(server.statuses).toEqual([401, 200, 401, 401])
  })

  it('follows nextnonce: the next request uses it with nc=1', async () => {
    const server = new FakeServer({ nextnonce: true })
    const c = client(server)
    for (let i = 0; i < 3; i++) expect((await c.fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(server.statuses).toEqual([401, 200, 200, 200])
    const creds = server.log.slice(1).map((e) => e.credentials)
    expect(creds.map((x) => x?.nc)).toEqual([1, 1, 1])
    expect(new Set(creds.map((x) => x?.nonce)).size).toBe(3)
  })
})

describe('rspauth (mutual authentication)', () => {
  it('accepts a correct rspauth', async () => {
    const server = new FakeServer({ rspauth: 'good' })
    const r = await client(server).fetch(`${ORIGIN}/`)
    expect(r.status).toBe(200)
    expect(await r.text()).toContain(RESPONSE_TEXT)
  })

  it('throws on a wrong rspauth, unless verification is off', async () => {
    const server = new FakeServer({ rspauth: 'bad' })
    await expect(client(server).fetch(`${ORIGIN}/`)).rejects.toBeInstanceOf(RspauthMismatchError)
    const lax = new FakeServer({ rspauth: 'bad' })
    expect((await client(lax, { verifyRspauth: false }).fetch(`${ORIGIN}/`)).status).toBe(200)
  })

  it('auth-int: accepts rspauth over the response body or the request body', async () => {
    for (const rspauthBody of ['response', 'request'] as const) {
      const server = new FakeServer({ qop: ['auth-int'], rspauthBody })
      const r = await client(server).fetch(`${ORIGIN}/`, { method: 'POST', body: 'req' })
      expect(r.status).toBe(200)
      expect(await r.text()).toBe(`${RESPONSE_TEXT} for Mufasa`)
    }
    const bad = new FakeServer({ qop: ['auth-int'], rspauth: 'bad' })
    await expect(
      client(bad).fetch(`${ORIGIN}/`, { method: 'POST', body: 'req' })
    ).rejects.toBeInstanceOf(RspauthMismatchError)
  })
})

describe('request bodies and identities', () => {
  it('resends a POST body after the 401 (string, stream and Request inputs)', async () => {
    const server = new FakeServer()
    const c = client(server)
    await c.fetch(`${ORIGIN}/a`, { method: 'POST', body: 'first body' })
    expect(server.log.map((e) => e.body)).toEqual(['first body', 'first body'])

    const fresh = new FakeServer()
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('streamed '))
        controller.enqueue(new TextEncoder().encode('body'))
        controller.close()
      },
    })
    const r = await client(fresh).fetch(
      new Request(`${ORIGIN}/b`, { method: 'PUT', body: stream, headers: { 'X-Keep': '1' } })
    )
    expect(r.status).toBe(200)
    expect(fresh.log.map((e) => [e.method, e.body])).toEqual([
      ['PUT', 'streamed body'],
      ['PUT', 'streamed body'],
    ])
  })

  it('keeps the caller headers and does not leak Authorization into the caller request', async () => {
    const seen: Headers[] = []
    const server = new FakeServer()
    const spy: typeof fetch = (input, init) => {
      seen.push(new Headers(init?.headers))
      return server.fetch(input, init)
    }
    const headers = new Headers({ 'X-Trace': 'abc' })
    await createDigestClient({ username: 'Mufasa', password: 'Circle of Life', fetch: spy }).fetch(
      `${ORIGIN}/`,
      { headers }
    )
    expect(seen.map((h) => h.get('x-trace'))).toEqual(['abc', 'abc'])
    expect(seen[1]?.get('authorization')).toMatch(/^Digest /)
    expect(headers.has('authorization')).toBe(false)
  })

  it('sends the userhash when offered (and the plain name when told not to)', async () => {
    const server = new FakeServer({ userhash: true, algorithms: ['SHA-256'] })
    expect((await client(server).fetch(`${ORIGIN}/`)).status).toBe(200)
    const sent = server.log[1]?.credentials
    expect(sent?.userhash).toBe(true)
    expect(sent?.username).toBe(
      // RFC 7616 userhash of Mufasa:http-auth@example.org (derived: SHA-256 of name:realm)
      'a947aad205e80e429958a387394944c6b496301e79f89d35a4cc23b6ee12b5b6'
    )
    const plain = new FakeServer({ userhash: true })
    expect((await client(plain, { userhash: false }).fetch(`${ORIGIN}/`)).status).toBe(200)
    expect(plain.log[1]?.credentials).toMatchObject({ userhash: false, username: 'Mufasa' })
  })

  it('sends a non-ASCII name as username* (RFC 8187)', async () => {
    const name = 'J\u00e4s\u00f8n Doe'
    const seen: string[] = []
    const server = new FakeServer({
      realm: 'api@example.org',
      algorithms: ['SHA-512-256'],
      users: { [name]: 'Secret, or not?' },
    })
    const spy: typeof fetch = (input, init) => {
      seen.push(new Headers(init?.headers).get('authorization') ?? '')
      return server.fetch(input, init)
    }
    const c = createDigestClient({ username: name, password: 'Secret, or not?', fetch: spy })
    expect((await c.fetch(`${ORIGIN}/doe.json`)).status).toBe(200)
    expect(seen[1]).toContain("username*=UTF-8''J%C3%A4s%C3%B8n%20Doe")
    expect(server.log[1]?.credentials?.username).toBe(name)
  })
})
