/**
 * `npm run bench:memory`: how the gate's memory grows with security contexts and whether it comes
 * back once they are idle. The gate runs as `npm run serve` runs it (its production bundle on plain
 * workerd, Durable Objects in SQLite files; the reference authority on Miniflare; the bench's
 * origin), on free 127.0.0.1 ports with a temporary store. Measured: the resident memory (VmRSS
 * from /proc) of the gate's workerd process tree
 *   warm   after a warm-up (logins and session requests), settled;
 *   peak   after MEMORY_LOGINS fresh initial authentications (each a context of its own) and
 *          MEMORY_SESSION_REQUESTS later requests over MEMORY_SESSIONS sessions;
 *   idle   every 10 s for MEMORY_IDLE_SECONDS with no traffic, and at its end;
 * and, per 1,000 active contexts, what the first batch of logins added (its contexts are all
 * still resident then: workerd evicts an object only after 10 s without requests). Open files
 * are printed beside: each resident object holds its SQLite files open.
 * Bounded: every load phase has a time limit, and the counts are capped.
 *
 * Environment: MEMORY_LOGINS (10000), MEMORY_IDLE_SECONDS (120), MEMORY_SESSIONS (32),
 * MEMORY_SESSION_REQUESTS (16000), MEMORY_WARMUP_LOGINS (300); MEMORY_GATE_CONFIG (the
 * wrangler.toml of another gate build), MEMORY_CONSOLE=0 (no operator's console), MEMORY_V8_FLAGS (V8's flags instead of the default ones,
 * space-separated, "" for none); MEMORY_INSPECT=1 (the V8 heap through the inspector, and the RSS
 * after a forced full GC at the end), with MEMORY_GC_MS (a forced full GC that often during the
 * logins: a diagnosis, not a setting); MEMORY_REOPEN (0: sessions that, at the end, answer one
 * request after a pause of MEMORY_REOPEN_PAUSE_MS (3000: their contexts have gone quiet) and one
 * right after, MEMORY_REOPEN_ROUNDS times (5): the latency and gate CPU of each kind, i.e. what
 * re-opening a released context costs against a resident one).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startWorkerd } from '../scripts/stack/launcher.ts'
import { CONFIGS } from '../scripts/stack/paths.ts'
import { freePort, freePorts } from '../scripts/stack/ports.ts'
import { createDigestClient } from '../src/digest/client.ts'
import { cpuBetween, sampleCpu } from './lib/cpu.ts'
import { Inspector } from './lib/inspector.ts'
import { runLoadInThread } from './lib/load.ts'
import {
  BENCH_PATH,
  type Credentials,
  digestSessionRequests,
  initialAuthorization,
  rawGet,
} from './lib/requests.ts'
import { fetchChallenges } from './lib/rows.ts'
import { MIB, openFiles, treeRss } from './lib/rss.ts'
import { type ScratchStack, startScratchStack } from './lib/stack.ts'

const USER: Credentials = { username: 'bob', password: 'builder' }

function count(name: string, fallback: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw new Error(`${name} must be an integer from 0 to ${max}, got ${JSON.stringify(raw)}`)
  }
  return n
}

const LOGINS = count('MEMORY_LOGINS', 10_000, 200_000)
const IDLE_SECONDS = count('MEMORY_IDLE_SECONDS', 120, 3600)
const SESSIONS = count('MEMORY_SESSIONS', 32, 256)
const SESSION_REQUESTS = count('MEMORY_SESSION_REQUESTS', 16_000, 1_000_000)
const WARMUP_LOGINS = count('MEMORY_WARMUP_LOGINS', 300, 10_000)
const REOPEN_SESSIONS = count('MEMORY_REOPEN', 0, 1000)
const REOPEN_PAUSE_MS = count('MEMORY_REOPEN_PAUSE_MS', 3000, 60_000)
const REOPEN_ROUNDS = count('MEMORY_REOPEN_ROUNDS', 5, 100)
/** MEMORY_INSPECT=1: also the V8 heap of the gate (its inspector), and RSS after a forced GC. */
const INSPECT = process.env.MEMORY_INSPECT === '1'
/** Logins per batch: challenges fetched, answered, sent on 8 connections. */
const BATCH = 500
/** No load phase runs longer than this. */
const PHASE_MS = 300_000
const SAMPLE_SECONDS = 10
const TARGET_RATIO = 1.5

const log = (message: string) => console.log(`[memory] ${message}`)
const mib = (bytes: number) => (bytes / MIB).toFixed(0)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** `n` initial authentications, each creating a security context; how many were answered 200. */
async function logins(
  port: number,
  n: number,
  progress: (done: number) => void | Promise<void> = () => {}
): Promise<{ ok: number; ms: number }> {
  const url = `http://127.0.0.1:${port}${BENCH_PATH}`
  let ok = 0
  let ms = 0
  for (let done = 0; done < n; done += BATCH) {
    const size = Math.min(BATCH, n - done)
    const requests: string[] = []
    for (const challenge of await fetchChallenges(port, size)) {
      requests.push(
        rawGet(port, BENCH_PATH, {
          Authorization: await initialAuthorization(challenge, url, USER),
        })
      )
    }
    const result = await runLoadInThread({
      host: '127.0.0.1',
      port,
      connections: 8,
      queues: [requests],
      assignment: 'shared',
      repeat: false,
      warmupMs: 0,
      durationMs: PHASE_MS,
    })
    ok += result.statuses['200'] ?? 0
    ms += result.windowMs
    await progress(done + size)
  }
  return { ok, ms }
}

