/**
 * Authenticating one request, as a verdict, in named steps: parse the credentials, check them
 * against the offer, MAC-check nonce and opaque (no I/O), ask the security context, and where it
 * cannot decide, the initial authentication with the authority (admitted by the brakes); and the
 * periodic revalidation of an established context.
 *
 * An answer on a fresh nonce (a bare challenge's: its handle names no context yet) whose handle
 * this isolate has not seen verified may be a stranger's: it is admitted by the brakes and
 * verified by the authority before any security-context object is touched, so a stranger creates
 * no object (on workerd, any call to an object creates its database file).
 */
import type { Principal, VerifyRequest } from '../authority-protocol/v1.ts'
import { validateVerifyRequest } from '../authority-protocol/validate.ts'
import { hashOf } from '../digest/algorithms.ts'
import { readBodyUpTo } from '../digest/bounded-body.ts'
import { DigestError } from '../digest/errors.ts'
import { hashHex } from '../digest/hash.ts'
import { parseAuthorization } from '../digest/header.ts'
import type { TokenMinter } from '../digest/tokens.ts'
import type { AlgorithmName, DigestCredentials } from '../digest/types.ts'
import type { AuthorityAnswer, AuthorityClient } from './authority-client.ts'
import type { BrakeAttempt, BrakeStore } from './brake-policy.ts'
import { precheck, verifyResponse } from './context-state.ts'
import type { ClientFacts, ContextRequest, ContextStore, VerifyAnswer } from './context-types.ts'
import type { IsolateContextCache } from './isolate-cache.ts'
import type { KnownHandles } from './known-handles.ts'
import { DEFAULTS } from './options.ts'
import { uriMatchesTarget } from './request-path.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import {
  type Acceptance,
  authorityUnavailable,
  bodyTooLarge,
  challengeFor,
  invalidRequest,
  rateLimited,
  staleFor,
  type Verdict,
} from './verdict.ts'

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
  /** Address and user agent, read only when a session is established (for the console). */
  client?: () => ClientFacts
}

/** The stores and the authority an attempt may call (the middleware counts the calls). */
export interface Io {
  contexts: ContextStore
  brakes: BrakeStore | undefined
  authority: AuthorityClient
}

export interface Workspace {
  minter: TokenMinter
  isolateCache: IsolateContextCache
  /** Handles this isolate saw established or verified: their fresh nonces take the hot path. */
  known: KnownHandles
  /** Initial authentications in flight per context handle, in this isolate. */
  inflight: Map<string, Promise<Verdict>>
  /** This request's I/O. */
  io: Io
}

/** What the steps after parsing share. */
interface Attempt {
  handle: string
  /** The nonce was minted for a bare challenge (fresh handle). */
  fresh: boolean
  request: ContextRequest
  credentials: DigestCredentials
  nonceAgeSeconds: number
  incoming: Incoming
  io: Io
}

export async function authenticate(
  o: ResolvedOptions,
  req: Incoming,
  w: Workspace
): Promise<Verdict> {
  const parsed = parse(req.authorization)
  if (parsed.kind !== 'parsed') return parsed
  const creds = parsed.credentials
  const algorithm: AlgorithmName = creds.algorithm ?? 'MD5'
  // Without qop the response covers no nc (RFC 2069 form), so an nc sent anyway (digest-fetch
  // does) is the client's to change: counted, it let a captured answer through once per new nc.
  // Dropped, the nonce is single-use as the RFC 2069 form must be.
  if (creds.qop === undefined) {
    delete creds.nc
    delete creds.ncRaw
  }
  const verdict = await authenticateCredentials(o, req, w, creds, algorithm)
  return verdict.kind === 'accept' ? verdict : { ...verdict, algorithm }
}

