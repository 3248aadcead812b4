/**
 * Forwarding to the origin: the client's Authorization and any client-sent identity headers are
 * removed, then the authenticated identity and a signed assertion are added. Origin faults become
 * a clear 502/504 with Retry-After, never a 500.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import { signAssertion } from './assertion.ts'
import { isTimeout } from './timeout.ts'

export interface IdentityHeaders {
  user: string
  groups: string
  assertion: string
}

export interface ForwardOptions {
  origin: string
  headers: IdentityHeaders
  /** HS256 key for the assertion; without it no assertion is sent. */
  assertionKey?: string
  issuer: string
  realm: string
  timeoutMs: number
}

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

export async function forwardToOrigin(
  request: Request,
  principal: Principal | undefined,
  o: ForwardOptions,
  now: number
): Promise<Response> {
  const incoming = new URL(request.url)
  const target = new URL(o.origin)
  target.pathname = joinPath(target.pathname, incoming.pathname)
  target.search = incoming.search

  const headers = new Headers(request.headers)
  for (const name of [
    ...HOP_BY_HOP,
    'authorization',
    o.headers.user,
    o.headers.groups,
    o.headers.assertion,
  ]) {
    headers.delete(name)
  }
  // Ask the origin only for encodings the client accepts. (wrangler dev rewrites the incoming
  // Accept-Encoding to "br, gzip" and keeps the client's own in cf.clientAcceptEncoding; passing
  // the rewritten one on made the origin compress for clients that never asked.)
  const clientEncoding = (request as { cf?: { clientAcceptEncoding?: unknown } }).cf
    ?.clientAcceptEncoding
  if (typeof clientEncoding === 'string') {
    headers.set('accept-encoding', clientEncoding === '' ? 'identity' : clientEncoding)
  }
  headers.set('x-forwarded-host', incoming.host)
  headers.set('x-forwarded-proto', incoming.protocol.replace(':', ''))
  if (principal) {
    headers.set(o.headers.user, encodeHeaderValue(principal.name))
    headers.set(o.headers.groups, principal.groups.map(encodeHeaderValue).join(','))
    if (o.assertionKey) {
      const audience = target.origin
      headers.set(
        o.headers.assertion,
        await signAssertion(
          principal,
          { issuer: o.issuer, audience, realm: o.realm, now },
          o.assertionKey
        )
      )
    }
  }

  const hasBody = request.method !== 'GET' && request.method !== 'HEAD'
  let res: Response
  try {
    res = await fetch(target, {
      method: request.method,
      headers,
      body: hasBody ? request.body : undefined,
      redirect: 'manual',
      signal: AbortSignal.timeout(o.timeoutMs),
    })
  } catch (err) {
    const timedOut = isTimeout(err)
    console.log(
      JSON.stringify({
        event: 'digest-gate.origin_fault',
        reason: timedOut ? 'timeout' : 'unreachable',
        path: incoming.pathname,
      })
    )
    return Response.json(
      {
        error: timedOut ? 'origin_timeout' : 'origin_unreachable',
        message: timedOut ? 'the origin did not answer in time' : 'the origin could not be reached',
      },
      {
        status: timedOut ? 504 : 502,
        headers: { 'retry-after': String(ORIGIN_RETRY_AFTER_SECONDS) },
      }
    )
  }
  const out = new Response(res.body, res)
  for (const name of HOP_BY_HOP) out.headers.delete(name)
  return out
}

function joinPath(base: string, path: string): string {
  return base === '/' || base === '' ? path : base.replace(/\/$/, '') + path
}

/**
 * Header values must be ASCII: escape '%', ',' (the group separator), controls and non-ASCII
 * as percent-encoded UTF-8, so "Jäsøn Doe" arrives as "J%C3%A4s%C3%B8n Doe".
 */
export function encodeHeaderValue(value: string): string {
  let out = ''
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0
    if (code >= 0x20 && code < 0x7f && ch !== '%' && ch !== ',') out += ch
    else out += encodeURIComponent(ch.isWellFormed() ? ch : '\uFFFD')
  }
  return out
}
