/**
 * `npm run bench`: the gate against its baselines, side by side on this machine.
 * Every worker runs on plain workerd (no wrangler dev proxy), every load is bounded in time and
 * count and goes to 127.0.0.1 only, every Authorization header is computed before the timed phase.
 * Rows are interleaved: under each load, every row runs a short slice in turn, for several rounds
 * (each round in another order), so that all rows share the machine's changing conditions.
 * Prints the table and writes bench/results/bench-<timestamp>.{json,md}. Method and reading:
 * docs/performance.md.
 *
 * Environment: BENCH_SECONDS (measured seconds per row and load, default 3), BENCH_ROUNDS (slices
 * per row and load, 3), BENCH_WARMUP_MS (per slice, 300), BENCH_APACHE=0 (skip Apache),
 * BENCH_ROWS / BENCH_LOADS (comma-separated ids, to run a subset), BENCH_GATE_CONFIG (the
 * wrangler.toml of another gate build, to measure a change).
 */
import { spawnSync } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { workerdBinary } from '../scripts/stack/launcher.ts'
import { PROJECT_ROOT } from '../scripts/stack/paths.ts'
import { apacheVersion } from './lib/apache.ts'
import { cpuBetween, sampleCpu } from './lib/cpu.ts'
import { countsBetween, type DecisionCounts, settle } from './lib/decisions.ts'
import { runLoadInThread } from './lib/load.ts'
import { type LoadResult, latencySummary } from './lib/loadgen.ts'
import {
  evaluateTargets,
  type RunRecord,
  renderTable,
  renderTargets,
  writeResults,
} from './lib/report.ts'
import {
  type Budget,
  LOADS,
  type Load,
  prepareRow,
  ROWS,
  type Row,
  type RowId,
  type RowPlan,
  type Timing,
} from './lib/rows.ts'
import { BENCH_USER, type BenchStack, startBenchStack } from './lib/stack.ts'

const env = process.env
const ROUNDS = Math.max(1, Number(env.BENCH_ROUNDS ?? 3))
const SLICE: Timing = {
  warmupMs: Number(env.BENCH_WARMUP_MS ?? 300),
  durationMs: Math.round((Number(env.BENCH_SECONDS ?? 3) * 1000) / ROUNDS),
}
const WARM_PASS: Timing = { warmupMs: 0, durationMs: 600 }
const only = (value: string | undefined) =>
  value ? new Set(value.split(',').map((s) => s.trim())) : undefined
const ROW_FILTER = only(env.BENCH_ROWS)
const LOAD_FILTER = only(env.BENCH_LOADS)

const log = (message: string) => console.log(`[bench] ${message}`)

/**
 * How many requests a row may need under one load: session rows must not run out of nc values,
 * so there is room for three times the pace it showed in the warm-up pass (or row (a)'s).
 */
function budgetFor(rates: Map<RowId, number>, row: RowId): Budget {
  const seconds = (ROUNDS * (SLICE.warmupMs + SLICE.durationMs)) / 1000
  const clamp = (n: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.ceil(n)))
  const pace = Math.max(rates.get(row) ?? 0, rates.get('a') ?? 0, 500)
  return {
    requests: clamp(pace * seconds * 3, 1500, 60_000),
    initial: clamp((rates.get('d') ?? 100) * seconds * 2, 200, 6000),
  }
}

/** What one slice measured, before it is pooled with the row's other slices. */
interface Slice {
  result: LoadResult
  decisions: DecisionCounts
  afterWarmup: DecisionCounts
  authorityDelta: number
  serversMs: number | undefined
  edgeMs: number | undefined
  benchMs: number | undefined
  othersMs: number | undefined
  wallMs: number
  loadavg1: number
}

async function runSlice(stack: BenchStack, row: Row, plan: RowPlan, timing: Timing) {
  const loadavg1 = loadavg()[0] ?? 0
  const before = stack.decisions.snapshot()
  const authorityBefore = row.gate ? await stack.authorityVerifications() : 0
  const cpuBefore = sampleCpu(stack.edgePid())
  let afterWarmup = before
  // The thread starts and connects within a few tens of ms: split a little after the warm-up.
  const split = setTimeout(() => {
    afterWarmup = stack.decisions.snapshot()
  }, timing.warmupMs + 150)
  const result = await runLoadInThread(plan.slice(timing))
  clearTimeout(split)
  plan.advance(result.consumed)
  if (row.gate) await settle(stack.decisions, before, result.sent)
  const cpuAfter = sampleCpu(stack.edgePid())
  const after = stack.decisions.snapshot()
  const authorityAfter = row.gate ? await stack.authorityVerifications() : 0
  const cpu = cpuBetween(cpuBefore, cpuAfter)
  const wallMs = cpuBefore && cpuAfter ? cpuAfter.at - cpuBefore.at : 0
  const slice: Slice = {
    result,
    decisions: countsBetween(before, after),
    afterWarmup: countsBetween(afterWarmup, after),
    authorityDelta: authorityAfter - authorityBefore,
    serversMs: cpu?.serversMs,
    edgeMs: row.apache ? undefined : cpu?.edgeMs,
    benchMs: cpu?.benchMs,
    othersMs: cpu ? (cpu.othersPercent / 100) * wallMs : undefined,
    wallMs,
    loadavg1,
  }
  return slice
}