async function authenticateCredentials(
  o: ResolvedOptions,
  req: Incoming,
  w: Workspace,
  creds: DigestCredentials,
  algorithm: AlgorithmName
): Promise<Verdict> {
  const refused = checkOffer(o, creds, algorithm, req)
  if (refused) return refused
  const tokens = await verifyTokens(o, creds, req.now, w.minter)
  if (tokens.kind !== 'valid') return tokens

  const attempt: Attempt = {
    handle: tokens.handle,
    fresh: tokens.fresh,
    credentials: creds,
    nonceAgeSeconds: tokens.ageSeconds,
    incoming: req,
    io: w.io,
    request: {
      username: creds.username,
      userhash: creds.userhash,
      realm: creds.realm,
      algorithm,
      nonce: creds.nonce,
      nonceIssuedAt: tokens.issuedAt,
      nonceExpired: tokens.expired,
      uri: creds.uri,
      method: req.method,
      response: creds.response,
      qop: creds.qop,
      nc: creds.nc,
      ncRaw: creds.ncRaw,
      cnonce: creds.cnonce,
      now: req.now,
      bucket: req.bucket,
      binding: req.binding,
    },
  }
  // Without brakes nothing can stop a stranger earlier: the context is asked first, as always.
  if (attempt.fresh && w.io.brakes && !w.known.has(attempt.handle)) {
    return unknownHandle(o, attempt, w)
  }
  return viaContext(o, attempt, w)
}

/** Steps 4 and 5: the context first (the hot path). */
async function viaContext(o: ResolvedOptions, a: Attempt, w: Workspace): Promise<Verdict> {
  const asked = await askContext(o, a, w)
  if (asked.kind !== 'ask') return asked
  return fromAnswer(o, asked.attempt, asked.answer, w)
}

/** Step 1: an Authorization header of the Digest scheme, parsed. */
function parse(
  header: string | undefined
): { kind: 'parsed'; credentials: DigestCredentials } | Verdict {
  if (!header || !/^\s*digest(\s|$)/i.test(header)) {
    return challengeFor('SEC_I_CONTINUE_NEEDED', header ? 'other_scheme' : 'no_credentials')
  }
  try {
    return { kind: 'parsed', credentials: parseAuthorization(header) }
  } catch (err) {
    if (err instanceof DigestError) return invalidRequest(`malformed_${err.code}`, err.message)
    throw err
  }
}

/** Step 2: what was offered must be what is answered; the uri must name the request target. */
function checkOffer(
  o: ResolvedOptions,
  creds: DigestCredentials,
  algorithm: AlgorithmName,
  req: Incoming
): Verdict | undefined {
  if (creds.realm !== o.realm) return challengeFor('SEC_E_LOGON_DENIED', 'realm_mismatch')
  if (!o.algorithms.includes(algorithm)) {
    return challengeFor('SEC_E_LOGON_DENIED', 'algorithm_not_offered')
  }
  if (creds.qop ? !o.qop.includes(creds.qop) : o.qop.length > 0) {
    return challengeFor('SEC_E_LOGON_DENIED', 'qop_not_offered')
  }
  if (creds.userhash && !o.userhash)
    return challengeFor('SEC_E_LOGON_DENIED', 'userhash_not_offered')
  if (o.validateUri && !uriMatchesTarget(creds.uri, req)) {
    return invalidRequest('uri_mismatch', 'the uri directive does not match the request target')
  }
  // A client-certificate binding needs a certificate: without one nothing is verified or stored.
  if (o.binding === 'client-cert' && req.binding === undefined) {
    return challengeFor('SEC_E_BAD_BINDINGS', 'bad_bindings')
  }
  return undefined
}

/** Step 3: nonce and opaque are MAC-checked before any storage or authority I/O. */
async function verifyTokens(
  o: ResolvedOptions,
  creds: DigestCredentials,
  now: number,
  minter: TokenMinter
): Promise<
  | {
      kind: 'valid'
      handle: string
      issuedAt: number
      expired: boolean
      ageSeconds: number
      fresh: boolean
    }
  | Verdict
> {
  const nonce = await minter.verifyNonce(creds.nonce, {
    serverId: o.serverId,
    now,
    lifetimeSeconds: o.nonceLifetime,
  })
  if (nonce.kind === 'invalid') return challengeFor('SEC_E_INVALID_HANDLE', `nonce_${nonce.reason}`)
  if (creds.opaque !== undefined) {
    const opaque = await minter.verifyOpaque(creds.opaque)
    if (opaque.kind === 'invalid')
      return challengeFor('SEC_E_INVALID_HANDLE', `opaque_${opaque.reason}`)
    if (opaque.handle !== nonce.handle) {
      return challengeFor('SEC_E_INVALID_HANDLE', 'opaque_nonce_mismatch')
    }
  }
  // The nonce names the context, so clients that drop the opaque still find theirs.
  return {
    kind: 'valid',
    handle: nonce.handle,
    issuedAt: nonce.issuedAt,
    expired: nonce.expired,
    ageSeconds: nonce.ageSeconds,
    fresh: nonce.fresh,
  }
}

