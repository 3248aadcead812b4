/**
 * The gate's Durable Objects as reporters to the console's index: a security context tells of its
 * session's start, use and end, a brake object of its throttles. Each report is one RPC the object
 * starts and does not await (ctx.waitUntil), so no answer waits for the index; a report that fails
 * is logged and dropped (the index also ages out what it was not told).
 */
import { ALL, type Throttle } from '../brake-state.ts'
import type { ContextEvents } from '../context-state.ts'
import type { CachedContext } from '../context-types.ts'
import { type ConsoleReports, consoleIndexOf, type SessionReport } from './reports.ts'

/** What a reporter needs of its object: its name and a way to outlive the current call. */
interface ObjectState {
  readonly id: { readonly name?: string }
  waitUntil(promise: Promise<unknown>): void
}

type Send = (report: (index: ConsoleReports) => unknown) => void

function sender(ctx: ObjectState, env: unknown): Send | undefined {
  const index = consoleIndexOf(env)
  if (!index) return undefined
  return (report) => {
    const sent = (async () => report(index()))().catch((err: unknown) => {
      console.warn(
        JSON.stringify({ event: 'digest-gate.console_report_failed', message: String(err) })
      )
    })
    ctx.waitUntil(sent)
  }
}

/**
 * A security context's events as index reports; undefined when the console is off. The object's
 * name is its handle (durableObjectContexts names them so).
 */
export function sessionReporter(ctx: ObjectState, env: unknown): ContextEvents | undefined {
  const send = sender(ctx, env)
  const handle = send && named(ctx)
  if (!send || !handle) return undefined
  const now = () => Math.floor(Date.now() / 1000)
  return {
    established: (row, client, requests) =>
      send((index) =>
        index.established(
          sessionOf(handle, row, requests),
          { address: client?.address, userAgent: client?.userAgent },
          now()
        )
      ),
    used: (row, requests) => send((index) => index.used(sessionOf(handle, row, requests), now())),
    over: (row, why) => send((index) => index.over(handle, row.created, why, now())),
  }
}

/** The listed facts of a context row, by name: never its session key or channel binding. */
function sessionOf(handle: string, row: CachedContext, requests: number): SessionReport {
  return {
    handle,
    user: row.principal.name,
    groups: row.principal.groups,
    algorithm: row.algorithm,
    created: row.created,
    lastUsed: row.lastUsed,
    expires: row.expires,
    idleTimeout: row.idleTimeout,
    requests,
  }
}

/**
 * A brake object's throttles as index reports; undefined when the console is off. The object's
 * name says what it counts (composeBrakes(): `bucket:` + bucket, `user:` + JSON [realm, name]),
 * the throttle's key which of its counters: its own (`*`) or one user's (JSON [realm, name]).
 */
export function brakeReporter(
  ctx: ObjectState,
  env: unknown
): { throttled(t: Throttle): void } | undefined {
  const send = sender(ctx, env)
  const name = send && named(ctx)
  if (!send || !name) return undefined
  const bucket = name.startsWith('bucket:') ? name.slice('bucket:'.length) : undefined
  const owner = name.startsWith('user:') ? userOf(name.slice('user:'.length)) : undefined
  return {
    throttled(t) {
      const user = t.key === ALL ? owner : userOf(t.key)
      send((index) =>
        index.throttled(
          { address: bucket, user, reason: t.reason, until: t.until, nextAttempt: t.nextAttempt },
          Math.floor(Date.now() / 1000)
        )
      )
    },
  }
}

let unnamedWarned = false

/**
 * The object's name (ctx.id.name: objects reached by name know it). Without it nothing can be
 * reported: said once per isolate, so that an empty console has an explanation in the log.
 */
function named(ctx: ObjectState): string | undefined {
  const name = ctx.id.name
  if (name === undefined && !unnamedWarned) {
    unnamedWarned = true
    console.warn(
      JSON.stringify({
        event: 'digest-gate.console_report_failed',
        message: 'a Durable Object does not know its name (ctx.id.name): it reports nothing',
      })
    )
  }
  return name
}

/** The name in a user key (JSON [realm, name]); undefined if it is none. */
function userOf(key: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(key)
    return Array.isArray(parsed) && typeof parsed[1] === 'string' ? parsed[1] : undefined
  } catch {
    return undefined
  }
}
