/**
 * `npx node bench/ab.ts <gate wrangler.toml B> [A]`: compares two builds of the gate (A defaults to
 * the project's) on the hot path, interleaved A/B/B/A so that both see the same machine. Each gate
 * runs in a workerd process of its own, so the CPU per request of the gate alone is read from
 * /proc. For checking a performance change before proposing it (docs/performance.md).
 * Environment: AB_ROUNDS (default 4), AB_SECONDS (3), AB_REPLAY (comma list, default "off,window"),
 * AB_CONNECTIONS (8), AB_TMPFS=1 (Durable Object files on /dev/shm; =B: only B's), AB_ROW=d: initial
 * authentications instead (row (d): each request answers a fresh challenge with nc=1, so the
 * authority is called and a context created; replay `window` unless AB_REPLAY says otherwise;
 * the authority's CPU per login is printed beside the gate's), AB_V8_FLAGS_A / AB_V8_FLAGS_B
 * (V8's flags of that side's process instead of the default ones, space-separated; "" for none),
 * AB_SHARED=1 (one session over all AB_CONNECTIONS, the browser-like load of `npm run bench`; by
 * default a session per connection), AB_COUNT_CALLS=1 (both gates at LOG_LEVEL=all: their decision
 * logs are counted and the security-context calls per 1000 requests printed; the log line costs
 * CPU on both sides alike),
 * AB_LOG_LEVEL (the gates' LOG_LEVEL, default `logins` as deployed and as `npm run bench`'s rows).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RunningWorker, startWorkerd } from '../scripts/stack/launcher.ts'
import { CONFIGS } from '../scripts/stack/paths.ts'
import { freePorts } from '../scripts/stack/ports.ts'
import { processCpuMs, treeCpuMs } from './lib/cpu.ts'
import { countsBetween, DecisionTally } from './lib/decisions.ts'
import { runLoadInThread } from './lib/load.ts'
import { BENCH_PATH, digestSessionRequests, initialAuthorization, rawGet } from './lib/requests.ts'
import { fetchChallenges } from './lib/rows.ts'
import {
  BENCH_LOGIN_BRAKES,
  BENCH_USER,
  type ScratchStack,
  startScratchStack,
} from './lib/stack.ts'

const ROUNDS = Number(process.env.AB_ROUNDS ?? 4)
const SECONDS = Number(process.env.AB_SECONDS ?? 3)
const CONNECTIONS = Number(process.env.AB_CONNECTIONS ?? 8)
/** 'c': later requests of established sessions; 'd': initial authentications (logins). */
const ROW = process.env.AB_ROW === 'd' ? 'd' : 'c'
/** One session over all connections (nc values out of order), instead of one per connection. */
const SHARED = process.env.AB_SHARED === '1'
const COUNT_CALLS = process.env.AB_COUNT_CALLS === '1'
const REPLAY = (process.env.AB_REPLAY ?? (ROW === 'd' ? 'window' : 'off,window')).split(',')
/** Logins answered per second at most, to size each run's precomputed requests. */
const MAX_LOGINS_PER_SECOND = 500
const LOG_LEVEL = process.env.AB_LOG_LEVEL ?? 'logins'
const v8Flags = (side: 'A' | 'B') => process.env[`AB_V8_FLAGS_${side}`]?.split(' ').filter(Boolean)
/**
 * AB_TMPFS=1: Durable Object files on /dev/shm (no fsync cost), to see the CPU alone; AB_TMPFS=B:
 * only B's, so that one build against itself shows what the disk costs.
 */
const TMPFS = process.env.AB_TMPFS === '1' || process.env.AB_TMPFS === 'B'
const STORAGE_ROOT = TMPFS ? mkdtempSync('/dev/shm/digest-gate-ab-') : undefined
const storageRoot = (variant: 'A' | 'B') =>
  process.env.AB_TMPFS === 'B' && variant === 'A' ? undefined : STORAGE_ROOT

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