/**
 * Step 4: the security context's answer. A bucket past its free mismatches is admitted by the
 * brakes first; auth-int bodies are hashed only once the context asks for them.
 */
async function askContext(
  o: ResolvedOptions,
  attempt: Attempt,
  w: Workspace
): Promise<{ kind: 'ask'; attempt: Attempt; answer: VerifyAnswer } | Verdict> {
  let a = attempt
  for (;;) {
    const answer = await verifyWithContext(o, a, w)
    if (answer.kind === 'admission_required' && a.io.brakes && !a.request.admitted) {
      const refused = await admit(o, a)
      if (refused) return refused
      a = { ...a, request: { ...a.request, admitted: true } }
      continue
    }
    if (answer.kind === 'need_body' && a.request.bodyHash === undefined) {
      const bodyHash = await hashBody(o, a)
      if (bodyHash === undefined) return bodyTooLarge(o.maxAuthIntBody)
      a = { ...a, request: { ...a.request, bodyHash } }
      continue
    }
    return { kind: 'ask', attempt: a, answer }
  }
}

/** Step 5: the context's answer as a verdict, or the authority where the context cannot decide. */
async function fromAnswer(
  o: ResolvedOptions,
  a: Attempt,
  answer: VerifyAnswer,
  w: Workspace
): Promise<Verdict> {
  switch (answer.kind) {
    case 'verified':
      verified(o, a, w)
      return accept(a, answer.principal, answer.rspauth, 'context')
    case 'revalidate':
      verified(o, a, w)
      return revalidate(o, a, answer)
    // Verified by the cached key: the user is real, and may be named in the log.
    case 'stale':
      return {
        ...staleFor('SEC_E_CONTEXT_EXPIRED', 'nonce_expired', a.handle),
        user: a.request.username,
      }
    case 'replay':
      return answer.verified
        ? { ...staleFor('SEC_E_LOGON_DENIED', 'nc_replay', a.handle), user: a.request.username }
        : challengeFor('SEC_E_LOGON_DENIED', 'nc_replay_unverified')
    case 'revoked':
      return challengeFor('SEC_E_INVALID_HANDLE', 'context_revoked')
    case 'bad_bindings':
      return challengeFor('SEC_E_BAD_BINDINGS', 'bad_bindings')
    case 'locked':
      return challengeFor('SEC_E_LOGON_DENIED', 'context_locked')
    case 'mismatch': {
      // An admitted attempt was counted when it was admitted; the first ones are counted now,
      // before the answer leaves, so a parallel burst is seen by the next admission.
      if (!a.request.admitted) {
        const braked = await countFailure(o, a)
        if (braked) return braked
      }
      return challengeFor('SEC_E_LOGON_DENIED', 'response_mismatch')
    }
    case 'admission_required':
    case 'need_body':
      // Only reached when the brakes are off or the body was already hashed: a contract breach.
      return challengeFor('SEC_E_LOGON_DENIED', answer.kind)
    case 'ask_authority':
      return coalescedInitialAuthentication(o, a, w)
  }
}

/**
 * Parallel first requests of one context (a page and its assets) wait for the first one's
 * authority call, then verify at the edge, instead of each asking the authority.
 */
async function coalescedInitialAuthentication(
  o: ResolvedOptions,
  a: Attempt,
  w: Workspace
): Promise<Verdict> {
  const inflight = w.inflight.get(a.handle)
  if (inflight) {
    await inflight.catch(() => {})
    const asked = await askContext(o, a, w)
    if (asked.kind !== 'ask') return asked
    if (asked.answer.kind !== 'ask_authority') return fromAnswer(o, asked.attempt, asked.answer, w)
  }
  return inflightFor(a.handle, w, initialAuthentication(o, a, w))
}

/** The first initial authentication of a handle in this isolate is the one others wait for. */
function inflightFor(handle: string, w: Workspace, attempt: Promise<Verdict>): Promise<Verdict> {
  if (!w.inflight.has(handle)) {
    w.inflight.set(handle, attempt)
    attempt.finally(() => w.inflight.delete(handle)).catch(() => {})
  }
  return attempt
}

