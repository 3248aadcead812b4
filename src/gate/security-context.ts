/**
 * The security context as a Durable Object: one per context handle (the opaque), its state in the
 * object's SQLite storage. Later requests are verified there from the cached key, one RPC per
 * request or one for the requests of a handle that arrive while its call is in flight
 * (VerifyBatches); ContextState decides, this module only stores, sweeps and schedules, and the
 * store below is how the gate reaches the objects.
 *
 * Nothing is stored until a context is established: a stranger's request with a fresh nonce reads,
 * finds no tables, and leaves the object empty.
 */
import { DurableObject } from 'cloudflare:workers'
import type { Principal } from '../authority-protocol/v1.ts'
import { deserializeNcState, serializeNcState } from '../digest/nc-window.ts'
import type { AlgorithmName } from '../digest/types.ts'
import { sessionReporter } from './console/reporters.ts'
import {
  ContextState,
  type ContextStorage,
  FAILURE_WINDOW_SECONDS,
  type StoredNonce,
} from './context-state.ts'
import type {
  CachedContext,
  ContextPolicy,
  ContextRequest,
  ContextStore,
  EstablishAnswer,
  EstablishRequest,
  VerifyAnswer,
} from './context-types.ts'
import { type UserContexts, userContextsName } from './user-contexts.ts'
import { batchingEnabled, type ItemResult, VerifyBatches } from './verify-batches.ts'

/** One request's verify in a batch. */
export interface VerifyItem {
  req: ContextRequest
  policy: ContextPolicy
}

/** An item's answer, or the message of what its verify threw. */
export type BatchedVerify = { answer: VerifyAnswer } | { error: string }

/** Once a nonce has been quiet this long its exact nc state is written (ContextState.flushNcState). */
const NC_FLUSH_MS = 2000

/** A guesser cycling buckets cannot grow one context without bound: the oldest rows go first. */
const MAX_FAILURE_ROWS = 256

/** 1: the first release (no schema table); 2: `ended`, `binding`, failures per bucket. */
const SCHEMA_VERSION = 2

export class SecurityContext extends DurableObject {
  private readonly storage = new SqliteContextStorage(this.ctx.storage.sql)
  private alarmAt: number | undefined
  private flushTimer: ReturnType<typeof setTimeout> | undefined
  /** When the nc state last changed (ms). */
  private lastNcChange = 0
  private readonly state = new ContextState(
    this.storage,
    {
      alarmAt: (at) => this.scheduleAlarm(at),
      // One timer per quiet spell, not one per request: it looks again when it fires.
      flushSoon: () => {
        this.lastNcChange = Date.now()
        if (this.flushTimer === undefined) this.flushAfter(NC_FLUSH_MS)
      },
    },
    // The operator's console, where the worker serves one: told of starts, uses and ends.
    sessionReporter(this.ctx, this.env)
  )

  private flushAfter(ms: number): void {
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      const quiet = Date.now() - this.lastNcChange
      if (quiet >= NC_FLUSH_MS) this.state.flushNcState()
      else this.flushAfter(NC_FLUSH_MS - quiet)
    }, ms)
  }

  verify(req: ContextRequest, policy: ContextPolicy): VerifyAnswer {
    return this.state.verify(req, policy)
  }

  /**
   * The concurrent verifies of one isolate in one call (VerifyBatches): judged one after another,
   * in arrival order, each exactly as `verify` would judge it alone. All run synchronously, so no
   * other call interleaves. What one item throws is its own answer; the items after it still run.
   */
  verifyMany(items: VerifyItem[]): BatchedVerify[] {
    return items.map(({ req, policy }) => {
      try {
        return { answer: this.state.verify(req, policy) }
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) }
      }
    })
  }

  establish(req: EstablishRequest, policy: ContextPolicy): EstablishAnswer {
    this.storage.ensureTables()
    return this.state.establish(req, policy)
  }

  revalidated(principal: Principal, now: number): void {
    this.state.revalidated(principal, now)
  }

  revoke(now: number, policy: ContextPolicy): boolean {
    this.storage.ensureTables()
    return this.state.revoke(now, policy)
  }

  /** The quiet-spell flush, callable directly (tests, and a host that wants it now). */
  flushNcState(): void {
    this.state.flushNcState()
  }

  override async alarm(): Promise<void> {
    this.alarmAt = undefined
    if (!this.storage.hasTables()) return
    const swept = this.state.sweep(Math.floor(Date.now() / 1000))
    if (swept.kind === 'empty') {
      await this.ctx.storage.deleteAll()
      this.storage.forget()
    } else if (swept.next !== undefined) {
      this.scheduleAlarm(swept.next)
    }
  }

  /** Alarms fire at the earliest due time; later ones are kept by rescheduling after each sweep. */
  private scheduleAlarm(atSeconds: number): void {
    const at = atSeconds * 1000
    if (this.alarmAt !== undefined && this.alarmAt <= at) return
    this.alarmAt = at
    void this.ctx.storage.setAlarm(at)
  }
}

/** A context's rows in its object's SQLite database. */
class SqliteContextStorage implements ContextStorage {
  private tables: boolean | undefined
  private readonly sql: SqlStorage

  constructor(sql: SqlStorage) {
    this.sql = sql
  }