function addCounts(a: DecisionCounts, b: DecisionCounts): DecisionCounts {
  const outcomes = { ...a.outcomes }
  for (const [k, v] of Object.entries(b.outcomes)) outcomes[k] = (outcomes[k] ?? 0) + v
  return {
    decisions: a.decisions + b.decisions,
    authorityCalls: a.authorityCalls + b.authorityCalls,
    contextCalls: a.contextCalls + b.contextCalls,
    outcomes,
  }
}

/** One record from a row's slices under a load: counts summed, latencies pooled. */
function pool(row: Row, load: Load, slices: Slice[]): RunRecord {
  const sum = (f: (s: Slice) => number) => slices.reduce((n, s) => n + f(s), 0)
  const windowMs = sum((s) => s.result.windowMs)
  const completed = sum((s) => s.result.completed)
  const ok = sum((s) => s.result.ok)
  const sent = sum((s) => s.result.sent)
  const statuses: Record<string, number> = {}
  for (const s of slices) {
    for (const [k, v] of Object.entries(s.result.statuses)) statuses[k] = (statuses[k] ?? 0) + v
  }
  const none: DecisionCounts = { decisions: 0, authorityCalls: 0, contextCalls: 0, outcomes: {} }
  const decisions = slices.map((s) => s.decisions).reduce(addCounts, none)
  const afterWarmup = slices.map((s) => s.afterWarmup).reduce(addCounts, none)
  const per1k = (n: number) => (sent > 0 ? (n / sent) * 1000 : 0)
  const seconds = windowMs / 1000
  const cpuKnown = slices.every((s) => s.serversMs !== undefined)
  const wall = sum((s) => s.wallMs)
  return {
    row: row.id,
    rowLabel: row.label,
    load: load.id,
    loadLabel: load.label,
    connections: load.connections,
    slices: slices.length,
    windowMs: Math.round(windowMs),
    sent,
    completed,
    ok,
    rps: seconds > 0 ? completed / seconds : 0,
    okRps: seconds > 0 ? ok / seconds : 0,
    latencyMs: latencySummary(slices.flatMap((s) => s.result.latencies)),
    non2xx: Object.entries(statuses)
      .filter(([status]) => !status.startsWith('2'))
      .reduce((n, [, count]) => n + count, 0),
    statuses,
    errors: sum((s) => s.result.errors),
    exhausted: slices.some((s) => s.result.exhausted),
    timedOut: slices.some((s) => s.result.timedOut),
    gate: row.gate
      ? {
          decisions,
          afterWarmup,
          authorityPer1k: per1k(decisions.authorityCalls),
          authorityMetricsDelta: sum((s) => s.authorityDelta),
          contextCallsPer1k: per1k(decisions.contextCalls),
          contextCallsAfterWarmup: afterWarmup.contextCalls,
        }
      : undefined,
    durableObjectCallsPer1k: row.id === "a'" || row.id === "a''" ? 1000 : undefined,
    cpu: cpuKnown
      ? {
          serverMsPerRequest: sent > 0 ? sum((s) => s.serversMs ?? 0) / sent : 0,
          edgeMsPerRequest:
            sent > 0 && slices.every((s) => s.edgeMs !== undefined)
              ? sum((s) => s.edgeMs ?? 0) / sent
              : undefined,
          benchMs: sum((s) => s.benchMs ?? 0),
          loadgenMs: sum((s) => s.result.cpuMs),
          othersPercent: wall > 0 ? (sum((s) => s.othersMs ?? 0) / wall) * 100 : 0,
        }
      : undefined,
    loadavg1: sum((s) => s.loadavg1) / slices.length,
  }
}

function progressLine(r: RunRecord): string {
  const p = (n: number) => n.toFixed(2)
  const gate = r.gate
    ? ` authority/1k ${r.gate.authorityPer1k.toFixed(1)} DO/1k ${r.gate.contextCallsPer1k.toFixed(1)}`
    : ''
  return `(${r.row}) ${r.load}: ${Math.round(r.okRps)} ok/s of ${Math.round(r.rps)}, p50 ${p(r.latencyMs.p50)} p99 ${p(r.latencyMs.p99)} ms, non-2xx ${r.non2xx}${gate}${r.exhausted ? ' (ran out of requests)' : ''}`
}