/** `total` later requests over `sessions` sessions (one per connection, nc in order). */
async function sessionRequests(port: number, sessions: number, total: number, pid?: number) {
  if (sessions === 0 || total === 0) return { ok: 0, sent: 0, cpuMs: undefined }
  const each = Math.ceil(total / sessions)
  const queues: string[][] = []
  for (let i = 0; i < sessions; i++) {
    queues.push(await digestSessionRequests(port, BENCH_PATH, USER, each))
  }
  const before = sampleCpu(pid)
  const result = await runLoadInThread({
    host: '127.0.0.1',
    port,
    connections: sessions,
    queues,
    assignment: 'per-connection',
    repeat: false,
    warmupMs: 0,
    durationMs: PHASE_MS,
  })
  const cpuMs = cpuBetween(before, sampleCpu(pid))?.edgeMs
  return { ok: result.statuses['200'] ?? 0, sent: result.sent, cpuMs }
}

/**
 * Sessions that pause between bursts (a browser): after each pause one request per session, then
 * one more right away; one at a time, so the gate's CPU falls to the kind being measured.
 */
async function reopenCost(port: number, sessions: number, pid?: number): Promise<void> {
  const url = `http://127.0.0.1:${port}${BENCH_PATH}`
  const clients = []
  for (let i = 0; i < sessions; i++) {
    const c = createDigestClient(USER)
    const res = await c.fetch(url)
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`establishing session ${i}: ${res.status}`)
    clients.push(c)
  }
  const kinds = ['after a pause', 'right after'] as const
  const ms = new Map(kinds.map((k) => [k, [] as number[]]))
  const cpu = new Map(kinds.map((k) => [k, 0]))
  for (let round = 0; round < REOPEN_ROUNDS; round++) {
    await sleep(REOPEN_PAUSE_MS)
    for (const kind of kinds) {
      const headers = await Promise.all(clients.map((c) => c.authorizationFor('GET', url)))
      const before = sampleCpu(pid)
      for (const authorization of headers) {
        const t = performance.now()
        const res = await fetch(url, { headers: { authorization: authorization ?? '' } })
        await res.arrayBuffer()
        ms.get(kind)?.push(performance.now() - t)
        if (res.status !== 200) throw new Error(`a session request ${kind}: ${res.status}`)
      }
      cpu.set(
        kind,
        (cpu.get(kind) ?? 0) + (cpuBetween(before, sampleCpu(pid))?.edgeMs ?? Number.NaN)
      )
    }
  }
  for (const kind of kinds) {
    const sorted = (ms.get(kind) ?? []).sort((a, b) => a - b)
    const at = (p: number) => (sorted[Math.floor((sorted.length - 1) * p)] ?? 0).toFixed(2)
    const n = sorted.length
    log(
      `re-open: ${n} requests ${kind}: latency median ${at(0.5)} ms, p90 ${at(0.9)} ms; ` +
        `gate CPU ${((cpu.get(kind) ?? 0) / n).toFixed(3)} ms per request`
    )
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-memory-'))
  let scratch: ScratchStack | undefined
  try {
    const [gatePort, authorityPort, originPort] = (await freePorts(3)) as [number, number, number]
    // MEMORY_GATE_CONFIG: another gate build (a patched copy of the project) for an A/B run.
    const gateConfig = process.env.MEMORY_GATE_CONFIG ?? CONFIGS.gate
    scratch = await startScratchStack(
      dir,
      { origin: originPort, authority: authorityPort, gate: gatePort },
      { gate: gateConfig },
      {
        // Thousands of initial authentications a minute from one address: the default brake
        // would answer most with 429.
        BRAKE_AUTHORITY_PER_MINUTE: '100000000',
        LOG_LEVEL: 'logins',
        // MEMORY_CONSOLE=0: without the operator's console (npm run serve has it).
        ...(process.env.MEMORY_CONSOLE === '0' ? { CONSOLE_GROUP: '' } : {}),
      }
    )
    log('bundled the workers, started the origin and the authority')
    const { stack, bundles, start } = scratch
    const inspectorPort = INSPECT ? await freePort() : undefined
    const gate = await start(
      startWorkerd('gate', [{ ...stack.gate, config: gateConfig, script: bundles.gate }], {
        dir,
        inspectorPort,
        // MEMORY_V8_FLAGS: V8's flags instead of the default ones (scripts/stack/workerd-config.ts).
        v8Flags: process.env.MEMORY_V8_FLAGS?.split(' ').filter(Boolean),
      })
    )
    const inspector = inspectorPort ? await Inspector.target(inspectorPort, 'gate') : undefined
    const heap = async () => {
      if (!inspector) return ''
      const h = await inspector.send<{ usedSize: number; totalSize: number }>(
        'Runtime.getHeapUsage'
      )
      return `, V8 heap ${mib(h.usedSize)}/${mib(h.totalSize)} MiB`
    }
    const pid = gate.process().pid
    const rss = () => {
      const bytes = treeRss(pid)
      if (bytes === undefined) throw new Error('no /proc entry for the gate process (Linux only)')
      return bytes
    }
    const files = () => `${openFiles(pid) ?? '?'} open files`
    log(
      `gate :${gatePort} (workerd pid ${pid}), authority :${authorityPort}, origin :${originPort}`
    )
    log(`started: ${mib(rss())} MiB`)

    const warmup = await logins(gatePort, WARMUP_LOGINS)
    await sessionRequests(gatePort, Math.min(SESSIONS, 8), 2000)
    await sleep(5000)
    const warm = rss()
    log(
      `warm (${warmup.ok} logins, session requests, 5 s): ${mib(warm)} MiB, ${files()}${await heap()}`
    )

    const t0 = Date.now()
    const cpu0 = sampleCpu(pid)
    const gcTimer =
      inspector && process.env.MEMORY_GC_MS
        ? setInterval(
            () => void inspector.send('HeapProfiler.collectGarbage'),
            Number(process.env.MEMORY_GC_MS)
          )
        : undefined
    let firstBatch: { contexts: number; bytes: number } | undefined
    const done = await logins(gatePort, LOGINS, async (n) => {
      const now = rss()
      firstBatch ??= { contexts: n, bytes: now - warm }
      log(`  ${n} logins: ${mib(now)} MiB, ${files()}${await heap()}`)
    })
    clearInterval(gcTimer)
    const loginCpu = cpuBetween(cpu0, sampleCpu(pid))?.edgeMs
    const afterLogins = rss()
    log(
      `${done.ok}/${LOGINS} logins answered 200 in ${((Date.now() - t0) / 1000).toFixed(0)} s ` +
        `(${((done.ok / done.ms) * 1000).toFixed(0)}/s): ${mib(afterLogins)} MiB, ${files()}${await heap()}`
    )
    if (loginCpu !== undefined && done.ok > 0) {
      log(`  gate CPU ${(loginCpu / done.ok).toFixed(2)} ms per login (its challenge included)`)
    }
    const sessions = await sessionRequests(gatePort, SESSIONS, SESSION_REQUESTS, pid)
    const peak = Math.max(afterLogins, rss())
    log(`${sessions.ok}/${sessions.sent} session requests answered 200: ${mib(rss())} MiB`)
    if (sessions.cpuMs !== undefined && sessions.ok > 0) {
      log(`  gate CPU ${(sessions.cpuMs / sessions.ok).toFixed(3)} ms per session request`)
    }

    const idleStart = Date.now()
    while (Date.now() - idleStart < IDLE_SECONDS * 1000) {
      await sleep(Math.min(SAMPLE_SECONDS * 1000, IDLE_SECONDS * 1000 - (Date.now() - idleStart)))
      log(
        `idle ${((Date.now() - idleStart) / 1000).toFixed(0)} s: ${mib(rss())} MiB, ${files()}${await heap()}`
      )
    }
    const idle = rss()
    if (REOPEN_SESSIONS > 0) await reopenCost(gatePort, REOPEN_SESSIONS, pid)
    if (inspector) {
      await inspector.send('HeapProfiler.collectGarbage')
      await sleep(5000)
      log(`after a forced full GC and 5 s: ${mib(rss())} MiB, ${files()}${await heap()}`)
      inspector.close()
    }
    const contexts = done.ok / 1000
    const per1000 = (bytes: number) => (contexts > 0 ? (bytes / MIB / contexts).toFixed(1) : '-')
    const ratio = idle / warm
    console.log('')
    console.log(
      `peak with ${done.ok} contexts created: ${mib(peak)} MiB, ` +
        `${per1000(peak - warm)} MiB per 1,000 contexts above warm`
    )
    console.log(
      `after ${IDLE_SECONDS} s idle: ${per1000(idle - warm)} MiB per 1,000 idle contexts above warm`
    )
    if (firstBatch) {
      console.log(
        `first ${firstBatch.contexts} logins (all resident): ${mib(firstBatch.bytes)} MiB, ` +
          `${((firstBatch.bytes / MIB / firstBatch.contexts) * 1000).toFixed(0)} MiB per 1,000 active contexts`
      )
    }
    console.log(
      `after ${done.ok} logins + idle: ${mib(idle)} MiB vs warm ${mib(warm)} MiB ` +
        `(${ratio.toFixed(2)} x, target <= ${TARGET_RATIO}x) ${ratio <= TARGET_RATIO ? 'met' : 'MISSED'}`
    )
  } finally {
    await scratch?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
