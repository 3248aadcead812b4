/**
 * Forwarding to the origin, on the canonical path only. The client's Authorization, identity
 * headers, path-override headers and forwarding claims in any spelling are removed, then the
 * gate's view of the connection, the authenticated identity and a signed assertion are added. Authenticated exchanges stay out of shared caches. Origin
 * faults become a clear 502/504 with Retry-After, never a 500. A WebSocket handshake is forwarded
 * as an upgrade, and the origin's 101 goes back with its socket.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import { signAssertion } from './assertion.ts'
import type { AssertionKey } from './assertion-keys.ts'
import { type LogLevel, writeLog } from './decision-log.ts'
import { headerKey } from './header-key.ts'
import { canonicalizePath, pathAndQuery } from './request-path.ts'
import { isTimeout } from './timeout.ts'

export interface IdentityHeaders {
  user: string
  groups: string
  assertion: string
}

export interface ForwardOptions {
  origin: string
  headers: IdentityHeaders
  /** The assertion's signing key (assertion-keys.ts); without it no assertion is sent. */
  assertionKey?: AssertionKey
  /** The assertion's `aud`; default: the origin's URL origin. */
  assertionAudience?: string
  issuer: string
  realm: string
  timeoutMs: number
  /** Client headers never forwarded, in any spelling, beside the identity headers. */
  stripHeaders: string[]
  /** Which of the forwarding's own log lines are written (faults only, here). */
  logLevel?: LogLevel
}

/** Headers that make IIS, Symfony, Zend and some proxies serve another path than the URL's. */
const PATH_OVERRIDE = ['x-original-url', 'x-rewrite-url', 'x-original-uri', 'x-override-url']

/**
 * What the client connected from and to, as origins read it. The gate sets X-Forwarded-For, -Host,
 * -Proto and X-Real-IP itself (in the one spelling, so every other is dropped); the rest are the
 * client's own claims of host, scheme, port and base path, which Spring's ForwardedHeaderFilter,
 * Undertow and Quarkus read (RFC 7239 `Forwarded` first): kept, they would let a client make the
 * origin trust another address or build links to another site.
 */
const FORWARDING = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'forwarded',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-ssl',
]

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]

export const ORIGIN_RETRY_AFTER_SECONDS = 5

/** A principal's identity headers as forwarded, and its assertion of one second. */
interface Identity {
  user: string
  groups: string
  second: number
  assertion: string
}

/**
 * Forwards one request to the origin, under options fixed once (what is stripped, where to).
 * @returns forward(request, principal, now, path): `path` is the canonical request path
 *   (canonicalizePath); when absent it is computed from the request, and a path that cannot be
 *   canonicalised is answered 400 without forwarding.
 */