/** The context cannot decide: the authority verifies the user, then the context is established. */
async function initialAuthentication(
  o: ResolvedOptions,
  a: Attempt,
  w: Workspace
): Promise<Verdict> {
  const vouched = await vouch(o, a)
  if (vouched.kind === 'undecided') return undecided(o, vouched)
  if (vouched.kind !== 'vouched') return vouched
  return establish(o, vouched, w)
}

/** A request the authority can judge, admitted by the brakes, then judged by the authority. */
async function vouch(o: ResolvedOptions, a: Attempt): Promise<Vouched | Undecided | Verdict> {
  const unverifiable = checkVerifiable(o, a)
  if (unverifiable) return unverifiable
  const admitted = await admitOnce(o, a)
  if (admitted.kind !== 'admitted') return admitted
  return askAuthority(o, admitted.attempt)
}

/** Nothing was decided: the attempt is given back, and the client told to retry later. */
function undecided(o: ResolvedOptions, u: Undecided): Verdict {
  settle(o, u.attempt, 'undecided')
  return u.refusal
}

/**
 * An answer on a fresh nonce whose handle this isolate does not know: a login, a client that
 * logged in on another isolate, a replay, or a stranger. Braked first, then verified by the
 * authority; only a user the authority vouched for reaches the context.
 */
async function unknownHandle(o: ResolvedOptions, a: Attempt, w: Workspace): Promise<Verdict> {
  const inflight = w.inflight.get(a.handle)
  if (inflight) {
    // A browser's parallel first requests: once the first one's login is through, the others
    // are verified at the edge with no brake call.
    await inflight.catch(() => {})
    if (w.known.has(a.handle)) return viaContext(o, a, w)
  }
  return inflightFor(a.handle, w, brakedFirst(o, a, w))
}

async function brakedFirst(o: ResolvedOptions, a: Attempt, w: Workspace): Promise<Verdict> {
  const vouched = await vouch(o, a)
  // A first answer (nc=1, or a single-use nonce) on a live nonce goes straight to establish: its
  // nc check refuses a replay of it without writing anything. Any other answer may belong to a
  // context established elsewhere, which then judges it as it judges every request (cached key,
  // nc window, binding), without being rewritten by it.
  const first = o.replay !== 'off' && !a.request.nonceExpired && (a.request.nc ?? 1) === 1
  if (vouched.kind === 'undecided') {
    // An authority outage must not end established sessions: a later answer is left to its
    // context (admitted already), as before this order existed. Only then can a stranger's
    // answer reach an object that does not exist: while the authority cannot answer.
    return first ? undecided(o, vouched) : contextDuringOutage(o, vouched, w)
  }
  if (vouched.kind !== 'vouched') return vouched
  if (first) return establish(o, vouched, w)
  const asked = await askContext(o, vouched.attempt, w)
  if (asked.kind !== 'ask') return asked
  const { answer } = asked
  if (answer.kind === 'ask_authority') return establish(o, vouched, w)
  if (answer.kind === 'revalidate') {
    // The authority has just vouched for the user: that was the revalidation.
    verified(o, asked.attempt, w)
    const { principal } = vouched.answer
    if (!(await a.io.contexts.revalidated(a.handle, principal, a.request.now))) {
      return challengeFor('SEC_E_INVALID_HANDLE', 'context_revoked')
    }
    return accept(asked.attempt, principal, answer.rspauth, 'authority')
  }
  return fromAnswer(o, asked.attempt, answer, w)
}

/**
 * The authority could not answer a later answer on a fresh nonce: its context decides. Where
 * there is no context at all (a later nc with no login behind it: a stranger's, all but surely),
 * the attempt stays counted, so that strangers reach objects during an outage only at the brakes'
 * rate; an ended session's is given back, as any undecided attempt.
 */
async function contextDuringOutage(
  o: ResolvedOptions,
  u: Undecided,
  w: Workspace
): Promise<Verdict> {
  const asked = await askContext(o, u.attempt, w)
  if (asked.kind !== 'ask') return asked
  const { answer } = asked
  if (answer.kind === 'ask_authority') {
    return answer.reason === 'no_context' ? u.refusal : undecided(o, u)
  }
  return fromAnswer(o, asked.attempt, answer, w)
}

