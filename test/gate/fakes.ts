/**
 * In-test peers of the gate: an authority speaking protocol v1 (with the protocol core's own
 * algorithms) and an origin that echoes what reached it. They answer the gate's outbound fetches
 * through a spy on globalThis.fetch, so faults can be injected per test.
 */
import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { vi } from 'vitest'
import type { VerifyRequest } from '../../src/authority-protocol/v1.ts'
import { baseHA1, computeResponse, hashOf, userhash } from '../../src/digest/algorithms.ts'
import { createDigestClient, type DigestClientOptions } from '../../src/digest/client.ts'
import { formatAuthorization } from '../../src/digest/header.ts'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { DecisionLog } from '../../src/gate/decision-log.ts'
import { buildGate } from '../../src/index.ts'

export const GATE = 'https://gate.test'
export const REALM = 'digest-gate'

export interface FakeUser {
  password: string
  groups: string[]
  disabled?: boolean
}

export type AuthorityMode = 'ok' | 'down' | 'slow' | 'garbage' | 'status500'

export class FakeAuthority {
  calls = 0
  mode: AuthorityMode = 'ok'
  /** Answers wait for this, when set: a verification in flight, held open by the test. */
  hold: Promise<void> | undefined
  users = new Map<string, FakeUser>([
    ['alice', { password: 'wonderland', groups: ['admin'] }],
    ['bob', { password: 'builder', groups: [] }],
    ['Jäsøn Doe', { password: 'Secret, or not?', groups: [] }],
  ])

  async handle(req: Request): Promise<Response> {
    this.calls++
    if (this.hold) await this.hold
    if (this.mode === 'down') throw new TypeError('fetch failed: connection refused')
    if (this.mode === 'slow') {
      await new Promise((_, reject) => {
        req.signal.addEventListener('abort', () => reject(req.signal.reason))
      })
    }
    if (this.mode === 'garbage') return new Response('<html>oops</html>', { status: 200 })
    if (this.mode === 'status500') return new Response('boom', { status: 500 })
    if (
      req.headers.get('authorization') !==
      `Bearer ${(env as unknown as { AUTHORITY_TOKEN: string }).AUTHORITY_TOKEN}`
    ) {
      return Response.json({ error: 'unauthorized', message: 'bad token' }, { status: 401 })
    }
    const body = (await req.json()) as VerifyRequest
    // Like any authority: the caller authenticated, a body without directives is invalid.
    if (typeof body.directives !== 'object' || body.directives === null) {
      return Response.json({ error: 'invalid_request', message: 'no directives' }, { status: 400 })
    }
    const d = body.directives
    if (readNonceFields(d.nonce)?.serverId !== body.serverId) {
      return Response.json({ result: 'denied', reason: 'server_mismatch' })
    }
    const algorithm = d.algorithm ?? 'MD5'
    const hash = hashOf(algorithm)
    let name: string | undefined
    for (const [n] of this.users) {
      const id = d.userhash ? await userhash(hash, n, d.realm) : n
      if (id === d.username) name = n
    }
    const user = name === undefined ? undefined : this.users.get(name)
    if (!user || !name || user.disabled) {
      return Response.json({ result: 'denied', reason: 'logon_denied' })
    }
    const ha1 = await baseHA1(hash, name, d.realm, user.password)
    const expected = await computeResponse({
      algorithm,
      ha1,
      nonce: d.nonce,
      nc: d.nc,
      cnonce: d.cnonce,
      qop: d.qop,
      method: body.method,
      uri: d.uri,
      bodyHash: body.bodyHash,
    })
    if (expected !== d.response.toLowerCase()) {
      return Response.json({ result: 'denied', reason: 'logon_denied' })
    }
    return Response.json({
      result: 'ok',
      principal: { name, groups: user.groups },
      sessionKey: ha1,
      algorithm,
    })
  }
}

export class FakeOrigin {
  requests: {
    method: string
    path: string
    headers: Record<string, string>
    body: string
    /** The fetch `cache` mode the gate asked for. */
    cache: string | undefined
  }[] = []
  down = false
  /** Headers added to every answer (e.g. Cache-Control). */
  responseHeaders: Record<string, string> = {}
  /** Never answer: hold each request until the gate's signal aborts it. */
  hang = false
  /** The signal of each fetch the gate made, to see whether and when it gave up. */
  signals: AbortSignal[] = []
  /** Every text message that reached one of the origin's WebSockets. */
  socketMessages: string[] = []

  async handle(req: Request): Promise<Response> {
    if (this.down) throw new TypeError('fetch failed: connection refused')
    const url = new URL(req.url)
    const entry = {
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
      body: req.body ? await req.text() : '',
      cache: req.cache,
    }
    this.requests.push(entry)
    this.signals.push(req.signal)
    if (this.hang) {
      await new Promise((_, reject) => {
        req.signal.addEventListener('abort', () => reject(req.signal.reason))
      })
    }
    // Like a real origin: a socket only for a request that asked to upgrade.
    if (req.headers.get('upgrade')?.toLowerCase() === 'websocket') return this.acceptSocket(req)
    return Response.json(entry, { headers: this.responseHeaders })
  }

