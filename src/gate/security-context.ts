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

/**
 * One request's verify in a batch. The policy may come as its JSON text (policyText): one string
 * crosses the RPC boundary cheaper than an object's nine named fields, and the object parses it
 * only when it differs from the last one it was sent.
 */
export interface VerifyItem {
  req: ContextRequest
  policy: ContextPolicy | string
}

/** An item's answer, or the message of what its verify threw. */
export type BatchedVerify = { answer: VerifyAnswer } | { error: string }

/** Once a nonce has been quiet this long its exact nc state is written (ContextState.flushNcState). */
const NC_FLUSH_MS = 2000

/** Why a context object reset itself: it had gone quiet and its state was all in storage. */
const RELEASED = 'digest-gate: quiet security context released'

/** A guesser cycling buckets cannot grow one context without bound: the oldest rows go first. */
const MAX_FAILURE_ROWS = 256

/** 1: the first release (no schema table); 2: `ended`, `binding`, failures per bucket. */
const SCHEMA_VERSION = 2

export class SecurityContext extends DurableObject {
  private readonly storage = new SqliteContextStorage(this.ctx.storage.sql)
  private alarmAt: number | undefined
  private flushTimer: ReturnType<typeof setTimeout> | undefined
  /** When the pending timer fires (ms). */
  private flushAt = 0
  /** When the nc state last changed (ms). */
  private lastNcChange = 0
  /** Calls begun (RPCs and alarms), and when the last one began (ms): a release waits for quiet. */
  private calls = 0
  private lastCall = 0
  /** The policy's releaseAfter in ms, as the last call said; undefined: the runtime evicts. */
  private releaseAfterMs: number | undefined
  /** The last policy sent as text, and what it parsed to. */
  private policyText = ''
  private policy: ContextPolicy | undefined
  private sweeping = false
  private readonly state = new ContextState(
    this.storage,
    {
      alarmAt: (at) => this.scheduleAlarm(at),
      // One timer per quiet spell, not one per request: it looks again when it fires.
      flushSoon: () => {
        // Only called within a call, which begin() has just timed.
        this.lastNcChange = this.lastCall
        if (this.flushTimer !== undefined && this.flushAt <= this.lastNcChange + NC_FLUSH_MS) return
        // None, or one waiting to release the object later than this flush is due.
        if (this.flushTimer !== undefined) clearTimeout(this.flushTimer)
        this.flushAfter(NC_FLUSH_MS)
      },
    },
    // The operator's console, where the worker serves one: told of starts, uses and ends.
    sessionReporter(this.ctx, this.env)
  )

