/**
 * One authentication attempt as the steps after parsing share it — the request, the parsed
 * credentials, the I/O it may do — and what they all do with it: accept it, ask the brakes, settle
 * with them, hash its body for auth-int.
 */
import { hashOf } from '../digest/algorithms.ts'
import { hashHex } from '../digest/hash.ts'
import type { DigestCredentials } from '../digest/types.ts'
import type { AuthorityClient } from './authority-client.ts'
import type { BrakeAttempt, BrakeStore } from './brake-policy.ts'
import type { ContextRequest, ContextStore } from './context-types.ts'
import { DEFAULTS } from './options.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import { type Acceptance, authorityUnavailable, rateLimited, type Verdict } from './verdict.ts'

/** The request as authentication sees it. */
export interface Incoming {
  method: string
  /** The canonical request path and the query: what the `uri` directive must name. */
  path: string
  search: string
  authorization: string | undefined
  /** A fresh copy of the body, for auth-int. */
  body: () => ReadableStream<Uint8Array> | null
  /** Content-Length as declared, when it is. */
  contentLength: number | undefined
  /** The client's brake bucket (address, IPv6 /64, Worker tenant). */
  bucket: string
  /** Channel facts for BINDING; undefined when binding is off or none were presented. */
  binding: string | undefined
  now: number
  /** Keep background work (brake refunds) alive past the response. */
  waitUntil: (p: Promise<unknown>) => void
}

/** The stores and the authority an attempt may call (the middleware counts the calls). */
export interface Io {
  contexts: ContextStore
  brakes: BrakeStore | undefined
  authority: AuthorityClient
}

/** What the steps after parsing share. */
export interface Attempt {
  handle: string
  request: ContextRequest
  credentials: DigestCredentials
  nonceAgeSeconds: number
  incoming: Incoming
  io: Io
}

export function accept(
  a: Attempt,
  principal: Acceptance['principal'],
  rspauth: string,
  verifiedBy: Acceptance['verifiedBy'],
  deferred?: string
): Acceptance {
  return {
    kind: 'accept',
    principal,
    rspauth,
    verifiedBy,
    handle: a.handle,
    algorithm: a.request.algorithm,
    credentials: a.credentials,
    nonceAgeSeconds: a.nonceAgeSeconds,
    deferred,
  }
}

/** The attempt as the brakes count it. */
function counted(o: ResolvedOptions, a: Attempt): BrakeAttempt {
  // Milliseconds count: a one-second wait measured in whole seconds could be no wait at all.
  return {
    bucket: a.request.bucket,
    realm: o.realm,
    user: a.request.username,
    now: Date.now() / 1000,
  }
}

/**
 * Ask the brakes to admit this attempt (counted now, as a failure until settled). Undefined when
 * admitted; otherwise the refusal: 429, or 503 when the brakes cannot be reached (unbraked
 * guessing is worse than a short outage of new logins).
 */
export async function admit(o: ResolvedOptions, a: Attempt): Promise<Verdict | undefined> {
  if (!a.io.brakes) return undefined
  try {
    const verdict = await a.io.brakes.admit(counted(o, a), o.brakePolicy)
    return verdict.ok ? undefined : rateLimited(verdict)
  } catch {
    return authorityUnavailable('brakes_unavailable', DEFAULTS.retryAfterAuthorityFault)
  }
}

/**
 * An admitted attempt is settled in the background: `succeeded` (verified) gives its count back,
 * `undecided` (the authority could not answer: the client learnt nothing) too.
 */
export function settle(o: ResolvedOptions, a: Attempt, how: 'succeeded' | 'undecided'): void {
  const store = a.io.brakes
  if (!store) return
  a.incoming.waitUntil(store[how](counted(o, a), o.brakePolicy).catch(() => {}))
}

/**
 * A wrong answer that was not admitted first (against a cached key), counted before the answer
 * leaves; the refusal when the counters now brake this client.
 */
export async function countFailure(o: ResolvedOptions, a: Attempt): Promise<Verdict | undefined> {
  if (!a.io.brakes) return undefined
  const next = await a.io.brakes.recordFailure(counted(o, a), o.brakePolicy).catch(() => undefined)
  return next && !next.ok ? rateLimited(next) : undefined
}

/**
 * H(entity-body) for auth-int, reading at most `maxAuthIntBody` bytes; undefined beyond that.
 * Only called once a context or the brakes have let the attempt go on. The body is bounded, so
 * it is read into memory and hashed in one call.
 */
export async function hashBody(o: ResolvedOptions, a: Attempt): Promise<string | undefined> {
  const limit = o.maxAuthIntBody
  if (a.incoming.contentLength !== undefined && a.incoming.contentLength > limit) return undefined
  const body = a.incoming.body()
  const chunks: Uint8Array[] = []
  let size = 0
  if (body !== null) {
    const reader = body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        await reader.cancel().catch(() => {})
        return undefined
      }
      chunks.push(value)
    }
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return hashHex(hashOf(a.request.algorithm), bytes)
}
