/**
 * One security context's state and what it decides: the cached principal and session key, the nc
 * state of each of its nonces, and the wrong answers counted per client bucket. The same logic
 * serves the Durable Object (SQLite storage, src/gate/security-context.ts) and the in-memory store
 * (src/gate/memory-stores.ts); only where the rows live differs (ContextStorage).
 *
 * Every method runs synchronously from its first read to its last write, so concurrent requests
 * (replays, guesses) are judged one after another against the state the previous one left: a
 * Durable Object is atomic up to its next non-storage await, and there is none here.
 */
import type { Principal } from '../authority-protocol/v1.ts'
import {
  computeResponseDigests,
  computeRspauth,
  hashOf,
  type ResponseInput,
  timingSafeEqualString,
} from '../digest/algorithms.ts'
import { checkNc, MAX_NC, type NcState, recordNc, usedUpTo } from '../digest/nc-window.ts'
import type {
  CachedContext,
  ClientFacts,
  ContextPolicy,
  ContextRequest,
  EstablishAnswer,
  EstablishRequest,
  VerifyAnswer,
} from './context-types.ts'

/** Wrong responses from one bucket are counted over this long. */
export const FAILURE_WINDOW_SECONDS = 300

/** last_used is written at most this often (or a quarter of a shorter idle timeout). */
const LAST_USED_RESOLUTION_SECONDS = 60

/**
 * nc values are reserved this many at a time: the nc state lives in memory and a reservation mark
 * is written only when an accepted nc is not covered by what storage holds, so most requests
 * commit nothing. After a crash every nc up to the mark counts as used (no replay gets through;
 * the client gets stale=true once).
 */
const NC_RESERVATION = 64

/** Buckets whose failure counts a context keeps in memory (storage keeps its own bound). */
const MAX_REMEMBERED_BUCKETS = 256

/** Buckets a context remembers as its own client's (verified there): see `mustBeAdmitted`. */
const MAX_VERIFIED_BUCKETS = 16

/** nc state outlives its nonce by this much (clock skew between isolates, late replays). */
export const NONCE_GRACE_SECONDS = 120

/** A nonce's nc state as storage holds it. */
export interface StoredNonce {
  state: NcState
  /** The reservation mark: past the exact state, every nc up to it counts as used. */
  reserved: number
  expires: number
}

/** Where one context's rows live. Synchronous: the judgement must not await. */
export interface ContextStorage {
  /** The context row, or null; reading never writes (a stranger leaves no trace). */
  readRow(): CachedContext | null
  writeRow(row: CachedContext): void
  readNonce(nonce: string, windowSize: number): StoredNonce | undefined
  writeNonce(nonce: string, stored: StoredNonce): void
  /** Drops nc state of nonces expired at `now`; the earliest expiry left, if any. */
  sweepNonces(now: number): number | undefined
  /** Wrong answers counted for a bucket. */
  failure(bucket: string): { count: number; since: number } | undefined
  /** Sets a bucket's count, dropping counts older than the window and the oldest past a bound. */
  writeFailure(bucket: string, count: number, since: number, now: number): void
  /** When the latest count of any bucket began (its `since`), if any is kept. */
  lastFailure(): number | undefined
}

/** What the state asks of its host: an alarm to sweep, a quiet-spell flush of the nc state. */
export interface ContextScheduler {
  alarmAt(atSeconds: number): void
  flushSoon(): void
}

/**
 * What a context tells an observer about its session (the console's index). Called after the
 * state changed, never awaited; `used` only where the row is written anyway (the throttled
 * last-use record), so a verified request costs no extra write or call.
 */
export interface ContextEvents {
  /** A session began (or began again on its handle); `requests` verified by it: 1 or 0. */
  established(row: CachedContext, client: ClientFacts | undefined, requests: number): void
  /** Last use recorded, or the groups revalidated; `requests` verified since the last report. */
  used(row: CachedContext, requests: number): void
  /** The session is over: run out (expired, idle) or revoked. */
  over(row: CachedContext, why: 'ended' | 'revoked'): void
}

