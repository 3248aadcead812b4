/**
 * The security-context Durable Object: one per context handle (the opaque). It holds the principal
 * and the Digest session key the authority returned, and per-nonce nc state. One RPC call per later
 * request verifies the response from the cached key and checks-and-records nc. Every method runs
 * synchronously from its first read to its last write, so concurrent requests (replays, guesses)
 * are judged one after another against the state the previous one left.
 *
 * Nothing is stored until a context is established: a stranger's request with a fresh nonce reads,
 * finds no tables, and leaves the object empty.
 */
import { DurableObject } from 'cloudflare:workers'
import type { Principal } from '../authority-protocol/v1.ts'
import {
  checkNc,
  deserializeNcState,
  MAX_NC,
  type NcState,
  recordNc,
  serializeNcState,
  usedUpTo,
} from '../digest/nc-window.ts'
import type { AlgorithmName } from '../digest/types.ts'
import { hasRunOut, precheck, responseMatches, rspauthFor } from './context-check.ts'
import type {
  CachedContext,
  ContextPolicy,
  ContextRequest,
  EstablishAnswer,
  EstablishRequest,
  VerifyAnswer,
} from './context-types.ts'

/** Wrong responses from one bucket are counted over this long. */
const FAILURE_WINDOW_SECONDS = 300

/** A guesser cycling buckets cannot grow one context without bound: the oldest rows go first. */
const MAX_FAILURE_ROWS = 256

/** last_used is written at most this often (or a quarter of a shorter idle timeout). */
const LAST_USED_RESOLUTION_SECONDS = 60

/**
 * nc values are reserved this many at a time: the nc state lives in memory and a reservation
 * mark is written only when an accepted nc is not covered by what storage holds, so most requests
 * commit nothing. After a crash every nc up to the mark counts as used (no replay gets through;
 * the client gets stale=true once).
 */
const NC_RESERVATION = 64

/**
 * Once a nonce has been quiet this long its exact nc state is written and its mark lowered to
 * the highest nc seen, so that after an idle eviction the client carries on without a stale.
 */
const NC_FLUSH_MS = 2000

/** nc state outlives its nonce by this much (clock skew between isolates, late replays). */
const NONCE_GRACE_SECONDS = 120

/** 1: the first release (no schema table); 2: `ended`, `binding`, failures per bucket. */
const SCHEMA_VERSION = 2

interface NcEntry {
  /** The exact state: every nc accepted, in memory. */
  state: NcState
  /** The reservation mark storage holds. */
  reserved: number
  /** Storage holds the exact state (mark lowered), so it covers no nc accepted since. */
  persistedExact: boolean
  expires: number
  dirty: boolean
}

