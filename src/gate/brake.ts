/**
 * The brakes' Durable Object. One class, two kinds of object (named by durableObjectBrakes()):
 * - a bucket object, one per client bucket: the bucket's counter over all users, one counter per
 *   user tried from it, and its budget of authority calls;
 * - a user object, one per realm and user name: the user's counter over all buckets, and the
 *   buckets the user recently logged in from (known: their attempts skip that counter's check).
 * Every method reads, decides and writes in one synchronous block (no await in between), so
 * parallel attempts cannot all pass one check. Counters drain (brake-policy.ts); an alarm deletes
 * what has drained, and empties the object once nothing is left.
 */
import { DurableObject } from 'cloudflare:workers'
import {
  type BrakePolicy,
  type BrakeReason,
  type BrakeVerdict,
  type Counter,
  counted,
  emptyAt,
  refunded,
  waitFor,
} from './brake-policy.ts'

/** The key of the object's own counter: the bucket's over all users, or the user's over all buckets. */
const ALL = '*'

/**
 * Counters one object keeps at most. A guesser cycling user names from one bucket first evicts
 * its own rows: the eviction takes the row closest to draining, and the bucket's own counter
 * (never evicted) keeps slowing it meanwhile.
 */
const MAX_COUNTERS = 512

/** Known buckets kept per user; the least recently confirmed goes first. */
const MAX_KNOWN = 16

/** Sweeps run at most this often: rows drained a little late cost nothing. */
const SWEEP_BATCH_SECONDS = 60