async function main(): Promise<void> {
  const configB = process.argv[2]
  const configA = process.argv[3] ?? CONFIGS.gate
  if (!configB) throw new Error('usage: npx node bench/ab.ts <gate wrangler.toml B> [A]')
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-ab-'))
  let scratch: ScratchStack | undefined
  try {
    const ports = (await freePorts(2 + 2 * REPLAY.length)) as number[]
    scratch = await startScratchStack(
      dir,
      { origin: ports[0] as number, authority: ports[1] as number, gate: ports[2] as number },
      { A: configA, B: configB }
    )
    const { stack, bundles, authority, start } = scratch

    interface Variant {
      name: 'A' | 'B'
      replay: string
      port: number
      gate: RunningWorker
      /** Its decision log (counted with AB_COUNT_CALLS=1). */
      tally: DecisionTally
      runs: {
        okRps: number
        cpuMsPerRequest: number
        authorityMsPerRequest: number
        /** Security-context calls per 1000 decisions (AB_COUNT_CALLS=1). */
        callsPer1k: number
      }[]
    }
    const variants: Variant[] = []
    let next = 2
    for (const replay of REPLAY) {
      for (const [name, config] of [
        ['A', configA],
        ['B', configB],
      ] as const) {
        const port = ports[next++] as number
        const service = `gate-${name}-${replay}`
        const tally = new DecisionTally()
        const gate = await start(
          startWorkerd(
            service,
            [
              {
                ...stack.gate,
                name: service,
                config,
                script: bundles[name],
                port,
                persistTo: join(storageRoot(name) ?? dir, service),
                vars: {
                  ...stack.gate.vars,
                  REPLAY_MODE: replay,
                  LOG_LEVEL: COUNT_CALLS ? 'all' : LOG_LEVEL,
                  // Logins come from one address, for one user: the default brakes would refuse
                  // them (row c too: each run establishes its sessions anew).
                  BRAKE_AUTHORITY_PER_MINUTE: '100000000',
                  ...BENCH_LOGIN_BRAKES,
                },
              },
            ],
            { dir, v8Flags: v8Flags(name), onLine: tally.onLine }
          )
        )
        variants.push({ name, replay, port, gate, tally, runs: [] })
      }
    }

    /** Row (d): fresh challenges of this gate, each answered with nc=1 (one shared queue). */
    const loginQueues = async (v: Variant, durationMs: number) => {
      const url = `http://127.0.0.1:${v.port}${BENCH_PATH}`
      const count = Math.ceil((durationMs / 1000 + 0.5) * MAX_LOGINS_PER_SECOND)
      const requests: string[] = []
      for (const challenge of await fetchChallenges(v.port, count)) {
        const authorization = await initialAuthorization(challenge, url, BENCH_USER)
        requests.push(rawGet(v.port, BENCH_PATH, { Authorization: authorization }))
      }
      return [requests]
    }
    const sessionQueues = async (v: Variant, durationMs: number) => {
      const each = Math.ceil((durationMs / 1000 + 0.5) * 4000)
      if (SHARED) return [await digestSessionRequests(v.port, BENCH_PATH, BENCH_USER, each + 50)]
      const queues: string[][] = []
      for (let i = 0; i < CONNECTIONS; i++) {
        queues.push(
          await digestSessionRequests(
            v.port,
            BENCH_PATH,
            BENCH_USER,
            Math.ceil(each / CONNECTIONS) + 50
          )
        )
      }
      return queues
    }
    const runOnce = async (v: Variant, durationMs: number) => {
      const queues =
        ROW === 'd' ? await loginQueues(v, durationMs) : await sessionQueues(v, durationMs)
      const counted = v.tally.snapshot()
      const before = processCpuMs(v.gate.process().pid) ?? 0
      const authorityBefore = treeCpuMs(authority.process().pid)
      const r = await runLoadInThread({
        host: '127.0.0.1',
        port: v.port,
        connections: CONNECTIONS,
        queues,
        assignment: ROW === 'd' || SHARED ? 'shared' : 'per-connection',
        repeat: false,
        warmupMs: 500,
        durationMs,
      })
      const cpu = (processCpuMs(v.gate.process().pid) ?? 0) - before
      const authorityCpu = treeCpuMs(authority.process().pid) - authorityBefore
      if (r.ok !== r.completed)
        console.log(`  ${v.name} ${v.replay}: ${r.completed - r.ok} non-2xx`)
      if (r.exhausted) console.log(`  ${v.name} ${v.replay}: ran out of requests`)
      const sent = Math.max(1, r.sent)
      const decisions = countsBetween(counted, v.tally.snapshot())
      return {
        callsPer1k: (decisions.contextCalls / Math.max(1, decisions.decisions)) * 1000,
        okRps: (r.ok / r.windowMs) * 1000,
        cpuMsPerRequest: cpu / sent,
        authorityMsPerRequest: authorityCpu / sent,
      }
    }
    for (const v of variants) await runOnce(v, 1000)
    for (let round = 0; round < ROUNDS; round++) {
      for (const replay of REPLAY) {
        const pair = variants.filter((v) => v.replay === replay)
        if (round % 2 === 1) pair.reverse()
        for (const v of pair) {
          const run = await runOnce(v, SECONDS * 1000)
          v.runs.push(run)
          console.log(
            `round ${round + 1} ${replay} ${v.name}: ${Math.round(run.okRps)} ok/s, gate CPU ${run.cpuMsPerRequest.toFixed(3)} ms/req${ROW === 'd' ? `, authority ${run.authorityMsPerRequest.toFixed(3)}` : ''}${COUNT_CALLS ? `, DO calls ${run.callsPer1k.toFixed(1)}/1k` : ''}`
          )
        }
      }
    }
    const load = `${CONNECTIONS} connections, ${SHARED ? 'one session over all' : 'a session each'}`
    console.log(`\nA = ${configA}\nB = ${configB}\n${load}; medians over ${ROUNDS} rounds:`)
    for (const replay of REPLAY) {
      const [a, b] = ['A', 'B'].map((n) =>
        variants.find((v) => v.name === n && v.replay === replay)
      ) as [Variant, Variant]
      const cpuA = median(a.runs.map((r) => r.cpuMsPerRequest))
      const cpuB = median(b.runs.map((r) => r.cpuMsPerRequest))
      const rpsA = median(a.runs.map((r) => r.okRps))
      const rpsB = median(b.runs.map((r) => r.okRps))
      const authA = median(a.runs.map((r) => r.authorityMsPerRequest))
      const authB = median(b.runs.map((r) => r.authorityMsPerRequest))
      const authority =
        ROW === 'd' ? `, authority CPU A ${authA.toFixed(3)} B ${authB.toFixed(3)} ms/login` : ''
      const calls = COUNT_CALLS
        ? `, DO calls/1k A ${median(a.runs.map((r) => r.callsPer1k)).toFixed(1)} B ${median(b.runs.map((r) => r.callsPer1k)).toFixed(1)}`
        : ''
      console.log(
        `  ${ROW === 'd' ? 'logins, ' : ''}replay ${replay}: gate CPU A ${cpuA.toFixed(3)} B ${cpuB.toFixed(3)} ms/req (${(((cpuB - cpuA) / cpuA) * 100).toFixed(1)}%), ok/s A ${Math.round(rpsA)} B ${Math.round(rpsB)}${authority}${calls}`
      )
    }
  } finally {
    await scratch?.stop()
    rmSync(dir, { recursive: true, force: true })
    if (STORAGE_ROOT) rmSync(STORAGE_ROOT, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(`[ab] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
})
