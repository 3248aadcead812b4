/**
 * The bench's rows (what is measured) and loads (how it is driven), and how each row's requests
 * are prepared for a load before the timed phase.
 */
import { NC_OFF_PREFIX, NC_ON_PREFIX } from './apache.ts'
import { runLoadInThread } from './load.ts'
import type { LoadPlan } from './loadgen.ts'
import {
  BENCH_PATH,
  basicAuthorization,
  type Credentials,
  digestSessionRequests,
  initialAuthorization,
  PUBLIC_BENCH_PATH,
  rawGet,
} from './requests.ts'
import type { BenchStack } from './stack.ts'

export type RowId =
  | 'a'
  | "a'"
  | "a''"
  | 'b'
  | 'p'
  | 'c-window'
  | 'c-window-tmpfs'
  | 'c-off'
  | 'c-window-all'
  | 'c-off-all'
  | 'd0'
  | 'd'
  | 'e-on'
  | 'e-off'

export interface Row {
  id: RowId
  label: string
  /** A gate row whose every request is logged (LOG_LEVEL=all): its counts come from that log. */
  gate: boolean
  /** Only meaningful with one session per connection (initial authentications). */
  perConnectionOnly?: boolean
  apache?: boolean
}

export const ROWS: Row[] = [
  { id: 'a', label: 'pass-through, no auth', gate: false },
  { id: "a'", label: 'pass-through + 1 empty DO RPC', gate: false },
  { id: "a''", label: 'pass-through + 1 DO RPC writing 1 row', gate: false },
  { id: 'b', label: 'pass-through + Hono basicAuth', gate: false },
  { id: 'p', label: 'gate, its public route (no Digest)', gate: false },
  // At the default LOG_LEVEL (logins): requests verified at the edge write no line, so these
  // rows are not counted; their -all twins log every request, and are.
  { id: 'c-window', label: 'gate, established sessions, replay window', gate: false },
  {
    id: 'c-window-tmpfs',
    label: 'gate, established sessions, replay window, DO files on tmpfs',
    gate: false,
  },
  { id: 'c-off', label: 'gate, established sessions, replay off', gate: false },
  {
    id: 'c-window-all',
    label: 'gate, established sessions, replay window, LOG_LEVEL=all',
    gate: true,
  },
  { id: 'c-off-all', label: 'gate, established sessions, replay off, LOG_LEVEL=all', gate: true },
  { id: 'd0', label: 'gate, 401 challenges (no credentials)', gate: true, perConnectionOnly: true },
  {
    id: 'd',
    label: 'gate, initial authentications (authority)',
    gate: true,
    perConnectionOnly: true,
  },
  { id: 'e-on', label: 'Apache mod_auth_digest, nc check on', gate: false, apache: true },
  { id: 'e-off', label: 'Apache mod_auth_digest, nc check off', gate: false, apache: true },
]

export interface Load {
  id: string
  label: string
  connections: number
  /** 'per-connection': one session per connection; 'shared': one session over all of them. */
  sessions: 'per-connection' | 'shared'
}

export const LOADS: Load[] = [
  {
    id: 'conn-8',
    label: '8 connections, a session each',
    connections: 8,
    sessions: 'per-connection',
  },
  {
    id: 'conn-32',
    label: '32 connections, a session each',
    connections: 32,
    sessions: 'per-connection',
  },
  { id: 'shared-8', label: 'one session over 8 connections', connections: 8, sessions: 'shared' },
  {
    id: 'shared-32',
    label: 'one session over 32 connections',
    connections: 32,
    sessions: 'shared',
  },
]

export interface Timing {
  warmupMs: number
  durationMs: number
}

/** How many requests a row may send under one load, over all its slices. */
export interface Budget {
  /** Requests of a session row (its precomputed nc values must not run out). */
  requests: number
  /** Initial authentications of row (d). */
  initial: number
}

/**
 * A row's requests under one load, prepared once and consumed slice after slice: sessions carry
 * on across slices (nc keeps rising, in order per session), so Apache's strict nc check sees no gap.
 */
export class RowPlan {
  readonly port: number
  readonly connections: number
  readonly queues: string[][]
  readonly assignment: LoadPlan['assignment']
  readonly repeat: boolean
  private readonly offsets: number[]

  constructor(
    port: number,
    load: Load,
    queues: string[][],
    options: { repeat: boolean; assignment?: LoadPlan['assignment'] }
  ) {
    this.port = port
    this.connections = load.connections
    this.queues = queues
    this.assignment = options.assignment ?? (queues.length === 1 ? 'shared' : 'per-connection')
    this.repeat = options.repeat
    this.offsets = queues.map(() => 0)
  }