/** Whatever the authority would refuse as invalid is the client's error (400), not an outage. */
function checkVerifiable(o: ResolvedOptions, a: Attempt): Verdict | undefined {
  // Protocol v1 is validated apart from the header grammar. The body is not hashed yet.
  const placeholder =
    a.request.qop === 'auth-int'
      ? '0'.repeat(hashOf(a.request.algorithm) === 'MD5' ? 32 : 64)
      : undefined
  const checked = validateVerifyRequest(toVerifyRequest(o.serverId, a.request, placeholder))
  if (checked.kind === 'invalid') {
    const { field, message } = checked.error
    return invalidRequest(`unverifiable_${field || 'request'}`, message)
  }
  return undefined
}

/** The attempt admitted by the brakes (once: an attempt the context had admitted is not asked). */
async function admitOnce(
  o: ResolvedOptions,
  a: Attempt
): Promise<{ kind: 'admitted'; attempt: Attempt } | Verdict> {
  if (!a.io.brakes || a.request.admitted) return { kind: 'admitted', attempt: a }
  const refused = await admit(o, a)
  if (refused) return refused
  return { kind: 'admitted', attempt: { ...a, request: { ...a.request, admitted: true } } }
}

/** What the authority vouched for: the user, with the session key to cache. */
interface Vouched {
  kind: 'vouched'
  /** With the body hash, for auth-int. */
  attempt: Attempt
  answer: Extract<AuthorityAnswer, { result: 'ok' }>
  /** When the authority was asked (Unix ms): a revocation after this moment wins. */
  startedAt: number
}

/**
 * The authority could not decide (a fault, or a key for another hash): the client learnt nothing.
 * The caller settles the attempt as `undecided`, or lets the context decide first.
 */
interface Undecided {
  kind: 'undecided'
  /** With the body hash, for auth-int. */
  attempt: Attempt
  refusal: Verdict
}

/** The authority verifies the request (an admitted attempt). */
async function askAuthority(
  o: ResolvedOptions,
  a: Attempt
): Promise<Vouched | Undecided | Verdict> {
  let request = a.request
  if (request.qop === 'auth-int' && request.bodyHash === undefined) {
    const bodyHash = await hashBody(o, a)
    if (bodyHash === undefined) return bodyTooLarge(o.maxAuthIntBody)
    request = { ...request, bodyHash }
  }
  // Milliseconds: a revocation in the same second as the login must still be ordered.
  const startedAt = Date.now()
  const answer = await a.io.authority.verify(toVerifyRequest(o.serverId, request, request.bodyHash))
  const asked = { ...a, request }
  if (answer.result === 'fault') {
    const refusal = authorityUnavailable(
      `authority_${answer.reason}`,
      DEFAULTS.retryAfterAuthorityFault
    )
    return { kind: 'undecided', attempt: asked, refusal }
  }
  if (answer.result === 'denied') {
    // Counted when it was admitted: a wrong password, an unknown user, an algorithm the user's
    // store cannot serve — all alike.
    return challengeFor('SEC_E_LOGON_DENIED', `authority_${answer.reason}`)
  }
  if (hashOf(answer.algorithm) !== hashOf(request.algorithm)) {
    const refusal = authorityUnavailable(
      'authority_wrong_algorithm',
      DEFAULTS.retryAfterAuthorityFault
    )
    return { kind: 'undecided', attempt: asked, refusal }
  }
  // The key cached must be the one the client's response was made with: a wrong key (a broken or
  // lying authority) would refuse every later request of the user, and count each as a guess.
  if (!verifyResponse({ sessionKey: answer.sessionKey }, request)) {
    const refusal = authorityUnavailable('authority_wrong_key', DEFAULTS.retryAfterAuthorityFault)
    return { kind: 'undecided', attempt: asked, refusal }
  }
  return { kind: 'vouched', attempt: asked, answer, startedAt }
}

/**
 * Cache the principal and key the authority returned. The attempt is given back to the brakes
 * only once the context is established: a captured request the authority verifies again (a
 * replay) is refused here (used nc, or another owner) and stays counted.
 */
