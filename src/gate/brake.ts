/**
 * The brakes' Durable Object: a BrakeState (brake-state.ts, what the object decides) over the
 * object's SQLite storage, plus the alarm that sweeps it. One class, two kinds of object (bucket
 * and user, named by composeBrakes()). The tables are `counters`, `budget` and `known`; once
 * nothing is left, the alarm empties the object.
 */
import { DurableObject } from 'cloudflare:workers'
import type { BrakePolicy, BrakeVerdict, Counter } from './brake-policy.ts'
import {
  BrakeState,
  type BrakeStorage,
  type CallBudget,
  type KnownBucket,
  MAX_COUNTERS,
  type Remaining,
  SWEEP_BATCH_SECONDS,
} from './brake-state.ts'
import { brakeReporter } from './console/reporters.ts'

export class Brake extends DurableObject {
  private readonly state: BrakeState
  /** When the alarm is set (ms), as far as this instance knows. */
  private alarmAt: number | undefined

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env)
    createTables(ctx.storage.sql)
    this.state = new BrakeState(
      new SqlBrakeStorage(ctx.storage.sql, (at, now) => this.scheduleSweep(at, now)),
      MAX_COUNTERS,
      // The operator's console, where the worker serves one: told when a counter starts braking.
      brakeReporter(ctx, env)
    )
    void ctx.blockConcurrencyWhile(async () => {
      this.alarmAt = (await ctx.storage.getAlarm()) ?? undefined
    })
  }

  // The methods of BrakeState, for RPC (see there).

  admitFromBucket(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    return this.state.admitFromBucket(user, now, policy)
  }

  refundToBucket(
    user: string,
    now: number,
    policy: BrakePolicy,
    returnCall: boolean
  ): BrakeVerdict {
    return this.state.refundToBucket(user, now, policy, returnCall)
  }

  failFromBucket(user: string, now: number, policy: BrakePolicy): BrakeVerdict {
    return this.state.failFromBucket(user, now, policy)
  }

  admitForUser(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    return this.state.admitForUser(bucket, now, policy)
  }

  settleForUser(bucket: string, now: number, policy: BrakePolicy, verified: boolean): void {
    this.state.settleForUser(bucket, now, policy, verified)
  }

  failForUser(bucket: string, now: number, policy: BrakePolicy): BrakeVerdict {
    return this.state.failForUser(bucket, now, policy)
  }

  // ---- Sweeping.

  override async alarm(): Promise<void> {
    this.alarmAt = undefined
    await this.sweep(Math.floor(Date.now() / 1000))
  }

  /** Delete what has drained or expired by `now`; empty the object when nothing is left. */
  async sweep(now: number): Promise<void> {
    const left = this.state.sweep(now)
    if (left) {
      this.scheduleSweep(left.first, now)
      return
    }
    this.alarmAt = undefined
    await this.ctx.storage.deleteAlarm()
    await this.ctx.storage.deleteAll()
    createTables(this.ctx.storage.sql)
  }

  /** Alarms fire at the earliest due sweep; a later one is set again by the sweep itself. */
  private scheduleSweep(atSeconds: number, now: number): void {
    const at = Math.max(atSeconds, now + SWEEP_BATCH_SECONDS) * 1000
    if (this.alarmAt !== undefined && this.alarmAt <= at) return
    this.alarmAt = at
    void this.ctx.storage.setAlarm(at)
  }
}

/** Idempotent; also after deleteAll(), which drops the tables with the data. */
function createTables(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY, level REAL NOT NULL, at INTEGER NOT NULL, last INTEGER NOT NULL,
    empty_at INTEGER NOT NULL)`)
  sql.exec(`CREATE TABLE IF NOT EXISTS budget (
    id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, since INTEGER NOT NULL)`)
  sql.exec('CREATE TABLE IF NOT EXISTS known (bucket TEXT PRIMARY KEY, until INTEGER NOT NULL)')
}

/** A brake object's rows in its SQLite tables. */
class SqlBrakeStorage implements BrakeStorage {
  private readonly sql: SqlStorage
  readonly dueForSweep: (at: number, now: number) => void

  constructor(sql: SqlStorage, dueForSweep: (at: number, now: number) => void) {
    this.sql = sql
    this.dueForSweep = dueForSweep
  }

  counter(key: string): Counter | undefined {
    return this.sql
      .exec<{ level: number; at: number; last: number }>(
        'SELECT level, at, last FROM counters WHERE key = ?',
        key
      )
      .toArray()[0]
  }

  putCounter(key: string, c: Counter, emptyAt: number): void {
    this.sql.exec(
      'INSERT OR REPLACE INTO counters (key, level, at, last, empty_at) VALUES (?, ?, ?, ?, ?)',
      key,
      c.level,
      c.at,
      c.last,
      emptyAt
    )
  }

  deleteCounter(key: string): void {
    this.sql.exec('DELETE FROM counters WHERE key = ?', key)
  }

  counterCount(): number {
    return this.sql.exec<{ n: number }>('SELECT COUNT(*) AS n FROM counters').one().n
  }

  evictCounters(n: number, keep: string): void {
    this.sql.exec(
      `DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE key <> ?
        ORDER BY empty_at LIMIT ?)`,
      keep,
      n
    )
  }

  sweepCounters(now: number): Remaining | undefined {
    this.sql.exec('DELETE FROM counters WHERE empty_at <= ?', now)
    const { first, last } = this.sql
      .exec<{ first: number | null; last: number | null }>(
        'SELECT MIN(empty_at) AS first, MAX(empty_at) AS last FROM counters'
      )
      .one()
    return first === null || last === null ? undefined : { first, last }
  }

  budget(): CallBudget | undefined {
    return this.sql
      .exec<{ count: number; since: number }>('SELECT count, since FROM budget WHERE id = 1')
      .toArray()[0]
  }

  putBudget(budget: CallBudget | undefined): void {
    if (!budget) this.sql.exec('DELETE FROM budget')
    else {
      this.sql.exec(
        'INSERT OR REPLACE INTO budget (id, count, since) VALUES (1, ?, ?)',
        budget.count,
        budget.since
      )
    }
  }

  knownBuckets(): KnownBucket[] {
    return this.sql
      .exec<{ bucket: string; until: number }>('SELECT bucket, until FROM known')
      .toArray()
  }

  knownUntil(bucket: string): number | undefined {
    return this.sql
      .exec<{ until: number }>('SELECT until FROM known WHERE bucket = ?', bucket)
      .toArray()[0]?.until
  }

  putKnown(bucket: string, until: number): void {
    this.sql.exec('INSERT OR REPLACE INTO known (bucket, until) VALUES (?, ?)', bucket, until)
  }

  deleteKnown(bucket: string): void {
    this.sql.exec('DELETE FROM known WHERE bucket = ?', bucket)
  }
}