interface NcEntry extends StoredNonce {
  /** The exact state: every nc accepted. */
  state: NcState
  /** Storage holds the exact state (mark lowered), so it covers no nc accepted since. */
  persistedExact: boolean
  /**
   * Loaded under a reservation mark (a crash or eviction before the quiet-spell flush): the exact
   * state storage last held. An nc under the mark but not in it may never have been used.
   */
  snapshot?: NcState
  dirty: boolean
}

export class ContextState {
  /** Cached copy of the context row; undefined = not loaded, null = none. */
  private row: CachedContext | null | undefined
  private readonly ncStates = new Map<string, NcEntry>()
  /** Wrong answers per bucket as storage holds them; null = none stored. */
  private readonly failures = new Map<string, { count: number; since: number } | null>()
  private readonly storage: ContextStorage
  private readonly scheduler: ContextScheduler
  private readonly events: ContextEvents | undefined
  /** Requests verified since the last `used` report (in memory: approximate across evictions). */
  private verifiedSinceReport = 0
  /** When this context last got a wrong answer from any bucket; undefined: not read yet. */
  private lastFailureAt: number | null | undefined
  /** Buckets its own client was verified from (in memory: an eviction costs one admission). */
  private readonly verifiedBuckets = new Set<string>()

  constructor(storage: ContextStorage, scheduler: ContextScheduler, events?: ContextEvents) {
    this.storage = storage
    this.scheduler = scheduler
    this.events = events
  }

  /** The hot path: verify a later request with the cached session key. */
  verify(req: ContextRequest, policy: ContextPolicy): VerifyAnswer {
    const row = this.load()
    if (!row || row.ended) return this.withoutKey(req, policy, row ? 'expired' : 'no_context')
    const early = precheck(row, req)
    if (early) {
      if (early.kind !== 'ask_authority') return early
      if (early.reason === 'expired') this.end(row)
      return this.withoutKey(req, policy, early.reason)
    }
    if (this.failuresOf(req.bucket, req.now) >= policy.freeMismatches) {
      if (!policy.brakes) return { kind: 'locked' }
      if (!req.admitted) return { kind: 'admission_required' }
    } else if (policy.brakes && !req.admitted && this.mustBeAdmitted(req)) {
      return { kind: 'admission_required' }
    }
    if (req.qop === 'auth-int' && req.bodyHash === undefined) return { kind: 'need_body' }
    const verified = verifyResponse(row, req)
    if (!verified) {
      this.recordFailure(req.bucket, req.now)
      return { kind: 'mismatch' }
    }
    if (req.nonceExpired) return { kind: 'stale' }
    if (!this.checkAndRecordNc(req, policy)) return { kind: 'replay', verified: true }
    this.verifiedFrom(req.bucket)
    this.verifiedSinceReport++
    if (req.now - row.lastUsed >= Math.min(LAST_USED_RESOLUTION_SECONDS, row.idleTimeout / 4)) {
      this.save({ ...row, lastUsed: req.now })
      this.reportUse()
    }
    const rspauth = verified.rspauth()
    if (req.now - row.verifiedAt >= policy.revalidateAfter) {
      return { kind: 'revalidate', principal: row.principal, rspauth, verifiedAt: row.verifiedAt }
    }
    const cached = policy.replay === 'off' ? { cached: { ...row } } : {}
    return { kind: 'verified', principal: row.principal, rspauth, ...cached }
  }

  /** After the authority accepted a request: cache principal and key, record nc, in one step. */
  establish(req: EstablishRequest, policy: ContextPolicy): EstablishAnswer {
    const prior = this.load()
    if (prior?.revoked) return { kind: 'revoked' }
    // A handle belongs to its first principal: another user's answer to this nonce does not
    // replace the context (its key, its revocation index entry) of the user it was made for.
    if (prior && prior.principal.name !== req.principal.name) return { kind: 'taken' }
    if (!req.nonceExpired && !this.checkAndRecordNc(req, policy)) return { kind: 'replay' }
    const created = prior && !prior.ended && !hasRunOut(prior, req.now) ? prior.created : req.now
    const row: CachedContext = {
      username: req.username,
      userhash: req.userhash,
      realm: req.realm,
      principal: req.principal,
      algorithm: req.algorithm,
      sessionKey: req.sessionKey,
      created,
      lastUsed: req.now,
      verifiedAt: req.now,
      expires: created + policy.maxLifetime,
      idleTimeout: policy.idleTimeout,
      revoked: false,
      ended: false,
      binding: req.binding,
    }
    this.save(row)
    this.scheduler.alarmAt(Math.min(row.expires, req.now + policy.idleTimeout))
    this.verifiedFrom(req.bucket)
    this.verifiedSinceReport = 0
    this.events?.established(row, req.client, req.nonceExpired ? 0 : 1)
    if (req.nonceExpired) return { kind: 'stale' }
    return { kind: 'established', rspauth: rspauthFor(row, req) }
  }

