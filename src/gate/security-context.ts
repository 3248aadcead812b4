/**
 * The security-context Durable Object: one per context handle (the opaque). It holds the principal
 * and the Digest session key the authority returned, and per-nonce nc state. One RPC call per later
 * request verifies the response from the cached key and checks-and-records nc; the nc read and
 * write run in one synchronous block, so concurrent replays cannot both pass.
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
import { type CachedContext, precheck, responseMatches, rspauthFor } from './context-check.ts'
import type {
  ContextPolicy,
  ContextRequest,
  EstablishOutcome,
  EstablishRequest,
  VerifyOutcome,
} from './context-types.ts'

/** Mismatches from one address are counted over this long. */
const FAILURE_WINDOW_SECONDS = 300

/** last_used is written at most this often: the idle timeout needs no finer clock. */
const LAST_USED_RESOLUTION_SECONDS = 60

/**
 * nc values are reserved this many at a time: the nc state lives in memory and a reservation
 * mark is written only when an nc passes it, so most requests commit nothing. After a crash every
 * nc up to the mark counts as used (no replay gets through; the client gets stale=true once).
 */
const NC_RESERVATION = 64

/**
 * Once a nonce has been quiet this long its exact nc state is written and its mark lowered to
 * the highest nc seen, so that after an idle eviction the client carries on without a stale.
 */
const NC_FLUSH_MS = 2000

/** nc state outlives its nonce by this much, so a late replay is still recognised. */
const NONCE_GRACE_SECONDS = 120