function workerdVersion(): string {
  return (spawnSync(workerdBinary(), ['--version'], { encoding: 'utf8' }).stdout ?? '').trim()
}

async function main(): Promise<void> {
  const started = new Date()
  const loadavgStart = loadavg()
  log(`load average ${loadavgStart.map((x) => x.toFixed(2)).join(' ')} (${cpus().length} cores)`)
  const stack = await startBenchStack({ log, apache: env.BENCH_APACHE !== '0' })
  const notes: string[] = []
  if (stack.apacheSkipped) notes.push(`Apache rows skipped: ${stack.apacheSkipped}`)
  const rows = ROWS.filter(
    (r) => (!ROW_FILTER || ROW_FILTER.has(r.id)) && (!r.apache || stack.apache !== undefined)
  )
  const loads = LOADS.filter((l) => !LOAD_FILTER || LOAD_FILTER.has(l.id))
  const records: RunRecord[] = []
  let stopping = false
  const onSignal = () => {
    if (stopping) return
    stopping = true
    void stack.stop().then(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    // JIT, connection pools and Durable Object files warm once for every target; the pace each
    // row shows here sizes its precomputed requests.
    log('warm-up pass')
    const rates = new Map<RowId, number>()
    const warmLoad = LOADS[0] as Load
    for (const row of rows) {
      const plan = await prepareRow(row, warmLoad, stack, BENCH_USER, {
        requests: 3000,
        initial: 300,
      })
      const { result } = await runSlice(stack, row, plan, WARM_PASS)
      rates.set(row.id, result.windowMs > 0 ? (result.ok / result.windowMs) * 1000 : 0)
    }
    for (const load of loads) {
      const active = rows.filter((r) => !(r.perConnectionOnly && load.sessions === 'shared'))
      log(`load: ${load.label} (${active.length} rows x ${ROUNDS} slices)`)
      const plans = new Map<RowId, RowPlan>()
      for (const row of active) {
        plans.set(row.id, await prepareRow(row, load, stack, BENCH_USER, budgetFor(rates, row.id)))
      }
      const slices = new Map<RowId, Slice[]>(active.map((r) => [r.id, []]))
      for (let round = 0; round < ROUNDS; round++) {
        // Each round starts one row further on (and alternate rounds run backwards).
        const shift = round % active.length
        const order = [...active.slice(shift), ...active.slice(0, shift)]
        if (round % 2 === 1) order.reverse()
        for (const row of order) {
          const plan = plans.get(row.id) as RowPlan
          slices.get(row.id)?.push(await runSlice(stack, row, plan, SLICE))
        }
      }
      for (const row of active) {
        const record = pool(row, load, slices.get(row.id) ?? [])
        records.push(record)
        log(progressLine(record))
      }
    }
  } catch (error) {
    for (const line of stack.decisions.otherLines) console.error(`[bench] edge log: ${line}`)
    throw error
  } finally {
    await stack.stop()
  }

  for (const r of records.filter((r) => r.errors > 0 || r.timedOut)) {
    notes.push(
      `(${r.row}) ${r.load}: ${r.errors} connection errors${r.timedOut ? ', timed out' : ''}`
    )
  }
  const wanted = ROUNDS * SLICE.durationMs
  for (const r of records.filter((r) => r.exhausted && r.windowMs < wanted * 0.5)) {
    notes.push(`(${r.row}) ${r.load}: measured over ${r.windowMs} ms only (requests ran out)`)
  }
  const otherLines = stack.decisions.otherLines
  if (otherLines.length > 0) {
    notes.push(
      `gate log lines other than decisions: ${otherLines.length} (last: ${otherLines.at(-1)})`
    )
  }

  const targets = evaluateTargets(records)
  const meta = {
    date: started.toISOString(),
    durationMs: wanted,
    warmupMs: SLICE.warmupMs,
    rounds: ROUNDS,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      workerd: workerdVersion(),
      apache: stack.apache ? apacheVersion() : undefined,
      loadavgStart,
      loadavgEnd: loadavg(),
    },
    notes,
  }
  console.log(`\n${renderTable(records)}\n\n${renderTargets(targets)}\n`)
  for (const note of notes) console.log(`note: ${note}`)
  const files = writeResults(join(PROJECT_ROOT, 'bench', 'results'), meta, records, targets)
  log(`wrote ${files.md} and ${files.json}`)
}

main().catch((error: unknown) => {
  console.error(
    `[bench] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
  )
  process.exit(1)
})