  /**
   * The authority vouched for the user again: keep the session, with the groups it returned.
   * False when the context was revoked meanwhile (or is not this user's): the request whose
   * verify asked for the revalidation is refused, as a login revoked at the authority is.
   */
  revalidated(principal: Principal, now: number): boolean {
    const row = this.load()
    if (!row || row.revoked || row.principal.name !== principal.name) return false
    if (row.ended) return true
    this.save({ ...row, principal, verifiedAt: now })
    this.reportUse()
    return true
  }

  /**
   * DeleteSecurityContext: forget the key; later requests on this handle get a fresh challenge.
   * A handle with no context yet (its establish still in flight) is revoked too, so the establish
   * that lands later is refused. nc state is kept: it outlives every nonce. True when a live
   * session was ended.
   */
  revoke(now: number, policy: ContextPolicy): boolean {
    const row = this.load()
    // Kept at least as long as a nonce issued now could be answered.
    const keepUntil = now + policy.nonceLifetime + NONCE_GRACE_SECONDS
    const wasLive = row !== null && !row.ended && !row.revoked
    this.save(
      row
        ? { ...row, revoked: true, sessionKey: '', expires: Math.max(row.expires, keepUntil) }
        : {
            username: '',
            userhash: false,
            realm: '',
            principal: { name: '', groups: [] },
            algorithm: 'MD5',
            sessionKey: '',
            created: now,
            lastUsed: now,
            verifiedAt: now,
            expires: keepUntil,
            idleTimeout: 0,
            revoked: true,
            ended: false,
          }
    )
    this.scheduler.alarmAt(Math.max(row?.expires ?? 0, keepUntil))
    if (row) this.events?.over(row, 'revoked')
    return wasLive
  }

  /**
   * End the session once it has run out and drop nc state of expired nonces. Answers when to
   * sweep next (`kept`), or `empty` once nothing is left that a valid nonce could still need.
   */
  sweep(now: number): { kind: 'empty' } | { kind: 'kept'; next: number | undefined } {
    const row = this.load()
    if (row && !row.ended && !row.revoked && hasRunOut(row, now)) this.end(row)
    const nextNonce = this.storage.sweepNonces(now)
    for (const [nonce, entry] of this.ncStates) {
      if (entry.expires <= now) this.ncStates.delete(nonce)
    }
    const live = row !== null && !row.ended && !row.revoked
    // A revoked handle stays revoked until no nonce naming it can be valid any more.
    if (!live && nextNonce === undefined && (!row || row.ended || now >= row.expires)) {
      this.row = null
      this.ncStates.clear()
      return { kind: 'empty' }
    }
    const rowAt = !row
      ? Number.POSITIVE_INFINITY
      : live
        ? Math.min(row.expires, row.lastUsed + row.idleTimeout)
        : row.expires
    const at = Math.min(rowAt, nextNonce ?? Number.POSITIVE_INFINITY)
    return { kind: 'kept', next: Number.isFinite(at) ? Math.max(at, now + 1) : undefined }
  }

  /**
   * Write the exact nc states and lower their marks: what a quiet spell triggers, so that after an
   * idle eviction the client carries on without a stale.
   */
  flushNcState(): void {
    for (const [nonce, entry] of this.ncStates) {
      if (!entry.dirty) continue
      entry.dirty = false
      entry.reserved = entry.state.highest
      entry.persistedExact = true
      entry.snapshot = undefined
      this.storage.writeNonce(nonce, entry)
    }
  }

  /** No usable key: a used nc is refused here, before anyone asks the authority about it. */
  private withoutKey(
    req: ContextRequest,
    policy: ContextPolicy,
    reason: 'no_context' | 'expired' | 'other_user'
  ): VerifyAnswer {
    // Surely used: refused here. Only possibly used (under a mark after a crash): the authority
    // verifies it, and establish then refuses it as a verified replay (stale=true), which a real
    // client answers silently.
    if (!req.nonceExpired && this.ncUse(req, policy) === 'used') {
      return { kind: 'replay', verified: false }
    }
    return { kind: 'ask_authority', reason }
  }