export class SecurityContext extends DurableObject {
  /** Cached copy of the single context row; undefined = not loaded, null = none. */
  private row: CachedContext | null | undefined
  private alarmAt: number | undefined
  private flushTimer: ReturnType<typeof setTimeout> | undefined
  /** Per-nonce nc state; storage holds only each nonce's reservation mark. */
  private readonly ncStates = new Map<
    string,
    { state: NcState; reserved: number; expires: number; dirty: boolean }
  >()

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.createTables()
  }

  /** Idempotent; also after deleteAll(), which drops the tables with the data. */
  private createTables(): void {
    this.ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS context (
      id INTEGER PRIMARY KEY CHECK (id = 1), username TEXT NOT NULL, userhash INTEGER NOT NULL,
      realm TEXT NOT NULL, principal TEXT NOT NULL, algorithm TEXT NOT NULL,
      session_key TEXT NOT NULL, created INTEGER NOT NULL, last_used INTEGER NOT NULL,
      verified_at INTEGER NOT NULL, expires INTEGER NOT NULL, idle_timeout INTEGER NOT NULL,
      revoked INTEGER NOT NULL)`)
    // Mismatched responses per client address: a guesser is stopped without locking out the
    // real client, who answers from another address.
    this.ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS failures (ip TEXT PRIMARY KEY, count INTEGER NOT NULL, since INTEGER NOT NULL)'
    )
    this.ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, state BLOB NOT NULL, reserved INTEGER NOT NULL, expires INTEGER NOT NULL)'
    )
  }

  /** The hot path: verify a later request with the cached session key. */
  async verify(req: ContextRequest, policy: ContextPolicy): Promise<VerifyOutcome> {
    const row = this.load()
    if (!row) return { outcome: 'ask_authority', reason: 'no_context' }
    const early = precheck(row, req)
    if (early) return early
    if (this.failuresOf(req.clientIp, req.now) >= policy.maxFailures) return { outcome: 'locked' }
    if (!(await responseMatches(row, req))) {
      this.recordFailure(req.clientIp, req.now)
      return { outcome: 'mismatch' }
    }
    if (req.now - row.verifiedAt >= policy.revalidateAfter) {
      return { outcome: 'ask_authority', reason: 'revalidate' }
    }
    if (req.nonceExpired) return { outcome: 'stale' }

    // Synchronous from here to the write: the nc check-and-record is atomic.
    if (!this.checkAndRecordNc(req, policy)) return { outcome: 'replay' }
    if (req.now - row.lastUsed >= LAST_USED_RESOLUTION_SECONDS) {
      this.ctx.storage.sql.exec('UPDATE context SET last_used = ? WHERE id = 1', req.now)
      row.lastUsed = req.now
    }
    const rspauth = await rspauthFor(row, req)
    const key = policy.replay === 'off' ? { cached: { ...row } } : {}
    return { outcome: 'ok', principal: row.principal, rspauth, ...key }
  }

  /** After the authority accepted a request: cache principal and key, record nc, in one step. */
  async establish(req: EstablishRequest, policy: ContextPolicy): Promise<EstablishOutcome> {
    const prior = this.load()
    const created =
      prior && !prior.revoked && prior.username === req.username ? prior.created : req.now
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
    }
    const recorded = req.nonceExpired ? true : this.checkAndRecordNc(req, policy)
    this.ctx.storage.sql.exec(
      `INSERT OR REPLACE INTO context (id, username, userhash, realm, principal, algorithm,
        session_key, created, last_used, verified_at, expires, idle_timeout, revoked)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
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
      row.idleTimeout
    )
    this.row = row
    this.scheduleAlarm(Math.min(row.expires, req.now + policy.idleTimeout))
    // An idle check later than this is rescheduled by the alarm itself.
    if (req.nonceExpired) return { outcome: 'stale' }
    if (!recorded) return { outcome: 'replay' }
    const rspauth = await rspauthFor(row, req)
    return { outcome: 'ok', rspauth }
  }

  /** DeleteSecurityContext: forget the key; later requests on this handle get a fresh challenge. */
  revoke(): boolean {
    const row = this.load()
    this.ctx.storage.sql.exec('DELETE FROM nonces')
    this.ncStates.clear()
    if (!row) return false
    this.ctx.storage.sql.exec("UPDATE context SET revoked = 1, session_key = '' WHERE id = 1")
    row.revoked = true
    row.sessionKey = ''
    return true
  }

  /** Sweep expired nonce state; drop the whole context once it has expired or gone idle. */
  override async alarm(): Promise<void> {
    this.alarmAt = undefined
    const now = Math.floor(Date.now() / 1000)
    const row = this.load()
    if (!row || now >= row.expires || (!row.revoked && now >= row.lastUsed + row.idleTimeout)) {
      await this.ctx.storage.deleteAll()
      this.createTables()
      this.row = null
      this.ncStates.clear()
      return
    }
    this.ctx.storage.sql.exec('DELETE FROM nonces WHERE expires <= ?', now)
    for (const [nonce, entry] of this.ncStates)
      if (entry.expires <= now) this.ncStates.delete(nonce)
    const next = this.ctx.storage.sql
      .exec<{ at: number | null }>('SELECT MIN(expires) AS at FROM nonces')
      .one().at
    const idleAt = row.revoked ? row.expires : row.lastUsed + row.idleTimeout
    this.scheduleAlarm(Math.min(row.expires, idleAt, next ?? Number.POSITIVE_INFINITY))
  }

  private failuresOf(ip: string, now: number): number {
    const row = this.failureRow(ip)
    return row && now - row.since < FAILURE_WINDOW_SECONDS ? row.count : 0
  }

  private recordFailure(ip: string, now: number): void {
    const row = this.failureRow(ip)
    const fresh = !row || now - row.since >= FAILURE_WINDOW_SECONDS
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO failures (ip, count, since) VALUES (?, ?, ?)',
      ip,
      fresh ? 1 : row.count + 1,
      fresh ? now : row.since
    )
  }

  private failureRow(ip: string): { count: number; since: number } | undefined {
    return this.ctx.storage.sql
      .exec<{ count: number; since: number }>('SELECT count, since FROM failures WHERE ip = ?', ip)
      .toArray()[0]
  }

  private checkAndRecordNc(req: ContextRequest, policy: ContextPolicy): boolean {
    if (policy.replay === 'off' || req.nc === undefined) return true
    let entry = this.ncStates.get(req.nonce)
    if (!entry) {
      const found = this.ctx.storage.sql
        .exec<{ state: ArrayBuffer; reserved: number; expires: number }>(
          'SELECT state, reserved, expires FROM nonces WHERE nonce = ?',
          req.nonce
        )
        .toArray()[0]
      const stored = found && deserializeNcState(new Uint8Array(found.state), policy.windowSize)
      entry = {
        // Past the exact state, anything up to the mark may have been used before a crash.
        state:
          found && stored && found.reserved <= stored.highest
            ? stored
            : usedUpTo(found?.reserved ?? 0, policy.windowSize),
        reserved: found?.reserved ?? 0,
        expires: found?.expires ?? req.nonceIssuedAt + policy.nonceLifetime + NONCE_GRACE_SECONDS,
        dirty: false,
      }
      this.ncStates.set(req.nonce, entry)
    }
    if (checkNc(entry.state, req.nc, policy.replay) !== 'fresh') return false
    entry.state = recordNc(entry.state, req.nc, policy.replay)
    if (req.nc > entry.reserved) {
      const first = entry.reserved === 0
      entry.reserved = Math.min(req.nc + NC_RESERVATION, MAX_NC)
      this.writeNonce(req.nonce, entry)
      if (first) this.scheduleAlarm(entry.expires)
    }
    entry.dirty = true
    this.scheduleFlush()
    return true
  }

  private writeNonce(nonce: string, entry: { state: NcState; reserved: number; expires: number }) {
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO nonces (nonce, state, reserved, expires) VALUES (?, ?, ?, ?)',
      nonce,
      serializeNcState(entry.state),
      entry.reserved,
      entry.expires
    )
  }

  /** After a quiet spell, write the exact nc states (one commit) and lower their marks. */
  private scheduleFlush(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer)
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      for (const [nonce, entry] of this.ncStates) {
        if (!entry.dirty) continue
        entry.dirty = false
        entry.reserved = entry.state.highest
        this.writeNonce(nonce, entry)
      }
    }, NC_FLUSH_MS)
  }

  /** Alarms fire at the earliest due time; later ones are kept by rescheduling after each sweep. */
  private scheduleAlarm(atSeconds: number): void {
    const at = atSeconds * 1000
    if (this.alarmAt !== undefined && this.alarmAt <= at) return
    this.alarmAt = at
    void this.ctx.storage.setAlarm(at)
  }

  private load(): CachedContext | null {
    if (this.row !== undefined) return this.row
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
        }
      : null
    return this.row
  }
}