async function establish(o: ResolvedOptions, v: Vouched, w: Workspace): Promise<Verdict> {
  const { attempt: a, answer } = v
  const established = await a.io.contexts.establish(
    a.handle,
    {
      ...a.request,
      principal: answer.principal,
      sessionKey: answer.sessionKey,
      startedAt: v.startedAt,
      client: a.incoming.client?.(),
    },
    o.policy
  )
  switch (established.kind) {
    case 'established':
      verified(o, a, w)
      return accept(a, answer.principal, established.rspauth, 'authority')
    case 'stale':
      return staleFor('SEC_E_CONTEXT_EXPIRED', 'nonce_expired', a.handle)
    case 'replay':
      return staleFor('SEC_E_LOGON_DENIED', 'nc_replay', a.handle)
    case 'taken':
      return challengeFor('SEC_E_INVALID_HANDLE', 'handle_taken')
    case 'revoked':
      return challengeFor('SEC_E_INVALID_HANDLE', 'context_revoked')
  }
}

/**
 * The user is verified: an admitted attempt is given back to the brakes, and a fresh nonce's
 * handle takes the hot path in this isolate from now on.
 */
function verified(o: ResolvedOptions, a: Attempt, w: Workspace): void {
  if (a.request.admitted) settle(o, a, 'succeeded')
  if (a.fresh) w.known.add(a.handle)
}

/**
 * The cached key verified the request (nc recorded) but the authority is due to re-verify the
 * user. Its verdict decides; when it cannot be reached, the session keeps working for
 * REVALIDATE_GRACE past the due time, so an authority outage does not end established sessions.
 */
async function revalidate(
  o: ResolvedOptions,
  a: Attempt,
  due: Extract<VerifyAnswer, { kind: 'revalidate' }>
): Promise<Verdict> {
  const answer = await a.io.authority.verify(
    toVerifyRequest(o.serverId, a.request, a.request.bodyHash)
  )
  if (answer.result === 'ok' && hashOf(answer.algorithm) === hashOf(a.request.algorithm)) {
    // A revocation that landed while the authority was asked wins, as it does over a login.
    if (!(await a.io.contexts.revalidated(a.handle, answer.principal, a.request.now))) {
      return challengeFor('SEC_E_INVALID_HANDLE', 'context_revoked')
    }
    return accept(a, answer.principal, due.rspauth, 'authority')
  }
  if (answer.result === 'denied') {
    // The authority no longer vouches for this context's user: drop the cached key now.
    await a.io.contexts.revoke(a.handle, a.request.now, o.policy)
    return challengeFor('SEC_E_LOGON_DENIED', `authority_${answer.reason}`)
  }
  const reason = answer.result === 'fault' ? answer.reason : 'wrong_algorithm'
  if (a.request.now < due.verifiedAt + o.revalidateAfter + o.revalidateGrace) {
    return accept(a, due.principal, due.rspauth, 'context', `authority_${reason}`)
  }
  return authorityUnavailable(`authority_${reason}`, DEFAULTS.retryAfterAuthorityFault)
}

/**
 * At most one Durable Object call (none when the request rides in another's batch); in replay
 * mode `off`, none once the isolate cache is warm.
 */
async function verifyWithContext(
  o: ResolvedOptions,
  a: Attempt,
  w: Workspace
): Promise<VerifyAnswer> {
  const req = a.request
  if (o.replay === 'off' && req.qop !== 'auth-int') {
    const local = verifyFromIsolate(w.isolateCache, a.handle, req)
    if (local) return local
  }
  // The request goes along: its verify may travel in a batch with others of the same handle.
  const answer = await a.io.contexts.verify(a.handle, req, o.policy, a.incoming)
  if (answer.kind === 'verified' || answer.kind === 'revalidate') {
    answer.principal = samePrincipal(a.handle, answer.principal)
  }
  if (o.replay !== 'off') return answer
  if (answer.kind === 'verified' && answer.cached) {
    w.isolateCache.put(a.handle, req.bucket, answer.cached, req.now, o.revalidateAfter)
  } else {
    w.isolateCache.delete(a.handle, req.bucket)
  }
  return answer
}

/**
 * The principal last answered for each handle in this isolate. An answer that crosses the RPC is
 * a new object each time, while the forwarder builds a principal's identity headers, and its
 * assertion of the second, once per principal object: a session's answers share the kept one
 * while its name and groups stay the same. Dropped whole when full.
 */
const recentPrincipals = new Map<string, Principal>()
const RECENT_PRINCIPALS_MAX = 4096

