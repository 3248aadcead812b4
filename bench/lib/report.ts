/**
 * The bench's results: one record per (row, load) run, the table, the targets (docs/performance.md)
 * checked against the records, and the files under bench/results/.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { DecisionCounts } from './decisions.ts'
import type { RowId } from './rows.ts'

export interface RunRecord {
  row: RowId
  rowLabel: string
  load: string
  loadLabel: string
  connections: number
  /** Interleaved slices the record pools. */
  slices: number
  /** Measured time, all slices together (ms). */
  windowMs: number
  sent: number
  completed: number
  ok: number
  rps: number
  okRps: number
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number }
  /** Non-2xx responses over the whole run (warm-up and drain included). */
  non2xx: number
  statuses: Record<string, number>
  errors: number
  /** A queue ran dry before the time bound (the window is shorter than asked). */
  exhausted: boolean
  timedOut: boolean
  /** Gate rows: from the decision log (and the authority's own counter). */
  gate?: {
    decisions: DecisionCounts
    /** Decisions counted after the warm-up (approximate split, by the main thread's clock). */
    afterWarmup: DecisionCounts
    authorityPer1k: number
    authorityMetricsDelta: number
    contextCallsPer1k: number
    contextCallsAfterWarmup: number
  }
  /** Rows (a'), (a''): one RPC per request by construction. */
  durableObjectCallsPer1k?: number
  cpu?: {
    /** Every server process (worker, origin, authority or Apache): ms of CPU per request sent. */
    serverMsPerRequest: number
    /** The edge workerd process alone (the worker under test): ms of CPU per request sent. */
    edgeMsPerRequest?: number
    benchMs: number
    loadgenMs: number
    /** Other programs' CPU during the run, % of one core. */
    othersPercent: number
  }
  loadavg1: number
}

export interface Target {
  name: string
  load: string
  measured: string
  met: boolean | undefined
}

export interface BenchMeta {
  date: string
  /** Measured time per row and load, and how it was cut into interleaved slices. */
  durationMs: number
  warmupMs: number
  rounds: number
  machine: {
    cpu: string
    cores: number
    node: string
    workerd: string
    apache: string | undefined
    loadavgStart: number[]
    loadavgEnd: number[]
  }
  notes: string[]
}

const round = (n: number, digits = 0) => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/**
 * Row (d) before the initial authentication was made cheaper (bench-2026-11-22T04-17-12-899Z,
 * this machine): the figure its target is a multiple of.
 */
const LOGINS_PER_SECOND_BEFORE: Record<string, number> = { 'conn-8': 69, 'conn-32': 49 }

function find(records: RunRecord[], row: RowId, load: string): RunRecord | undefined {
  return records.find((r) => r.row === row && r.load === load)
}

export function evaluateTargets(records: RunRecord[]): Target[] {
  const loads = [...new Set(records.map((r) => r.load))]
  const targets: Target[] = []
  const ratio = (name: string, load: string, num?: RunRecord, den?: RunRecord, min = 0) => {
    if (!num || !den || den.okRps === 0) return
    const value = num.okRps / den.okRps
    targets.push({ name, load, measured: value.toFixed(2), met: value >= min })
  }
  for (const load of loads) {
    const aPrime = find(records, "a'", load)
    const pub = find(records, 'p', load)
    const window = find(records, 'c-window', load)
    const off = find(records, 'c-off', load)
    // Against the gate's own public route: the same process, build and forwarding, so what is
    // left is the authentication's cost.
    ratio('(c, window) / (p) >= 0.70', load, window, pub, 0.7)
    ratio('(c, off) / (p) >= 0.85', load, off, pub, 0.85)
    for (const [c, limit] of [
      [window, 0.25],
      [off, 0.1],
    ] as const) {
      // The edge process alone: the gate and its objects, not the origin's share.
      const cpu = c?.cpu?.edgeMsPerRequest
      const base = pub?.cpu?.edgeMsPerRequest
      if (!c || cpu === undefined || base === undefined) continue
      targets.push({
        name: `gate CPU per verified request (${c.row}) - (p) <= ${limit} ms`,
        load,
        measured: `${(cpu - base).toFixed(3)} ms`,
        met: cpu - base <= limit,
      })
    }
    const info = (name: string, num?: RunRecord, den?: RunRecord) => {
      if (num && den && den.okRps > 0) {
        targets.push({ name, load, measured: (num.okRps / den.okRps).toFixed(2), met: undefined })
      }
    }
    info("(info) (c, window) / (a'), one empty DO RPC", window, aPrime)
    info("(info) (c, window) / (a''), one DO RPC writing a row", window, find(records, "a''", load))
    info('(info) (c, window, tmpfs) / (p)', find(records, 'c-window-tmpfs', load), pub)
    if (pub && pub.connections === 32) {
      for (const c of [window, off]) {
        if (!c || pub.latencyMs.p99 <= 0) continue
        const r = c.latencyMs.p99 / pub.latencyMs.p99
        targets.push({
          name: `p99 (${c.row}) <= 1.3 x p99 (p) at 32 connections`,
          load,
          measured: `${c.latencyMs.p99.toFixed(1)} vs ${pub.latencyMs.p99.toFixed(1)} ms (${r.toFixed(2)}x)`,
          met: r <= 1.3,
        })
      }
    }
    const logins = find(records, 'd', load)
    const before = LOGINS_PER_SECOND_BEFORE[load]
    if (logins && before) {
      targets.push({
        name: `(d) initial authentications/s >= 3 x ${before} (before the login path was cut)`,
        load,
        measured: `${round(logins.okRps)} (${(logins.okRps / before).toFixed(2)}x)`,
        met: logins.okRps >= 3 * before,
      })
    }
    const windowAll = find(records, 'c-window-all', load)
    const offAll = find(records, 'c-off-all', load)
    info('(info) (c, window, LOG_LEVEL=all) / (p)', windowAll, pub)
    info('(info) (c, off, LOG_LEVEL=all) / (p)', offAll, pub)
    for (const c of [window, off, windowAll, offAll]) {
      if (!c) continue
      targets.push({
        name: `(${c.row}) non-2xx = 0`,
        load,
        measured: String(c.non2xx),
        met: c.non2xx === 0,
      })
      if (c.gate) {
        targets.push({
          name: `(${c.row}) authority calls = 0`,
          load,
          measured: `${c.gate.decisions.authorityCalls} (authority counter: ${c.gate.authorityMetricsDelta})`,
          met: c.gate.decisions.authorityCalls === 0 && c.gate.authorityMetricsDelta === 0,
        })
        if (c.row === 'c-window-all') {
          targets.push({
            name: '(c, window) DO calls <= 1 per request',
            load,
            measured: `${round(c.gate.contextCallsPer1k, 1)} / 1000`,
            met: c.gate.contextCallsPer1k <= 1000,
          })
        } else {
          targets.push({
            name: '(c, off) DO calls = 0 once warm',
            load,
            // The isolate cache keeps a context 30 s (CACHE_SECONDS): then one call revalidates it.
            measured: `${c.gate.contextCallsAfterWarmup} after warm-up, ${c.gate.decisions.contextCalls} in all (${round(c.gate.contextCallsPer1k, 1)} / 1000)`,
            met: c.gate.contextCallsAfterWarmup === 0,
          })
        }
      }
    }
    const apacheOn = find(records, 'e-on', load)
    if (window && apacheOn && load.startsWith('shared')) {
      targets.push({
        name: 'moonshot: (c, window) ok req/s > Apache nc check on (browser-like load)',
        load,
        measured: `${round(window.okRps)} vs ${round(apacheOn.okRps)} (${(window.okRps / Math.max(1, apacheOn.okRps)).toFixed(2)}x)`,
        met: window.okRps > apacheOn.okRps,
      })
    }
  }
  return targets
}