  /**
   * Does this object hold a context (tables exist)? Reading this writes nothing, so an object a
   * stranger woke up stays empty. An object written by an earlier release is brought up to date in
   * place the first time it is found.
   */
  hasTables(): boolean {
    if (this.tables === undefined) {
      this.tables = this.tableExists('context')
      if (this.tables && this.schemaVersion() !== SCHEMA_VERSION) this.createOrMigrate()
    }
    return this.tables
  }

  ensureTables(): void {
    if (!this.hasTables()) this.createOrMigrate()
  }

  /** After deleteAll(): the tables went with the data. */
  forget(): void {
    this.tables = false
  }

  readRow(): CachedContext | null {
    if (!this.hasTables()) return null
    const r = this.sql
      .exec<Record<string, SqlStorageValue>>('SELECT * FROM context WHERE id = 1')
      .toArray()[0]
    if (!r) return null
    return {
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
  }

  writeRow(row: CachedContext): void {
    this.sql.exec(
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
  }

  readNonce(nonce: string, windowSize: number): StoredNonce | undefined {
    const found = this.sql
      .exec<{ state: ArrayBuffer; reserved: number; expires: number }>(
        'SELECT state, reserved, expires FROM nonces WHERE nonce = ?',
        nonce
      )
      .toArray()[0]
    if (!found) return undefined
    return {
      state: deserializeNcState(new Uint8Array(found.state), windowSize),
      reserved: found.reserved,
      expires: found.expires,
    }
  }

  writeNonce(nonce: string, stored: StoredNonce): void {
    this.sql.exec(
      'INSERT OR REPLACE INTO nonces (nonce, state, reserved, expires) VALUES (?, ?, ?, ?)',
      nonce,
      serializeNcState(stored.state),
      stored.reserved,
      stored.expires
    )
  }

  sweepNonces(now: number): number | undefined {
    this.sql.exec('DELETE FROM nonces WHERE expires <= ?', now)
    return (
      this.sql.exec<{ at: number | null }>('SELECT MIN(expires) AS at FROM nonces').one().at ??
      undefined
    )
  }

  failure(bucket: string): { count: number; since: number } | undefined {
    if (!this.hasTables()) return undefined
    return this.sql
      .exec<{ count: number; since: number }>(
        'SELECT count, since FROM failures WHERE bucket = ?',
        bucket
      )
      .toArray()[0]
  }

  writeFailure(bucket: string, count: number, since: number, now: number): void {
    this.sql.exec('DELETE FROM failures WHERE since <= ?', now - FAILURE_WINDOW_SECONDS)
    this.sql.exec(
      'INSERT OR REPLACE INTO failures (bucket, count, since) VALUES (?, ?, ?)',
      bucket,
      count,
      since
    )
    this.sql.exec(
      'DELETE FROM failures WHERE bucket NOT IN (SELECT bucket FROM failures ORDER BY since DESC LIMIT ?)',
      MAX_FAILURE_ROWS
    )
  }

  /** Create the tables, or bring an object written by an earlier release up to date. */
  private createOrMigrate(): void {
    const sql = this.sql
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
  }

  private tableExists(name: string): boolean {
    return (
      this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray()
        .length > 0
    )
  }

  private schemaVersion(): number {
    if (!this.tableExists('schema')) return 1
    return this.sql.exec<{ version: number }>('SELECT version FROM schema').one().version
  }
}

/** The contexts as Durable Objects: `SecurityContext` per handle, `UserContexts` per user. */
export function durableObjectContexts(
  contexts: DurableObjectNamespace<SecurityContext>,
  users: DurableObjectNamespace<UserContexts>
): ContextStore {
  // Sent from the request at the head of each batch: the stub is that request's own.
  const batches = batchingEnabled()
    ? new VerifyBatches<VerifyItem, VerifyAnswer>(async (handle, items) => {
        const stub = contexts.getByName(handle)
        const [only] = items
        if (items.length === 1 && only) {
          return [{ answer: await stub.verify(only.req, only.policy) }]
        }
        const results: BatchedVerify[] = await stub.verifyMany(items)
        return results.map(fromBatched)
      })
    : undefined
  return {
    verify: batches
      ? (handle, req, policy, caller) => batches.submit(handle, { req, policy }, caller)
      : (handle, req, policy) => contexts.getByName(handle).verify(req, policy),
    async establish(handle, req, policy) {
      // The index first: a user revocation that lands meanwhile then either refuses this add, or
      // finds the handle and revokes the context before (or after) it is written.
      const index = users.getByName(userContextsName(req.realm, req.principal.name))
      const indexed = await index.add(handle, req.now + policy.maxLifetime, req.now, req.startedAt)
      if (!indexed) return { kind: 'revoked' }
      const answer = await contexts.getByName(handle).establish(req, policy)
      // Another user's handle must not be revoked with this user.
      if (answer.kind === 'taken') await index.remove(handle)
      return answer
    },
    revalidated: (handle, principal, now) => contexts.getByName(handle).revalidated(principal, now),
    revoke: (handle, now, policy) => contexts.getByName(handle).revoke(now, policy),
    async revokeUser(realm, user, now, policy) {
      const handles = await users.getByName(userContextsName(realm, user)).takeAll(now, Date.now())
      const done = await Promise.all(handles.map((h) => contexts.getByName(h).revoke(now, policy)))
      return done.filter(Boolean).length
    },
  }
}

function fromBatched(r: BatchedVerify): ItemResult<VerifyAnswer> {
  return 'error' in r ? { error: new Error(r.error) } : r
}