function samePrincipal(handle: string, principal: Principal): Principal {
  const kept = recentPrincipals.get(handle)
  if (kept === principal) return kept
  if (kept && kept.name === principal.name && sameGroups(kept.groups, principal.groups)) return kept
  if (recentPrincipals.size >= RECENT_PRINCIPALS_MAX) recentPrincipals.clear()
  recentPrincipals.set(handle, principal)
  return principal
}

function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Verify from the isolate cache with no storage call. Undefined = not cached or not decidable
 * here: the Durable Object then decides, and counts failures. Entries serve only the bucket that
 * verified them, and a wrong answer drops the entry, so guesses always reach the object.
 */
function verifyFromIsolate(
  cache: IsolateContextCache,
  handle: string,
  req: ContextRequest
): VerifyAnswer | undefined {
  const row = cache.get(handle, req.bucket, req.now)
  if (!row || precheck(row, req)) return undefined
  const verified = verifyResponse(row, req)
  if (!verified) {
    cache.delete(handle, req.bucket)
    return undefined
  }
  if (req.nonceExpired) return { kind: 'stale' }
  return { kind: 'verified', principal: row.principal, rspauth: verified.rspauth() }
}

function accept(
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
    user: brakeUser(a.request),
    now: Date.now() / 1000,
  }
}

/**
 * The user as the brakes count it. A userhash is hex, which an authority reads in any case: left
 * as sent, each mix of cases of its hex letters got counters of its own (millions of spellings
 * per user), and the per-user limits never saw a guesser.
 */
function brakeUser(r: ContextRequest): string {
  return r.userhash ? r.username.toLowerCase() : r.username
}

/**
 * Ask the brakes to admit this attempt (counted now, as a failure until settled). Undefined when
 * admitted; otherwise the refusal: 429, or 503 when the brakes cannot be reached (unbraked
 * guessing is worse than a short outage of new logins).
 */
async function admit(o: ResolvedOptions, a: Attempt): Promise<Verdict | undefined> {
  if (!a.io.brakes) return undefined
  try {
    const verdict = await a.io.brakes.admit(counted(o, a), o.brakePolicy)
    return verdict.kind === 'admitted' ? undefined : rateLimited(verdict)
  } catch {
    return authorityUnavailable('brakes_unavailable', DEFAULTS.retryAfterAuthorityFault)
  }
}

/**
 * An admitted attempt is settled in the background: `succeeded` (verified) gives its count back,
 * `undecided` (the authority could not answer: the client learnt nothing) too.
 */
function settle(o: ResolvedOptions, a: Attempt, how: 'succeeded' | 'undecided'): void {
  const store = a.io.brakes
  if (!store) return
  a.incoming.waitUntil(store[how](counted(o, a), o.brakePolicy).catch(() => {}))
}

/**
 * A wrong answer that was not admitted first (against a cached key), counted before the answer
 * leaves; the refusal when the counters now brake this client.
 */
async function countFailure(o: ResolvedOptions, a: Attempt): Promise<Verdict | undefined> {
  if (!a.io.brakes) return undefined
  const next = await a.io.brakes.recordFailure(counted(o, a), o.brakePolicy).catch(() => undefined)
  return next?.kind === 'braked' ? rateLimited(next) : undefined
}

/**
 * H(entity-body) for auth-int, reading at most `maxAuthIntBody` bytes; undefined beyond that.
 * Only called once a context or the brakes have let the attempt go on. The body is bounded, so
 * it is read into memory and hashed in one call.
 */
async function hashBody(o: ResolvedOptions, a: Attempt): Promise<string | undefined> {
  const limit = o.maxAuthIntBody
  if (a.incoming.contentLength !== undefined && a.incoming.contentLength > limit) return undefined
  const bytes = await readBodyUpTo(a.incoming.body(), limit)
  if (bytes === undefined) return undefined
  return hashHex(hashOf(a.request.algorithm), bytes)
}

function toVerifyRequest(
  serverId: string,
  r: ContextRequest,
  bodyHash: string | undefined
): VerifyRequest {
  return {
    version: 1,
    serverId,
    method: r.method,
    directives: {
      username: r.username,
      userhash: r.userhash,
      realm: r.realm,
      nonce: r.nonce,
      uri: r.uri,
      response: r.response,
      algorithm: r.algorithm,
      qop: r.qop,
      nc: r.ncRaw,
      cnonce: r.cnonce,
    },
    bodyHash,
  }
}