  /** The load plan of the next slice: what is left of every queue. */
  slice(timing: Timing): LoadPlan {
    return {
      host: '127.0.0.1',
      port: this.port,
      connections: this.connections,
      queues: this.repeat ? this.queues : this.queues.map((q, i) => q.slice(this.offsets[i] ?? 0)),
      assignment: this.assignment,
      repeat: this.repeat,
      warmupMs: timing.warmupMs,
      durationMs: timing.durationMs,
    }
  }

  /** Moves past what a slice took (`LoadResult.consumed`). */
  advance(consumed: number[]): void {
    if (this.repeat) return
    consumed.forEach((n, i) => {
      this.offsets[i] = (this.offsets[i] ?? 0) + n
    })
  }
}

/** A session's requests per connection, or one session's for all connections. */
async function sessionQueues(
  port: number,
  path: string,
  user: Credentials,
  load: Load,
  total: number
): Promise<string[][]> {
  if (load.sessions === 'shared') return [await digestSessionRequests(port, path, user, total)]
  const each = Math.ceil(total / load.connections)
  const queues: string[][] = []
  for (let i = 0; i < load.connections; i++) {
    queues.push(await digestSessionRequests(port, path, user, each))
  }
  return queues
}

/** `count` fresh challenges of a gate (WWW-Authenticate values of 401s), fetched untimed. */
export async function fetchChallenges(port: number, count: number): Promise<string[]> {
  const result = await runLoadInThread({
    host: '127.0.0.1',
    port,
    connections: 8,
    queues: [[rawGet(port, BENCH_PATH)]],
    assignment: 'shared',
    repeat: true,
    warmupMs: 0,
    durationMs: 30_000,
    capture: { header: 'www-authenticate', limit: count },
  })
  return result.captured
}

/**
 * Everything `row` will send under `load`. Session rows establish their sessions here (their
 * initial authentication is done now, untimed) and precompute every later request; row (d)
 * fetches its challenges and answers them.
 */
export async function prepareRow(
  row: Row,
  load: Load,
  stack: BenchStack,
  user: Credentials,
  budget: Budget
): Promise<RowPlan> {
  const p = stack.ports
  switch (row.id) {
    case 'a':
      return new RowPlan(p.passThrough, load, [[rawGet(p.passThrough, BENCH_PATH)]], {
        repeat: true,
      })
    case "a'":
    case "a''": {
      // One object per session, as the gate has: per connection, or one for all of them.
      const keys =
        load.sessions === 'shared'
          ? ['session']
          : Array.from({ length: load.connections }, (_, i) => `session-${i}`)
      const write: Record<string, string> = row.id === "a''" ? { 'x-bench-write': '1' } : {}
      const queues = keys.map((key) => [
        rawGet(p.passThroughDo, BENCH_PATH, { 'x-bench-key': key, ...write }),
      ])
      return new RowPlan(p.passThroughDo, load, queues, { repeat: true })
    }
    case 'b':
      return new RowPlan(
        p.basicAuth,
        load,
        [[rawGet(p.basicAuth, BENCH_PATH, { Authorization: basicAuthorization(user) })]],
        { repeat: true }
      )
    case 'p':
      // The same gate process and build: route match, canonical path and forwarding, no Digest.
      return new RowPlan(p.gateWindow, load, [[rawGet(p.gateWindow, PUBLIC_BENCH_PATH)]], {
        repeat: true,
      })
    case 'c-window':
    case 'c-window-tmpfs':
    case 'c-off':
    case 'c-window-all':
    case 'c-off-all': {
      const port = {
        'c-window': p.gateWindow,
        'c-window-tmpfs': p.gateWindowTmpfs,
        'c-off': p.gateOff,
        'c-window-all': p.gateWindowAll,
        'c-off-all': p.gateOffAll,
      }[row.id]
      const queues = await sessionQueues(port, BENCH_PATH, user, load, budget.requests)
      return new RowPlan(port, load, queues, { repeat: false })
    }
    case 'd0':
      return new RowPlan(p.gateWindow, load, [[rawGet(p.gateWindow, BENCH_PATH)]], {
        repeat: true,
      })
    case 'd': {
      const url = `http://127.0.0.1:${p.gateWindow}${BENCH_PATH}`
      const requests: string[] = []
      for (const challenge of await fetchChallenges(p.gateWindow, budget.initial)) {
        const authorization = await initialAuthorization(challenge, url, user)
        requests.push(rawGet(p.gateWindow, BENCH_PATH, { Authorization: authorization }))
      }
      return new RowPlan(p.gateWindow, load, [requests], { repeat: false, assignment: 'shared' })
    }
    case 'e-on':
    case 'e-off': {
      const path = `${row.id === 'e-on' ? NC_ON_PREFIX : NC_OFF_PREFIX}${BENCH_PATH}`
      const queues = await sessionQueues(p.apache, path, user, load, budget.requests)
      return new RowPlan(p.apache, load, queues, { repeat: false })
    }
  }
}