  /** The session ran out: its key goes, its owner and nc state stay. */
  private end(row: CachedContext): void {
    this.save({ ...row, ended: true, sessionKey: '' })
    this.events?.over(row, 'ended')
  }

  /** The row just saved, with the requests verified since the last report. */
  private reportUse(): void {
    if (!this.events || !this.row) return
    this.events.used(this.row, this.verifiedSinceReport)
    this.verifiedSinceReport = 0
  }

  /**
   * A bucket under its own free mismatches, while this context is being guessed at from elsewhere.
   * Each bucket's first wrong answer is judged unadmitted, so a guesser holding many buckets (an
   * IPv6 /48, a botnet) would get one judged guess per bucket, past every brake counter, and a
   * right one verified. So once any bucket answered wrong within the window, a bucket this
   * context has not verified its client from is admitted by the brakes first; the client's own
   * buckets are not (they make no brake call).
   */
  private mustBeAdmitted(req: ContextRequest): boolean {
    if (this.verifiedBuckets.has(req.bucket)) return false
    if (this.lastFailureAt === undefined) this.lastFailureAt = this.storage.lastFailure() ?? null
    return this.lastFailureAt !== null && req.now - this.lastFailureAt < FAILURE_WINDOW_SECONDS
  }

  private verifiedFrom(bucket: string): void {
    this.verifiedBuckets.delete(bucket)
    this.verifiedBuckets.add(bucket)
    if (this.verifiedBuckets.size > MAX_VERIFIED_BUCKETS) {
      const oldest = this.verifiedBuckets.values().next().value
      if (oldest !== undefined) this.verifiedBuckets.delete(oldest)
    }
  }

  private failuresOf(bucket: string, now: number): number {
    const f = this.failure(bucket)
    return f && now - f.since < FAILURE_WINDOW_SECONDS ? f.count : 0
  }

  private recordFailure(bucket: string, now: number): void {
    const f = this.failure(bucket)
    const fresh = !f || now - f.since >= FAILURE_WINDOW_SECONDS
    const next = { count: fresh ? 1 : f.count + 1, since: fresh ? now : f.since }
    this.storage.writeFailure(bucket, next.count, next.since, now)
    this.rememberFailure(bucket, next)
    this.lastFailureAt = now
    // A bucket that answers wrong is a guesser's until its client is verified there again.
    this.verifiedBuckets.delete(bucket)
  }

  /**
   * A bucket's wrong answers, read from storage once: every later request asks (the hot path), and
   * this state is the only writer, so memory stays right.
   */
  private failure(bucket: string): { count: number; since: number } | undefined {
    if (this.failures.has(bucket)) return this.failures.get(bucket) ?? undefined
    const f = this.storage.failure(bucket)
    this.rememberFailure(bucket, f ?? null)
    return f
  }

  private rememberFailure(bucket: string, f: { count: number; since: number } | null): void {
    this.failures.delete(bucket)
    if (this.failures.size >= MAX_REMEMBERED_BUCKETS) {
      const oldest = this.failures.keys().next().value
      if (oldest !== undefined) this.failures.delete(oldest)
    }
    this.failures.set(bucket, f)
  }

  /**
   * The nc this request counts as: its own, or 1 for the RFC 2069 form (no qop, no nc), which
   * makes such a nonce single-use. Undefined: nothing to check (replay mode off).
   */
  private ncOf(req: ContextRequest, policy: ContextPolicy): number | undefined {
    if (policy.replay === 'off') return undefined
    return req.nc ?? 1
  }

  private ncUse(req: ContextRequest, policy: ContextPolicy): 'fresh' | 'uncertain' | 'used' {
    const nc = this.ncOf(req, policy)
    if (nc === undefined || this.load() === null) return 'fresh'
    const entry = this.ncEntry(req, policy)
    if (checkNc(entry.state, nc, policy.replay) === 'fresh') return 'fresh'
    const { snapshot } = entry
    return snapshot && checkNc(snapshot, nc, policy.replay) === 'fresh' ? 'uncertain' : 'used'
  }