  /**
   * A WebSocket echo: each text message comes back as `{"user":…,"echo":…}`, the user being the
   * identity header the gate sent on the handshake; the first subprotocol offered is chosen.
   */
  private acceptSocket(req: Request): Response {
    const user = req.headers.get('x-auth-user')
    const { 0: client, 1: server } = new WebSocketPair()
    server.accept()
    server.addEventListener('message', (event) => {
      const text = String(event.data)
      this.socketMessages.push(text)
      server.send(JSON.stringify({ user, echo: text }))
    })
    const protocol = req.headers.get('sec-websocket-protocol')?.split(',')[0]?.trim()
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: {
        ...this.responseHeaders,
        ...(protocol ? { 'sec-websocket-protocol': protocol } : {}),
      },
    })
  }
}

/** Route the gate's outbound fetches to the fakes. */
export function installPeers(): { authority: FakeAuthority; origin: FakeOrigin } {
  const authority = new FakeAuthority()
  const origin = new FakeOrigin()
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
    const req = new Request(input as RequestInfo, init)
    const host = new URL(req.url).host
    if (host === 'authority.test') return authority.handle(req)
    if (host === 'origin.test') return origin.handle(req)
    throw new TypeError(`unexpected outbound fetch to ${host}`)
  })
  return { authority, origin }
}

export type GateFetch = (req: Request) => Promise<Response>

/** The gate worker, optionally with other vars (each call builds a fresh app). */
export function gate(overrides: Record<string, string> = {}): GateFetch {
  const e = { ...env, ...overrides } as Parameters<typeof buildGate>[0]
  const app = buildGate(e)
  return async (req) => app.fetch(req, e, createExecutionContext())
}

/** A gate on `e` whose requests' background work (`waitUntil`: refunds, flushes) `settled()` awaits. */
export function settlingGate(e: Parameters<typeof buildGate>[0]) {
  const app = buildGate(e)
  const pending: Promise<void>[] = []
  const fetch: GateFetch = async (req) => {
    const ctx = createExecutionContext()
    const res = await app.fetch(req, e, ctx)
    pending.push(waitOnExecutionContext(ctx))
    return res
  }
  const settled = async (): Promise<void> => {
    await Promise.all(pending.splice(0))
  }
  return { fetch, settled }
}

/** A Digest client talking to a gate, recording every request it sent. */
export function client(
  fetchGate: GateFetch,
  username: string,
  password: string,
  extra: Partial<DigestClientOptions> = {}
) {
  const sent: { authorization: string | null; status: number }[] = []
  const c = createDigestClient({
    username,
    password,
    ...extra,
    fetch: async (input, init) => {
      const req = new Request(input as RequestInfo, init)
      const authorization = req.headers.get('authorization')
      const res = await fetchGate(req)
      sent.push({ authorization, status: res.status })
      return res
    },
  })
  return { fetch: (path: string, init?: RequestInit) => c.fetch(GATE + path, init), sent, raw: c }
}

/** Collect the gate's decision log lines. */
export function captureDecisions(): DecisionLog[] {
  const entries: DecisionLog[] = []
  // Acceptances go to console.log, refusals to console.warn, faults to console.error.
  for (const level of ['log', 'warn', 'error'] as const) {
    vi.spyOn(console, level).mockImplementation((line: unknown) => {
      if (typeof line !== 'string') return
      try {
        const o = JSON.parse(line)
        if (o.event === 'digest-gate.decision') entries.push(o)
      } catch {
        // not ours
      }
    })
  }
  return entries
}

/** Parse a WWW-Authenticate header's directives crudely, for assertions. */
export function challengeOf(res: Response): {
  nonce: string
  opaque: string
  stale: boolean
  all: string[]
} {
  const all = res.headers.get('www-authenticate')?.split(/,\s*(?=Digest\s)/) ?? []
  const first = all[0] ?? ''
  return {
    nonce: /nonce="([^"]+)"/.exec(first)?.[1] ?? '',
    opaque: /opaque="([^"]+)"/.exec(first)?.[1] ?? '',
    stale: /stale=true/i.test(first),
    all,
  }
}

/** Build an Authorization header by hand (for replays, forgeries and expired nonces). */
export async function authorization(o: {
  user: string
  password: string
  nonce: string
  opaque?: string
  uri: string
  method?: string
  algorithm?: 'MD5' | 'SHA-256' | 'SHA-256-sess' | 'MD5-sess'
  nc?: number
  cnonce?: string
  response?: string
}): Promise<string> {
  const algorithm = o.algorithm ?? 'SHA-256'
  const ncRaw = (o.nc ?? 1).toString(16).padStart(8, '0')
  const cnonce = o.cnonce ?? 'abcdef0123456789'
  const ha1 = await baseHA1(hashOf(algorithm), o.user, REALM, o.password)
  const response =
    o.response ??
    (await computeResponse({
      algorithm,
      ha1,
      nonce: o.nonce,
      nc: ncRaw,
      cnonce,
      qop: 'auth',
      method: o.method ?? 'GET',
      uri: o.uri,
    }))
  return formatAuthorization({
    username: o.user,
    userhash: false,
    realm: REALM,
    nonce: o.nonce,
    uri: o.uri,
    response,
    algorithm,
    cnonce,
    opaque: o.opaque,
    qop: 'auth',
    nc: o.nc ?? 1,
    ncRaw,
  })
}