  /** After a quiet spell: the nc state is written, then (releaseAfterMs) the object released. */
  private flushAfter(ms: number): void {
    this.flushAt = Date.now() + ms
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      const now = Date.now()
      const ncQuiet = now - this.lastNcChange
      if (ncQuiet < NC_FLUSH_MS) return this.flushAfter(NC_FLUSH_MS - ncQuiet)
      this.state.flushNcState()
      if (this.releaseAfterMs === undefined) return
      const quiet = now - this.lastCall
      if (quiet < this.releaseAfterMs) return this.flushAfter(this.releaseAfterMs - quiet)
      void this.release()
    }, ms)
  }

  /**
   * Leave memory now rather than after workerd's 10 s without requests: on plain workerd a resident
   * object's native memory sets the process's high-water mark, which is never given back. Only
   * once its state is written and durable, and when no call began meanwhile: a call that meets the
   * reset has then not run here, and the store sends it again to a fresh instance, which reads
   * everything from storage.
   */
  private async release(): Promise<void> {
    const calls = this.calls
    if (this.sweeping) return
    await this.ctx.storage.sync()
    if (this.calls !== calls) return
    this.ctx.abort(RELEASED)
  }

  /** The policy a call was sent, parsed once per change of its text. */
  private policyOf(policy: ContextPolicy | string): ContextPolicy {
    if (typeof policy !== 'string') return policy
    if (policy !== this.policyText || this.policy === undefined) {
      this.policy = JSON.parse(policy) as ContextPolicy
      this.policyText = policy
    }
    return this.policy
  }

  private begin(policy?: ContextPolicy): void {
    this.calls++
    this.lastCall = Date.now()
    if (policy) this.releaseAfterMs = policy.releaseAfter ? policy.releaseAfter * 1000 : undefined
    // Also where no nc state changes (replay off, a refusal): the object goes once quiet.
    if (this.releaseAfterMs !== undefined && this.flushTimer === undefined) {
      this.flushAfter(this.releaseAfterMs)
    }
  }

  /** `policy`: the object, or its JSON text (policyText), which the store sends. */
  verify(req: ContextRequest, policy: ContextPolicy | string): VerifyAnswer {
    const p = this.policyOf(policy)
    this.begin(p)
    return this.state.verify(req, p)
  }

  /**
   * The concurrent verifies of one isolate in one call (VerifyBatches): judged one after another,
   * in arrival order, each exactly as `verify` would judge it alone. All run synchronously, so no
   * other call interleaves. What one item throws is its own answer; the items after it still run.
   */
  verifyMany(items: VerifyItem[]): BatchedVerify[] {
    const first = items[0]
    this.begin(first && this.policyOf(first.policy))
    return items.map(({ req, policy }) => {
      try {
        return { answer: this.state.verify(req, this.policyOf(policy)) }
      } catch (err) {
        return { error: err instanceof Error ? err.message : String(err) }
      }
    })
  }

  establish(req: EstablishRequest, policy: ContextPolicy): EstablishAnswer {
    this.begin(policy)
    this.storage.ensureTables()
    return this.state.establish(req, policy)
  }

  revalidated(principal: Principal, now: number): boolean {
    this.begin()
    return this.state.revalidated(principal, now)
  }

  revoke(now: number, policy: ContextPolicy): boolean {
    this.begin(policy)
    this.storage.ensureTables()
    return this.state.revoke(now, policy)
  }

  /** The quiet-spell flush, callable directly (tests, and a host that wants it now). */
  flushNcState(): void {
    this.state.flushNcState()
  }

  override async alarm(): Promise<void> {
    this.begin()
    this.alarmAt = undefined
    if (!this.storage.hasTables()) return
    const swept = this.state.sweep(Math.floor(Date.now() / 1000))
    if (swept.kind === 'empty') {
      this.sweeping = true
      try {
        await this.ctx.storage.deleteAll()
      } finally {
        this.sweeping = false
      }
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

  lastFailure(): number | undefined {
    if (!this.hasTables()) return undefined
    return (
      this.sql.exec<{ at: number | null }>('SELECT MAX(since) AS at FROM failures').one().at ??
      undefined
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

/**
 * One call to a context's object, sent once more to a fresh instance if the object was reset before
 * the call ran (a quiet object releases itself, see SecurityContext.release; a reset loses nothing
 * that storage does not hold, so the second call is judged on the same state).
 */
async function onContext<T>(
  contexts: DurableObjectNamespace<SecurityContext>,
  handle: string,
  call: (context: DurableObjectStub<SecurityContext>) => Promise<T>
): Promise<T> {
  try {
    return await call(contexts.getByName(handle))
  } catch (err) {
    if ((err as { durableObjectReset?: unknown })?.durableObjectReset !== true) throw err
    return await call(contexts.getByName(handle))
  }
}

/** The contexts as Durable Objects: `SecurityContext` per handle, `UserContexts` per user. */
export function durableObjectContexts(
  contexts: DurableObjectNamespace<SecurityContext>,
  users: DurableObjectNamespace<UserContexts>
): ContextStore {
  const verifyOne = (handle: string, { req, policy }: VerifyItem) =>
    onContext<VerifyAnswer>(contexts, handle, (c) => c.verify(req, policy))
  // Sent from the request at the head of each batch: the stub is that request's own.
  const batches = batchingEnabled()
    ? new VerifyBatches<VerifyItem, VerifyAnswer>(async (handle, items) => {
        const [only] = items
        if (items.length === 1 && only) return [{ answer: await verifyOne(handle, only) }]
        const results = await onContext<BatchedVerify[]>(contexts, handle, (c) =>
          c.verifyMany(items)
        )
        return results.map(fromBatched)
      })
    : undefined
  return {
    verify: batches
      ? (handle, req, policy, caller) =>
          batches.submit(handle, { req, policy: policyText(policy) }, caller)
      : (handle, req, policy) => verifyOne(handle, { req, policy: policyText(policy) }),
    async establish(handle, req, policy) {
      // The index first: a user revocation that lands meanwhile then either refuses this add, or
      // finds the handle and revokes the context before (or after) it is written.
      const index = users.getByName(userContextsName(req.realm, req.principal.name))
      const indexed = await index.add(handle, req.now + policy.maxLifetime, req.now, req.startedAt)
      if (!indexed) return { kind: 'revoked' }
      const answer = await onContext<EstablishAnswer>(contexts, handle, (c) =>
        c.establish(req, policy)
      )
      // Another user's handle must not be revoked with this user.
      if (answer.kind === 'taken') await index.remove(handle)
      return answer
    },
    revalidated: (handle, principal, now) =>
      onContext(contexts, handle, (c) => c.revalidated(principal, now)),
    revoke: (handle, now, policy) => onContext(contexts, handle, (c) => c.revoke(now, policy)),
    async revokeUser(realm, user, now, policy) {
      const handles = await users.getByName(userContextsName(realm, user)).takeAll(now, Date.now())
      const done = await Promise.all(
        handles.map((h) => onContext(contexts, h, (c) => c.revoke(now, policy)))
      )
      return done.filter(Boolean).length
    },
  }
}

/** A gate's policy is one object for its lifetime: its text is made once. */
const policyTexts = new WeakMap<ContextPolicy, ContextPolicy | string>()

/**
 * The policy as it is sent to a context's object: its JSON text, or the object itself when JSON
 * would not carry it faithfully (a non-finite number, e.g. revalidateAfter: Infinity).
 */
export function policyText(policy: ContextPolicy): ContextPolicy | string {
  let text = policyTexts.get(policy)
  if (text === undefined) {
    const faithful = Object.values(policy).every((v) => typeof v !== 'number' || Number.isFinite(v))
    text = faithful ? JSON.stringify(policy) : policy
    policyTexts.set(policy, text)
  }
  return text
}

function fromBatched(r: BatchedVerify): ItemResult<VerifyAnswer> {
  return 'error' in r ? { error: new Error(r.error) } : r
}