function cell(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? '—' : String(round(n, digits))
}

export function renderTable(records: RunRecord[]): string {
  const header =
    '| row | load | req/s | ok req/s | p50 ms | p99 ms | non-2xx | authority /1k | DO calls /1k | server CPU ms/req | edge CPU ms/req | ok vs (a) | others CPU % |'
  const lines = [header, `|${'---|'.repeat(13)}`]
  for (const r of records) {
    const a = find(records, 'a', r.load)
    const vsA = a && a.okRps > 0 ? (r.okRps / a.okRps).toFixed(2) : '—'
    const authority = r.gate ? cell(r.gate.authorityPer1k, 1) : '—'
    const doCalls = r.gate
      ? cell(r.gate.contextCallsPer1k, 1)
      : r.durableObjectCallsPer1k !== undefined
        ? `${cell(r.durableObjectCallsPer1k)}*`
        : '—'
    lines.push(
      `| (${r.row}) ${r.rowLabel} | ${r.loadLabel} | ${cell(r.rps)} | ${cell(r.okRps)} | ${cell(r.latencyMs.p50, 2)} | ${cell(r.latencyMs.p99, 2)} | ${r.non2xx} | ${authority} | ${doCalls} | ${cell(r.cpu?.serverMsPerRequest, 3)} | ${cell(r.cpu?.edgeMsPerRequest, 3)} | ${vsA} | ${cell(r.cpu?.othersPercent)} |`
    )
  }
  return lines.join('\n')
}

export function renderTargets(targets: Target[]): string {
  const lines = ['| target | load | measured | met |', '|---|---|---|---|']
  for (const t of targets) {
    lines.push(
      `| ${t.name} | ${t.load} | ${t.measured} | ${t.met === undefined ? '—' : t.met ? 'yes' : '**no**'} |`
    )
  }
  return lines.join('\n')
}

export function renderMarkdown(meta: BenchMeta, records: RunRecord[], targets: Target[]): string {
  const m = meta.machine
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ')
  return `# digest-gate bench, ${meta.date}

Machine: ${m.cpu}, ${m.cores} cores; Node ${m.node}; workerd ${m.workerd}; Apache ${m.apache ?? 'not run'}.
Load average (1, 5, 15 min): ${load(m.loadavgStart)} at the start, ${load(m.loadavgEnd)} at the end.
Each row under each load: ${meta.durationMs} ms measured, in ${meta.rounds} slices interleaved with the other rows' (each slice after a ${meta.warmupMs} ms warm-up); shorter when its precomputed requests ran out.

${renderTable(records)}

\\* by construction: the worker makes one RPC per request. DO calls of gate rows are the decision
log's \`contextCalls\` (security-context calls; see docs/performance.md for row (d)).
"server CPU" sums every server process of the row (worker, origin, authority or Apache);
"edge CPU" is the workerd process of the worker under test alone.
"others CPU %" is CPU that other programs on the machine took during the run (100 = one core).

## Targets

${renderTargets(targets)}
${meta.notes.length > 0 ? `\n## Notes\n\n${meta.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`
}

export function writeResults(
  dir: string,
  meta: BenchMeta,
  records: RunRecord[],
  targets: Target[]
): { json: string; md: string } {
  mkdirSync(dir, { recursive: true })
  const stamp = meta.date.replace(/[:.]/g, '-')
  const json = join(dir, `bench-${stamp}.json`)
  const md = join(dir, `bench-${stamp}.md`)
  writeFileSync(json, `${JSON.stringify({ meta, records, targets }, null, 2)}\n`)
  writeFileSync(md, renderMarkdown(meta, records, targets))
  return { json, md }
}