export function originForwarder(o: ForwardOptions) {
  const origin = new URL(o.origin)
  // The canonical path starts with `/` and holds no `//`, `?` or `#`: appended to the origin's
  // scheme and authority it can only ever be a path on that origin.
  const base = `${origin.origin}${origin.pathname === '/' ? '' : origin.pathname.replace(/\/$/, '')}`
  const stripped = (hopByHop: string[]) =>
    new Set(
      [
        ...hopByHop,
        ...PATH_OVERRIDE,
        ...FORWARDING,
        'authorization',
        o.headers.user,
        o.headers.groups,
        o.headers.assertion,
        ...o.stripHeaders,
      ].map(headerKey)
    )
  const strip = stripped(HOP_BY_HOP)
  // A handshake keeps Upgrade (Connection is set below); other upgrades (h2c…) go no further.
  const stripForHandshake = stripped(HOP_BY_HOP.filter((name) => name !== 'upgrade'))
  const audience = o.assertionAudience ?? origin.origin
  // A session's requests carry the same principal object (the isolate cache's): its encoded
  // headers are built once, and its assertion once a second, without signAssertion's lookup key.
  const identities = new WeakMap<Principal, Identity>()
  const identityOf = (principal: Principal): Identity => {
    let identity = identities.get(principal)
    if (!identity) {
      identity = {
        user: encodeHeaderValue(principal.name),
        groups: principal.groups.map(encodeHeaderValue).join(','),
        second: -1,
        assertion: '',
      }
      identities.set(principal, identity)
    }
    return identity
  }

  /**
   * @param path - the canonical request path, forwarded instead of the URL's
   * @param destination - a WebDAV Destination to forward instead of the client's (its path
   *   canonical, as the route rules saw it)
   */
  return async function forward(
    request: Request,
    principal: Principal | undefined,
    now: number,
    path?: string,
    destination?: string
  ): Promise<Response> {
    const { pathname, search } = pathAndQuery(request.url)
    if (path === undefined) {
      const canonical = canonicalizePath(pathname)
      if (canonical.kind === 'refused') {
        return Response.json(
          { error: 'invalid_request', message: `request path refused: ${canonical.message}` },
          { status: 400, headers: { 'cache-control': 'no-store' } }
        )
      }
      path = canonical.path
    }
    const handshake = isWebSocketHandshake(request)
    const headers = new Headers(request.headers)
    const drop = handshake ? stripForHandshake : strip
    for (const name of [...headers.keys()]) {
      if (drop.has(headerKey(name))) headers.delete(name)
    }
    // Ask the origin only for encodings the client accepts. (wrangler dev rewrites the incoming
    // Accept-Encoding to "br, gzip" and keeps the client's own in cf.clientAcceptEncoding;
    // passing the rewritten one on made the origin compress for clients that never asked.)
    const clientEncoding = (request as { cf?: { clientAcceptEncoding?: unknown } }).cf
      ?.clientAcceptEncoding
    if (typeof clientEncoding === 'string') {
      headers.set('accept-encoding', clientEncoding === '' ? 'identity' : clientEncoding)
    }
    if (handshake) headers.set('connection', 'Upgrade')
    if (destination !== undefined) headers.set('destination', destination)
    const { protocol, host } = schemeAndHost(request.url)
    headers.set('x-forwarded-host', host)
    headers.set('x-forwarded-proto', protocol)
    setForwardedFor(request.headers, headers)
    if (principal) {
      const identity = identityOf(principal)
      headers.set(o.headers.user, identity.user)
      headers.set(o.headers.groups, identity.groups)
      if (o.assertionKey) {
        if (identity.second !== now) {
          const token = signAssertion(
            principal,
            { issuer: o.issuer, audience, realm: o.realm, now },
            o.assertionKey
          )
          identity.assertion = typeof token === 'string' ? token : await token
          identity.second = now
        }
        headers.set(o.headers.assertion, identity.assertion)
      }
    }
    return send(
      request,
      `${base}${path}${search}`,
      headers,
      principal !== undefined,
      handshake,
      path
    )
  }

  async function send(
    request: Request,
    target: string,
    headers: Headers,
    authenticated: boolean,
    handshake: boolean,
    path: string
  ): Promise<Response> {
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
    const deadline = handshake ? handshakeDeadline(o.timeoutMs) : undefined
    let res: Response
    try {
      res = await fetch(target, {
        method: request.method,
        headers,
        body: hasBody ? request.body : undefined,
        redirect: 'manual',
        signal: deadline?.signal ?? AbortSignal.timeout(o.timeoutMs),
        // A Worker's subrequest may be answered from, and stored in, the zone cache, keyed by URL.
        ...(authenticated ? { cache: 'no-store' as const } : {}),
      })
    } catch (err) {
      deadline?.end()
      const timedOut = isTimeout(err)
      writeLog(o.logLevel ?? 'all', 'fault', {
        event: 'digest-gate.origin_fault',
        reason: timedOut ? 'timeout' : 'unreachable',
        path,
        ray: request.headers.get('cf-ray') ?? undefined,
      })
      return Response.json(
        {
          error: timedOut ? 'origin_timeout' : 'origin_unreachable',
          message: timedOut
            ? 'the origin did not answer in time'
            : 'the origin could not be reached',
        },
        {
          status: timedOut ? 504 : 502,
          headers: {
            'retry-after': String(ORIGIN_RETRY_AFTER_SECONDS),
            'cache-control': 'no-store',
          },
        }
      )
    }
    if ((res as { webSocket?: unknown }).webSocket) {
      // The origin accepted the upgrade: its 101 (Sec-WebSocket-Protocol…) and socket (a workerd
      // Response's webSocket) go back as is.
      deadline?.end()
      return res
    }
    const out = new Response(res.body, res)
    for (const name of HOP_BY_HOP) out.headers.delete(name)
    if (authenticated) keepPrivate(out.headers)
    return out
  }
}