  private checkAndRecordNc(req: ContextRequest, policy: ContextPolicy): boolean {
    const nc = this.ncOf(req, policy)
    if (nc === undefined) return true
    const entry = this.ncEntry(req, policy)
    if (checkNc(entry.state, nc, policy.replay) !== 'fresh') return false
    entry.state = recordNc(entry.state, nc, policy.replay)
    // Every accepted nc is covered by storage before the answer leaves (a Durable Object's output
    // gate holds the answer until the write is durable): under a reservation mark, or written now.
    const covered = !entry.persistedExact && nc <= entry.reserved
    if (!covered) {
      const first = entry.reserved === 0
      entry.reserved = Math.min(entry.state.highest + NC_RESERVATION, MAX_NC)
      entry.persistedExact = entry.reserved <= entry.state.highest
      this.storage.writeNonce(req.nonce, entry)
      if (first) this.scheduler.alarmAt(entry.expires)
    }
    entry.dirty = true
    this.scheduler.flushSoon()
    return true
  }

  private ncEntry(req: ContextRequest, policy: ContextPolicy): NcEntry {
    let entry = this.ncStates.get(req.nonce)
    if (entry) return entry
    const found = this.storage.readNonce(req.nonce, policy.windowSize)
    const exact = found !== undefined && found.reserved <= found.state.highest
    entry = {
      // Past the exact state, anything up to the mark may have been used before a crash.
      state: exact ? found.state : usedUpTo(found?.reserved ?? 0, policy.windowSize),
      reserved: found?.reserved ?? 0,
      persistedExact: exact,
      snapshot: found && !exact ? found.state : undefined,
      expires: found?.expires ?? req.nonceIssuedAt + policy.nonceLifetime + NONCE_GRACE_SECONDS,
      dirty: false,
    }
    this.ncStates.set(req.nonce, entry)
    return entry
  }

  private save(row: CachedContext): void {
    this.storage.writeRow(row)
    this.row = row
  }

  private load(): CachedContext | null {
    if (this.row === undefined) this.row = this.storage.readRow()
    return this.row
  }
}

/** Has the session run out (absolute lifetime or idle timeout)? */
export function hasRunOut(row: CachedContext, now: number): boolean {
  return now >= row.expires || now >= row.lastUsed + row.idleTimeout
}

/**
 * Outcomes decided before any hashing; undefined = the cached key may verify this request.
 * The caller has checked that the context exists and has not ended.
 */
export function precheck(row: CachedContext, req: ContextRequest): VerifyAnswer | undefined {
  if (row.revoked) return { kind: 'revoked' }
  // Channel binding is checked before the key is used: a request from another channel is never
  // verified from the cached key, right password or not.
  if (row.binding !== req.binding) return { kind: 'bad_bindings' }
  if (hasRunOut(row, req.now)) return { kind: 'ask_authority', reason: 'expired' }
  if (
    row.username !== req.username ||
    row.userhash !== req.userhash ||
    row.realm !== req.realm ||
    hashOf(row.algorithm) !== hashOf(req.algorithm)
  ) {
    return { kind: 'ask_authority', reason: 'other_user' }
  }
  return undefined
}

/**
 * The rspauth to answer with, made when asked, if the request's response is right for the cached
 * key; undefined if it is not. The two share their hashing (computeResponseDigests).
 */
export function verifyResponse(
  row: Pick<CachedContext, 'sessionKey'>,
  req: ContextRequest
): { rspauth(): string } | undefined {
  const digests = computeResponseDigests({ ...responseInput(req), ha1: row.sessionKey })
  return timingSafeEqualString(digests.response, req.response.toLowerCase()) ? digests : undefined
}

export function rspauthFor(row: CachedContext, req: ContextRequest): string {
  return computeRspauth({ ...responseInput(req), ha1: row.sessionKey })
}

function responseInput(req: ContextRequest): Omit<ResponseInput, 'ha1'> {
  return {
    algorithm: req.algorithm,
    nonce: req.nonce,
    nc: req.ncRaw,
    cnonce: req.cnonce,
    qop: req.qop,
    method: req.method,
    uri: req.uri,
    bodyHash: req.bodyHash,
  }
}