export class Brake extends DurableObject {
  /** When the alarm is set (ms), as far as this instance knows. */
  private alarmAt: number | undefined

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    this.createTables()
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = (await ctx.storage.getAlarm()) ?? undefined
    })
  }

  /** Idempotent; also after deleteAll(), which drops the tables with the data. */
  private createTables(): void {
    this.ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS counters (
      key TEXT PRIMARY KEY, level REAL NOT NULL, at INTEGER NOT NULL, last INTEGER NOT NULL,
      empty_at INTEGER NOT NULL)`)
    this.ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS budget (
      id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, since INTEGER NOT NULL)`)
    this.ctx.storage.sql.exec(
      'CREATE TABLE IF NOT EXISTS known (bucket TEXT PRIMARY KEY, until INTEGER NOT NULL)'
    )
  }

  // ---- Bucket objects. `user` is the user's key (JSON of realm and name), never ALL.

  /** Admit one attempt for `user` from this bucket: checked and counted, or refused uncounted. */
  admitFromBucket(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    const verdict = this.bucketVerdict(user, now, policy)
    if (!verdict.ok) return verdict
    this.count(ALL, policy.clientFailures, now, policy)
    this.count(user, policy.userFailures, now, policy)
    this.spendCall(now)
    return verdict
  }

  /**
   * Take back one admitted attempt; with `returnCall`, its authority call too (it never happened).
   * Answers what the next attempt would be told.
   */
  refundToBucket(
    user: string,
    now: number,
    policy: BrakePolicy,
    returnCall: boolean
  ): BrakeVerdict {
    this.refund(ALL, policy.clientFailures, now, policy)
    this.refund(user, policy.userFailures, now, policy)
    if (returnCall) this.returnCall(now)
    return this.bucketVerdict(user, now, policy)
  }

  /** Count a failure that was not admitted first; answers what the next attempt would be told. */
  failFromBucket(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    this.count(ALL, policy.clientFailures, now, policy)
    this.count(user, policy.userFailures, now, policy)
    return this.bucketVerdict(user, now, policy)
  }

  // ---- User objects.

  /** Admit one attempt for this user from `bucket`: checked (unless known) and counted. */
  admitForUser(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    const verdict = this.userVerdict(bucket, now, policy)
    if (verdict.ok) this.count(ALL, policy.userGlobalFailures, now, policy)
    return verdict
  }

  /** Take back one admitted attempt; a verified one also makes `bucket` known for this user. */
  settleForUser(bucket: string, now: number, policy: BrakePolicy, verified: boolean): void {
    this.refund(ALL, policy.userGlobalFailures, now, policy)
    if (verified && policy.knownClientSeconds > 0) {
      this.remember(bucket, now + policy.knownClientSeconds, now)
    }
  }

  /** Count a failure that was not admitted first; answers what the next attempt would be told. */
  failForUser(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    this.count(ALL, policy.userGlobalFailures, now, policy)
    return this.userVerdict(bucket, now, policy)
  }

  // ---- Sweeping.

  override async alarm(): Promise<void> {
    this.alarmAt = undefined
    await this.sweep(Math.floor(Date.now() / 1000))
  }

  /** Delete what has drained or expired by `now`; empty the object when nothing is left. */
  async sweep(now: number): Promise<void> {
    const sql = this.ctx.storage.sql
    sql.exec('DELETE FROM counters WHERE empty_at <= ?', now)
    sql.exec('DELETE FROM budget WHERE since + 60 <= ?', now)
    sql.exec('DELETE FROM known WHERE until <= ?', now)
    const next = sql
      .exec<{ at: number | null }>(
        `SELECT MIN(at) AS at FROM (SELECT MIN(empty_at) AS at FROM counters
          UNION ALL SELECT MIN(since + 60) FROM budget UNION ALL SELECT MIN(until) FROM known)`
      )
      .one().at
    if (next === null) {
      this.alarmAt = undefined
      await this.ctx.storage.deleteAlarm()
      await this.ctx.storage.deleteAll()
      this.createTables()
      return
    }
    this.scheduleSweep(next, now)
  }

  // ---- Internals.

  private bucketVerdict(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    return longest([
      this.check(ALL, policy.clientFailures, now, policy, 'client_failures'),
      this.check(user, policy.userFailures, now, policy, 'user_failures'),
      this.checkCalls(now, policy),
    ])
  }

  private userVerdict(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    if (this.isKnown(bucket, now)) return { ok: true }
    return this.check(ALL, policy.userGlobalFailures, now, policy, 'user_global_failures')
  }

  private check(
    key: string,
    threshold: number,
    now: number,
    policy: BrakePolicy,
    reason: BrakeReason
  ): BrakeVerdict {
    const wait = waitFor(this.counter(key), threshold, now, policy)
    // Times may be fractional (ms precision); Retry-After is whole seconds, never less than the wait.
    return wait > 0 ? { ok: false, retryAfter: Math.ceil(wait), reason } : { ok: true }
  }

  private count(key: string, threshold: number, now: number, policy: BrakePolicy): void {
    const before = this.counter(key)
    if (!before && key !== ALL) this.makeRoom()
    this.write(key, counted(before, threshold, now, policy), threshold, policy, now)
  }

  private refund(key: string, threshold: number, now: number, policy: BrakePolicy): void {
    const after = refunded(this.counter(key), threshold, now, policy)
    if (after) this.write(key, after, threshold, policy, now)
    else this.ctx.storage.sql.exec('DELETE FROM counters WHERE key = ?', key)
  }

  private counter(key: string): Counter | undefined {
    return this.ctx.storage.sql
      .exec<{ level: number; at: number; last: number }>(
        'SELECT level, at, last FROM counters WHERE key = ?',
        key
      )
      .toArray()[0]
  }

  private write(
    key: string,
    c: Counter,
    threshold: number,
    policy: BrakePolicy,
    now: number
  ): void {
    const empty = emptyAt(c, threshold, policy)
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO counters (key, level, at, last, empty_at) VALUES (?, ?, ?, ?, ?)',
      key,
      c.level,
      c.at,
      c.last,
      empty
    )
    this.scheduleSweep(empty, now)
  }

  /** Before a new row: evict the one closest to draining if the table is full. */
  private makeRoom(): void {
    const sql = this.ctx.storage.sql
    const rows = sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM counters').one().n
    if (rows < MAX_COUNTERS) return
    sql.exec(
      `DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE key <> ?
        ORDER BY empty_at LIMIT ?)`,
      ALL,
      rows - MAX_COUNTERS + 1
    )
  }

  private checkCalls(now: number, policy: BrakePolicy): BrakeVerdict {
    const row = this.callWindow(now)
    if (!row || row.count < policy.authorityCallsPerMinute) return { ok: true }
    const retryAfter = Math.max(1, Math.ceil(row.since + 60 - now))
    return { ok: false, retryAfter, reason: 'authority_rate' }
  }

  private spendCall(now: number): void {
    const row = this.callWindow(now)
    const since = row?.since ?? now
    this.ctx.storage.sql.exec(
      'INSERT OR REPLACE INTO budget (id, count, since) VALUES (1, ?, ?)',
      (row?.count ?? 0) + 1,
      since
    )
    this.scheduleSweep(since + 60, now)
  }

  private returnCall(now: number): void {
    const row = this.callWindow(now)
    if (row && row.count > 0) {
      this.ctx.storage.sql.exec('UPDATE budget SET count = ? WHERE id = 1', row.count - 1)
    }
  }

  /** The current minute's authority calls; undefined once that minute is over. */
  private callWindow(now: number): { count: number; since: number } | undefined {
    const row = this.ctx.storage.sql
      .exec<{ count: number; since: number }>('SELECT count, since FROM budget WHERE id = 1')
      .toArray()[0]
    return row && now < row.since + 60 ? row : undefined
  }

  private isKnown(bucket: string, now: number): boolean {
    const row = this.ctx.storage.sql
      .exec<{ until: number }>('SELECT until FROM known WHERE bucket = ?', bucket)
      .toArray()[0]
    return row !== undefined && now < row.until
  }

  private remember(bucket: string, until: number, now: number): void {
    const sql = this.ctx.storage.sql
    sql.exec('INSERT OR REPLACE INTO known (bucket, until) VALUES (?, ?)', bucket, until)
    sql.exec(
      `DELETE FROM known WHERE bucket NOT IN (SELECT bucket FROM known ORDER BY until DESC LIMIT ?)`,
      MAX_KNOWN
    )
    this.scheduleSweep(until, now)
  }

  /** Alarms fire at the earliest due sweep; a later one is set again by the sweep itself. */
  private scheduleSweep(atSeconds: number, now: number): void {
    const at = Math.max(atSeconds, now + SWEEP_BATCH_SECONDS) * 1000
    if (this.alarmAt !== undefined && this.alarmAt <= at) return
    this.alarmAt = at
    void this.ctx.storage.setAlarm(at)
  }
}

/** Ok if every check passes; else the refusal that waits longest, so waiting it passes them all. */
function longest(verdicts: BrakeVerdict[]): BrakeVerdict {
  let worst: BrakeVerdict = { ok: true }
  for (const v of verdicts) {
    if (!v.ok && (worst.ok || v.retryAfter > worst.retryAfter)) worst = v
  }
  return worst
}