/**
 * The scheme (without `:`) and host (with port) of a serialised http(s) URL, as URL's `protocol`
 * and `host` give them; a Request's URL carries no userinfo, but one would be left out.
 */
function schemeAndHost(url: string): { protocol: string; host: string } {
  const colon = url.indexOf(':')
  const start = colon + 3
  const slash = url.indexOf('/', start)
  const authority = url.slice(start, slash === -1 ? undefined : slash)
  return { protocol: url.slice(0, colon), host: authority.slice(authority.lastIndexOf('@') + 1) }
}

/** A WebSocket opening handshake (RFC 6455 §4.1): the one upgrade the gate forwards. */
function isWebSocketHandshake(request: Request): boolean {
  return (
    request.method === 'GET' && request.headers.get('upgrade')?.trim().toLowerCase() === 'websocket'
  )
}

/**
 * The origin timeout of a handshake, ended once the origin has opened the socket: a socket lives
 * as long as its peers keep it, not `timeoutMs`. (workerd, measured, leaves an open socket alone
 * when the signal fires after the 101; with the timer ended no runtime has to.) An answer without
 * a socket keeps the timer, like any response whose body is still arriving.
 */
function handshakeDeadline(timeoutMs: number): { signal: AbortSignal; end(): void } {
  const controller = new AbortController()
  const timer = setTimeout(
    () => controller.abort(new DOMException('the origin did not answer in time', 'TimeoutError')),
    timeoutMs
  )
  return { signal: controller.signal, end: () => clearTimeout(timer) }
}

/**
 * An authenticated response is for one user: no shared cache may store it. `no-store` from the
 * origin stands; otherwise `private` replaces what would let a shared cache keep it, and the
 * CDN-targeted fields (RFC 9213), which override Cache-Control for CDNs, are dropped.
 */
function keepPrivate(headers: Headers): void {
  for (const name of ['cdn-cache-control', 'cloudflare-cdn-cache-control', 'surrogate-control']) {
    headers.delete(name)
  }
  const cacheControl = headers.get('cache-control')
  if (cacheControl === null) {
    headers.set('cache-control', 'private')
    return
  }
  // Split at commas outside quoted strings (`private="set-cookie, x"`).
  const directives = (cacheControl.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? [])
    .map((d) => d.trim())
    .filter((d) => d !== '')
  if (directives.some((d) => d.toLowerCase() === 'no-store')) return
  const kept = directives.filter(
    (d) => !/^(public|private|s-maxage|proxy-revalidate)(\s*=|$)/i.test(d)
  )
  headers.set('cache-control', ['private', ...kept].join(', '))
}

/**
 * Header values must be ASCII: escape '%', ',' (the group separator), controls, non-ASCII and
 * outer spaces as percent-encoded UTF-8, so "Jäsøn Doe" arrives as "J%C3%A4s%C3%B8n Doe".
 */
export function encodeHeaderValue(value: string): string {
  let out = ''
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0
    if (code >= 0x20 && code < 0x7f && ch !== '%' && ch !== ',') out += ch
    else out += encodeURIComponent(ch.isWellFormed() ? ch : '\uFFFD')
  }
  // A header value loses its outer spaces (Headers trims them; a list's items are trimmed too):
  // the user " alice" would reach the origin as "alice", the group "admin " as "admin".
  return out.replace(/^ +| +$/g, (spaces) => '%20'.repeat(spaces.length))
}

/**
 * X-Forwarded-For: the address the gate saw (CF-Connecting-IP, else a proxy's X-Real-IP) appended
 * to what the client sent, which stays in front as a claim, never as the client. X-Real-IP, which
 * origins behind nginx's realip read as the client, is that address alone.
 */
function setForwardedFor(received: Headers, headers: Headers): void {
  const seen = received.get('cf-connecting-ip') ?? received.get('x-real-ip')
  const sent = received.get('x-forwarded-for')?.trim()
  const chain = [sent, seen].filter((a) => a).join(', ')
  if (chain !== '') headers.set('x-forwarded-for', chain)
  if (seen) headers.set('x-real-ip', seen)
}
