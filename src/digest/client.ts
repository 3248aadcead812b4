/**
 * The client side (InitializeSecurityContext / MakeSignature analog): a `fetch` wrapper that
 * answers Digest challenges, keeps nonce/nc/cnonce per protection space, preempts with a known
 * challenge, follows `stale=true` and `nextnonce`, and verifies `rspauth`.
 *
 * Retry policy (bounded: at most three requests per call):
 * - a 401 to a request without credentials: answer the challenge;
 * - a 401 with stale=true to credentials: answer the new nonce, once;
 * - a 401 without stale to credentials: answer once more only when those credentials came from
 *   the cache (the server may have dropped the context); credentials computed from a challenge
 *   just received were refused on their merits (wrong password): the 401 is returned;
 * - a 401 that a redirect brought from another origin: returned, never answered.
 */
import {
  baseHA1,
  computeResponse,
  computeRspauth,
  hashOf,
  isSess,
  timingSafeEqualString,
  userhash,
} from './algorithms.ts'
import { DigestError } from './errors.ts'
import { hashHex } from './hash.ts'
import { formatAuthorization, ncHex, parseAuthenticationInfo, parseChallenges } from './header.ts'
import type { AlgorithmName, DigestChallenge, Qop } from './types.ts'

export interface DigestClientOptions {
  username: string
  password: string
  /** Force one algorithm; default: the strongest offered that this client supports. */
  algorithm?: AlgorithmName
  /** Send `username` as the userhash when the server offers userhash=true. Default true. */
  userhash?: boolean
  /** Use `auth-int` when offered. Default false (auth preferred). */
  preferAuthInt?: boolean
  /** Throw when Authentication-Info carries a wrong rspauth. Default true. */
  verifyRspauth?: boolean
  /** Underlying fetch. Default globalThis.fetch. */
  fetch?: typeof fetch
}

export interface DigestClient {
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>
  /**
   * Pre-compute the Authorization header for the next request to `url` from the cached challenge
   * (advances nc). Undefined when no challenge is known for that protection space yet.
   * Benchmarks use it to take client hashing out of the timed phase.
   */
  authorizationFor(method: string, url: string | URL): Promise<string | undefined>
}

/** Thrown by DigestClient.fetch when the server's rspauth does not prove it knows the key. */
export class RspauthMismatchError extends Error {
  override readonly name = 'RspauthMismatchError'
}

/** Strongest first (RFC 7616 §3.7 asks clients to prefer the strongest they support). */
const STRENGTH: readonly AlgorithmName[] = [
  'SHA-512-256-sess',
  'SHA-512-256',
  'SHA-256-sess',
  'SHA-256',
  'MD5-sess',
  'MD5',
]

/** One protection space (origin + realm) and the server nonce we currently answer. */
interface Space {
  origin: string
  challenge: DigestChallenge
  algorithm: AlgorithmName
  qop: Qop | undefined
  nonce: string
  /** Last nc used on `nonce`; incremented synchronously so parallel requests differ. */
  nc: number
  ha1: string
  /** The name as sent: plain, or the userhash. */
  username: string
  userhash: boolean
}

interface Choice {
  challenge: DigestChallenge
  algorithm: AlgorithmName
  qop: Qop | undefined
}

/** What one Authorization header committed to, to check the answer. */
interface Sent {
  header: string
  space: Space
  /** Built from the cache before any 401 of this call. */
  preemptive: boolean
  algorithm: AlgorithmName
  ha1: string
  nonce: string
  ncRaw: string | undefined
  cnonce: string | undefined
  qop: Qop | undefined
  uri: string
  bodyHash: string | undefined
}

const EMPTY = new Uint8Array(0)
const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304])

function randomCnonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8))
  let hex = ''
  for (const b of bytes) hex += b.toString(16).padStart(2, '0')
  return hex
}

function requestUri(url: URL): string {
  return url.pathname + url.search
}

function pickQop(challenge: DigestChallenge, preferAuthInt: boolean): Qop | undefined | null {
  const offered = challenge.qop
  if (offered === undefined || offered.length === 0) return undefined
  if (preferAuthInt && offered.includes('auth-int')) return 'auth-int'
  if (offered.includes('auth')) return 'auth'
  return offered.includes('auth-int') ? 'auth-int' : null
}