export class SecurityContext extends DurableObject {
  /** Cached copy of the single context row; undefined = not loaded, null = none. */
  private row: CachedContext | null | undefined
  private tables: boolean | undefined
  private alarmAt: number | undefined
  private flushTimer: ReturnType<typeof setTimeout> | undefined
  private readonly ncStates = new Map<string, NcEntry>()

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
    }
    if (req.qop === 'auth-int' && req.bodyHash === undefined) return { kind: 'need_body' }
    if (!responseMatches(row, req)) {
      this.recordFailure(req.bucket, req.now)
      return { kind: 'mismatch' }
    }
    if (req.nonceExpired) return { kind: 'stale' }
    if (!this.checkAndRecordNc(req, policy)) return { kind: 'replay', verified: true }
    if (req.now - row.lastUsed >= Math.min(LAST_USED_RESOLUTION_SECONDS, row.idleTimeout / 4)) {
      this.ctx.storage.sql.exec('UPDATE context SET last_used = ? WHERE id = 1', req.now)
      row.lastUsed = req.now
    }
    const rspauth = rspauthFor(row, req)
    if (req.now - row.verifiedAt >= policy.revalidateAfter) {
      return { kind: 'revalidate', principal: row.principal, rspauth, verifiedAt: row.verifiedAt }
    }
    const cached = policy.replay === 'off' ? { cached: { ...row } } : {}
    return { kind: 'ok', principal: row.principal, rspauth, ...cached }
  }

  /** After the authority accepted a request: cache principal and key, record nc, in one step. */
  establish(req: EstablishRequest, policy: ContextPolicy): EstablishAnswer {
    this.ensureTables()
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
    this.writeRow(row)
    this.scheduleAlarm(Math.min(row.expires, req.now + policy.idleTimeout))
    if (req.nonceExpired) return { kind: 'stale' }
    return { kind: 'ok', rspauth: rspauthFor(row, req) }
  }

  /** The authority vouched for the user again: keep the session, with the groups it returned. */
  revalidated(principal: Principal, now: number): void {
    const row = this.load()
    if (!row || row.ended || row.revoked || row.principal.name !== principal.name) return
    this.ctx.storage.sql.exec(
      'UPDATE context SET principal = ?, verified_at = ? WHERE id = 1',
      JSON.stringify(principal),
      now
    )
    row.principal = principal
    row.verifiedAt = now
  }

  /**
   * DeleteSecurityContext: forget the key; later requests on this handle get a fresh challenge.
   * A handle with no context yet (its establish still in flight) is revoked too, so the establish
   * that lands later is refused. nc state is kept: it outlives every nonce. True when a live
   * session was ended.
   */
  revoke(now: number, policy: ContextPolicy): boolean {
    this.ensureTables()
    const row = this.load()
    // Kept at least as long as a nonce issued now could be answered.
    const keepUntil = now + policy.nonceLifetime + NONCE_GRACE_SECONDS
    if (row) {
      const wasLive = !row.ended && !row.revoked
      row.expires = Math.max(row.expires, keepUntil)
      this.ctx.storage.sql.exec(
        "UPDATE context SET revoked = 1, session_key = '', expires = ? WHERE id = 1",
        row.expires
      )
      row.revoked = true
      row.sessionKey = ''
      this.scheduleAlarm(row.expires)
      return wasLive
    }
    this.writeRow({
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
    })
    this.scheduleAlarm(keepUntil)
    return false
  }

  /**
   * End the session once it has run out; drop nc state of expired nonces; empty the object once
   * nothing is left that a valid nonce could still need.
   */
  override async alarm(): Promise<void> {
    this.alarmAt = undefined
    if (!this.hasTables()) return
    const now = Math.floor(Date.now() / 1000)
    const row = this.load()
    if (row && !row.ended && !row.revoked && hasRunOut(row, now)) this.end(row)
    this.ctx.storage.sql.exec('DELETE FROM nonces WHERE expires <= ?', now)
    for (const [nonce, entry] of this.ncStates) {
      if (entry.expires <= now) this.ncStates.delete(nonce)
    }
    const next = this.ctx.storage.sql
      .exec<{ at: number | null }>('SELECT MIN(expires) AS at FROM nonces')
      .one().at
    const live = row && !row.ended && !row.revoked
    // A revoked handle stays revoked until no nonce naming it can be valid any more.
    if (!live && next === null && (!row || row.ended || now >= row.expires)) {
      await this.ctx.storage.deleteAll()
      this.tables = false
      this.row = null
      this.ncStates.clear()
      return
    }
    const rowAt = !row
      ? Number.POSITIVE_INFINITY
      : live
        ? Math.min(row.expires, row.lastUsed + row.idleTimeout)
        : row.expires
    const at = Math.min(rowAt, next ?? Number.POSITIVE_INFINITY)
    // A tombstone past its time waits only for its nonces.
    if (Number.isFinite(at)) this.scheduleAlarm(Math.max(at, now + 1))
  }

  /** No usable key: a used nc is refused here, before anyone asks the authority about it. */
  private withoutKey(
    req: ContextRequest,
    policy: ContextPolicy,
    reason: 'no_context' | 'expired' | 'other_user'
  ): VerifyAnswer {
    if (!req.nonceExpired && this.ncUsed(req, policy)) return { kind: 'replay', verified: false }
    return { kind: 'ask_authority', reason }
  }

  /** The session ran out: its key goes, its owner and nc state stay. */
  private end(row: CachedContext): void {
    this.ctx.storage.sql.exec("UPDATE context SET ended = 1, session_key = '' WHERE id = 1")
    row.ended = true
    row.sessionKey = ''
  }

  private failuresOf(bucket: string, now: number): number {
    const row = this.failureRow(bucket)
    return row && now - row.since < FAILURE_WINDOW_SECONDS ? row.count : 0
  }

  private recordFailure(bucket: string, now: number): void {
    const row = this.failureRow(bucket)
    const fresh = !row || now - row.since >= FAILURE_WINDOW_SECONDS
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM failures WHERE since <= ?', now - FAILURE_WINDOW_SECONDS)
    sql.exec(
      'INSERT OR REPLACE INTO failures (bucket, count, since) VALUES (?, ?, ?)',
      bucket,
      fresh ? 1 : row.count + 1,
      fresh ? now : row.since
    )
    sql.exec(
      'DELETE FROM failures WHERE bucket NOT IN (SELECT bucket FROM failures ORDER BY since DESC LIMIT ?)',
      MAX_FAILURE_ROWS
    )
  }

  private failureRow(bucket: string): { count: number; since: number } | undefined {
    return this.ctx.storage.sql
      .exec<{ count: number; since: number }>(
        'SELECT count, since FROM failures WHERE bucket = ?',
        bucket
      )
      .toArray()[0]
  }

  /**
   * The nc this request counts as: its own, or 1 for the RFC 2069 form (no qop, no nc), which
   * makes such a nonce single-use. Undefined: nothing to check (replay mode off).
   */
  private ncOf(req: ContextRequest, policy: ContextPolicy): number | undefined {
    if (policy.replay === 'off') return undefined
    return req.nc ?? 1
  }

  private ncUsed(req: ContextRequest, policy: ContextPolicy): boolean {
    const nc = this.ncOf(req, policy)
    if (nc === undefined || !this.hasTables()) return false
    return checkNc(this.ncEntry(req, policy).state, nc, policy.replay) !== 'fresh'
  }

  private checkAndRecordNc(req: ContextRequest, policy: ContextPolicy): boolean {
    const nc = this.ncOf(req, policy)
    if (nc === undefined) return true
    const entry = this.ncEntry(req, policy)
    if (checkNc(entry.state, nc, policy.replay) !== 'fresh') return false
    entry.state = recordNc(entry.state, nc, policy.replay)
    // Every accepted nc is covered by storage before the answer leaves (the output gate holds
    // the answer until the write is durable): either under a reservation mark, or written now.
    const covered = !entry.persistedExact && nc <= entry.reserved
    if (!covered) {
      const first = entry.reserved === 0
      entry.reserved = Math.min(entry.state.highest + NC_RESERVATION, MAX_NC)
      entry.persistedExact = entry.reserved <= entry.state.highest
      this.writeNonce(req.nonce, entry)
      if (first) this.scheduleAlarm(entry.expires)
    }
    entry.dirty = true
    this.scheduleFlush()
    return true
  }

  private ncEntry(req: ContextRequest, policy: ContextPolicy): NcEntry {
    let entry = this.ncStates.get(req.nonce)
    if (entry) return entry
    const found = this.ctx.storage.sql
      .exec<{ state: ArrayBuffer; reserved: number; expires: number }>(
        'SELECT state, reserved, expires FROM nonces WHERE nonce = ?',
        req.nonce
      )
      .toArray()[0]
    const stored = found && deserializeNcState(new Uint8Array(found.state), policy.windowSize)
    const exact = found !== undefined && stored !== undefined && found.reserved <= stored.highest
    entry = {
      // Past the exact state, anything up to the mark may have been used before a crash.
      state: exact ? stored : usedUpTo(found?.reserved ?? 0, policy.windowSize),
      reserved: found?.reserved ?? 0,
      persistedExact: exact,
      expires: found?.expires ?? req.nonceIssuedAt + policy.nonceLifetime + NONCE_GRACE_SECONDS,
      dirty: false,
    }
    this.ncStates.set(req.nonce, entry)
    return entry
  }

  private writeNonce(nonce: string, entry: NcEntry): void {
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO nonces (nonce, state, reserved, expires) VALUES (?, ?, ?, ?)',
      nonce,
      serializeNcState(entry.state),
      entry.reserved,
      entry.expires
    )
  }

  /**
   * Write the exact nc states (one commit) and lower their marks: what a quiet spell triggers, so
   * that after an idle eviction the client carries on without a stale.
   */
  flushNcState(): void {
    for (const [nonce, entry] of this.ncStates) {
      if (!entry.dirty) continue
      entry.dirty = false
      entry.reserved = entry.state.highest
      entry.persistedExact = true
      this.writeNonce(nonce, entry)
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer)
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flushNcState()
    }, NC_FLUSH_MS)
  }

  /** Alarms fire at the earliest due time; later ones are kept by rescheduling after each sweep. */
  private scheduleAlarm(atSeconds: number): void {
    const at = atSeconds * 1000
    if (this.alarmAt !== undefined && this.alarmAt <= at) return
    this.alarmAt = at
    void this.ctx.storage.setAlarm(at)
  }

  /**
   * Does this object hold a context (tables exist)? Reading this writes nothing, so an object a
   * stranger woke up stays empty. An object written by an earlier release is brought up to date
   * in place the first time it is found.
   */
  private hasTables(): boolean {
    if (this.tables === undefined) {
      this.tables = this.tableExists('context')
      if (this.tables && this.schemaVersion() !== SCHEMA_VERSION) this.createOrMigrate()
    }
    return this.tables
  }

  private ensureTables(): void {
    if (!this.hasTables()) this.createOrMigrate()
  }

  /** Create the tables, or bring an object written by an earlier release up to date. */
  private createOrMigrate(): void {
    const sql = this.ctx.storage.sql
    if (this.tableExists('context')) {
      // Version 1: no `ended`/`binding` columns, failures keyed by exact address.
      sql.exec('ALTER TABLE context ADD COLUMN ended INTEGER NOT NULL DEFAULT 0')
      sql.exec('ALTER TABLE context ADD COLUMN binding TEXT')
      sql.exec('ALTER TABLE failures RENAME COLUMN ip TO bucket')
    } else {
      sql.exec(`CREATE TABLE context (
        id INTEGER PRIMARY KEY CHECK (id = 1), username TEXT NOT NULL, userhash INTEGER NOT NULL,
        realm TEXT NOT NULL, principal TEXT NOT NULL, algorithm TEXT NOT NULL,
        session_key TEXT NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL,
        verified_at INTEGER NOT NULL, expires INTEGER NOT NULL, idle_timeout INTEGER NOT NULL,
        revoked INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0, binding TEXT)`)
      // Wrong responses per client bucket: a guesser is stopped without locking out the real
      // client, who answers from another bucket.
      sql.exec(
        'CREATE TABLE failures (bucket TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL)'
      )
      sql.exec(
        'CREATE TABLE nonces (nonce TEXT PRIMARY KEY, state BLOB NOT NULL, reserved INTEGER NOT NULL, expires INTEGER NOT NULL)'
      )
    }
    sql.exec('CREATE TABLE IF NOT EXISTS schema (version INTEGER NOT NULL)')
    sql.exec('DELETE FROM schema')
    sql.exec('INSERT INTO schema (version) VALUES (?)', SCHEMA_VERSION)
    this.tables = true
    this.row = undefined
  }

  private tableExists(name: string): boolean {
    return (
      this.ctx.storage.sql
        .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name)
        .toArray().length > 0
    )
  }

  private schemaVersion(): number {
    if (!this.tableExists('schema')) return 1
    return this.ctx.storage.sql.exec<{ version: number }>('SELECT version FROM schema').one()
      .version
  }

  private writeRow(row: CachedContext): void {
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO context (id, username, userhash, realm, principal, algorithm,
        session_key, created, last_used, verified_at, expires, idle_timeout, revoked, ended, binding)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      row.username,
      row.userhash ? 1 : 0,
      row.realm,
      JSON.stringify(row.principal),
      row.algorithm,
      row.sessionKey,
      row.created,
      row.lastUsed,
      row.verifiedAt,
      row.expires,
      row.idleTimeout,
      row.revoked ? 1 : 0,
      row.ended ? 1 : 0,
      row.binding ?? null
    )
    this.row = row
  }

  private load(): CachedContext | null {
    if (this.row !== undefined) return this.row
    if (!this.hasTables()) return null
    const r = this.ctx.storage.sql
      .exec<Record<string, SqlStorageValue>>('SELECT * FROM context WHERE id = 1')
      .toArray()[0]
    this.row = r
      ? {
          username: String(r.username),
          userhash: r.userhash === 1,
          realm: String(r.realm),
          principal: JSON.parse(String(r.principal)) as Principal,
          algorithm: String(r.algorithm) as AlgorithmName,
          sessionKey: String(r.session_key),
          created: Number(r.created),
          lastUsed: Number(r.last_used),
          verifiedAt: Number(r.verified_at),
          expires: Number(r.expires),
          idleTimeout: Number(r.idle_timeout),
          revoked: r.revoked === 1,
          ended: r.ended === 1,
          binding: typeof r.binding === 'string' ? r.binding : undefined,
        }
      : null
    return this.row
  }
}