export function createDigestClient(options: DigestClientOptions): DigestClient {
  const underlying = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const preferAuthInt = options.preferAuthInt ?? false
  const verifyRspauth = options.verifyRspauth ?? true
  const allowUserhash = options.userhash ?? true

  const spaces = new Map<string, Space>()
  const lastSpaceOfOrigin = new Map<string, Space>()
  const ha1Cache = new Map<string, string>()
  const userhashCache = new Map<string, string>()

  function choose(challenges: DigestChallenge[]): Choice | undefined {
    let best: Choice | undefined
    let bestRank = Number.POSITIVE_INFINITY
    for (const challenge of challenges) {
      const algorithm = challenge.algorithm ?? 'MD5'
      if (options.algorithm !== undefined && algorithm !== options.algorithm) continue
      const qop = pickQop(challenge, preferAuthInt)
      // null: only qop values we cannot do; -sess needs a cnonce, which only qop carries.
      if (qop === null || (qop === undefined && isSess(algorithm))) continue
      const rank = STRENGTH.indexOf(algorithm)
      if (rank < bestRank) {
        best = { challenge, algorithm, qop }
        bestRank = rank
      }
    }
    return best
  }

  function cached(cache: Map<string, string>, key: string, make: () => string): string {
    let value = cache.get(key)
    if (value === undefined) {
      value = make()
      cache.set(key, value)
    }
    return value
  }

  function install(origin: string, choice: Choice): Space {
    const { challenge, algorithm } = choice
    const key = `${origin} ${challenge.realm}`
    const hash = hashOf(algorithm)
    const useUserhash = challenge.userhash === true && allowUserhash
    const previous = spaces.get(key)
    const space: Space = {
      origin,
      challenge,
      algorithm,
      qop: choice.qop,
      nonce: challenge.nonce,
      // The same nonce again keeps counting: reusing an nc on a nonce would be a replay.
      nc: previous?.nonce === challenge.nonce ? previous.nc : 0,
      ha1: cached(ha1Cache, `${hash} ${challenge.realm}`, () =>
        baseHA1(hash, options.username, challenge.realm, options.password)
      ),
      username: useUserhash
        ? cached(userhashCache, `${hash} ${challenge.realm}`, () =>
            userhash(hash, options.username, challenge.realm)
          )
        : options.username,
      userhash: useUserhash,
    }
    spaces.set(key, space)
    lastSpaceOfOrigin.set(origin, space)
    return space
  }

  // Synchronous: parallel requests each take their own nc, none can interleave.
  function authorize(
    space: Space,
    method: string,
    uri: string,
    body: ArrayBuffer | undefined,
    preemptive: boolean
  ): Sent {
    const nc = ++space.nc
    const { nonce, algorithm, qop, challenge } = space
    const ncRaw = qop === undefined ? undefined : ncHex(nc)
    const cnonce = qop === undefined ? undefined : randomCnonce()
    const bodyHash =
      qop === 'auth-int'
        ? hashHex(hashOf(algorithm), body === undefined ? EMPTY : new Uint8Array(body))
        : undefined
    const { ha1 } = space
    const response = computeResponse({
      algorithm,
      ha1,
      nonce,
      nc: ncRaw,
      cnonce,
      qop,
      method,
      uri,
      bodyHash,
    })
    const header = formatAuthorization({
      username: space.username,
      userhash: space.userhash,
      realm: challenge.realm,
      nonce,
      uri,
      response,
      // As offered: a challenge without algorithm means MD5 and gets none back (RFC 2617).
      ...(challenge.algorithm === undefined ? {} : { algorithm }),
      ...(challenge.opaque === undefined ? {} : { opaque: challenge.opaque }),
      ...(qop === undefined ? {} : { qop, nc, ncRaw, cnonce }),
    })
    return {
      header,
      space,
      preemptive,
      algorithm,
      ha1,
      nonce,
      ncRaw,
      cnonce,
      qop,
      uri,
      bodyHash,
    }
  }

  function challengesOf(response: Response): DigestChallenge[] {
    const header = response.headers.get('www-authenticate')
    if (header === null) return []
    try {
      return parseChallenges(header)
    } catch (e) {
      if (e instanceof DigestError) return []
      throw e
    }
  }

  /** Apply Authentication-Info: switch to nextnonce, check rspauth. */
  async function acceptInfo(response: Response, sent: Sent): Promise<Response> {
    const header = response.headers.get('authentication-info')
    if (header === null) return response
    let info: ReturnType<typeof parseAuthenticationInfo>
    try {
      info = parseAuthenticationInfo(header)
    } catch (e) {
      // Unreadable: nothing to follow or verify (a missing rspauth is not verified either).
      if (e instanceof DigestError) return response
      throw e
    }
    const { space } = sent
    // Only once the rspauth (if any) is proven: a forged one must not move the client on.
    const followNextnonce = () => {
      // Only when no other response has moved the space on already.
      if (info.nextnonce !== undefined && space.nonce === sent.nonce) {
        space.nonce = info.nextnonce
        space.nc = 0
      }
    }
    if (info.rspauth === undefined || !verifyRspauth) {
      followNextnonce()
      return response
    }

    const rspauthFor = (bodyHash: string | undefined) =>
      computeRspauth({
        algorithm: sent.algorithm,
        ha1: sent.ha1,
        nonce: sent.nonce,
        nc: sent.ncRaw,
        cnonce: sent.cnonce,
        qop: sent.qop,
        uri: sent.uri,
        bodyHash,
      })
    const rspauth = info.rspauth
    if (sent.qop !== 'auth-int') {
      if (timingSafeEqualString(rspauthFor(undefined), rspauth)) {
        followNextnonce()
        return response
      }
      await response.body?.cancel()
      throw new RspauthMismatchError('Digest: the server sent a wrong rspauth')
    }
    // auth-int: RFC 2617 §3.2.3 hashes "the entity-body" without saying whose. Accept the
    // response body (the usual reading) or the request body; both prove the key.
    const buffered = await response.arrayBuffer()
    const responseHash = hashHex(hashOf(sent.algorithm), new Uint8Array(buffered))
    const ok =
      timingSafeEqualString(rspauthFor(responseHash), rspauth) ||
      timingSafeEqualString(rspauthFor(sent.bodyHash), rspauth)
    if (!ok) throw new RspauthMismatchError('Digest: the server sent a wrong rspauth')
    followNextnonce()
    return new Response(NULL_BODY_STATUS.has(response.status) ? null : buffered, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
  }

  async function digestFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const request = new Request(input, init)
    const url = new URL(request.url)
    const uri = requestUri(url)
    const { method } = request
    // Buffered once so that it can be sent again after a 401 (and hashed for auth-int).
    const body = request.body === null ? undefined : await request.arrayBuffer()
    const send = (sent: Sent | undefined) => {
      const headers = new Headers(request.headers)
      if (sent !== undefined) headers.set('Authorization', sent.header)
      return underlying(request.url, {
        method,
        headers,
        body: body ?? null,
        redirect: request.redirect,
        signal: request.signal,
      })
    }

    const known = lastSpaceOfOrigin.get(url.origin)
    let sent = known && authorize(known, method, uri, body, true)
    let staleAnswered = false
    let rejectionAnswered = false
    for (;;) {
      const response = await send(sent)
      if (response.status !== 401) {
        return sent === undefined ? response : acceptInfo(response, sent)
      }
      // A 401 reached by a redirect to another origin is that origin's challenge: answering it
      // here would send our password's proof for its nonce, and file its realm under our origin.
      if (response.redirected && response.url && new URL(response.url).origin !== url.origin) {
        return response
      }
      const choice = choose(challengesOf(response))
      if (choice === undefined) return response
      if (sent !== undefined) {
        if (choice.challenge.stale === true) {
          if (staleAnswered) return response
          staleAnswered = true
        } else {
          if (rejectionAnswered || !sent.preemptive) return response
          rejectionAnswered = true
        }
      }
      await response.body?.cancel()
      sent = authorize(install(url.origin, choice), method, uri, body, false)
    }
  }

  return {
    fetch: digestFetch,
    async authorizationFor(method, url) {
      const target = new URL(url)
      const space = lastSpaceOfOrigin.get(target.origin)
      if (space === undefined) return undefined
      return authorize(space, method, requestUri(target), undefined, true).header
    },
  }
}
