/**
 * CPU accounting from /proc (Linux): the servers' CPU (every process this bench started), the
 * bench process's own, and the whole machine's, so that a row's cost per request and the CPU other
 * programs took during it can be reported. Elsewhere the figures are simply absent.
 */
import { existsSync, readFileSync } from 'node:fs'
import { processTree, statFields } from './proc.ts'

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const TICK_MS = 10

export interface CpuSample {
  /** Descendant processes of the bench (workerd, Apache, the Miniflare host and its workerd), ms. */
  servers: number
  /** The bench process itself (load generator thread, log reading), ms. */
  bench: number
  /** The edge workerd process alone (the worker under test, without origin or authority), ms. */
  edge: number | undefined
  /** All CPUs of the machine, busy ms. */
  machine: number
  at: number
}

export const procAvailable = existsSync('/proc/self/stat')

/** CPU of the processes below `root` (not `root` itself), ms. */
function descendantsCpuMs(root: number): number {
  let total = 0
  for (const pid of processTree(root) ?? []) if (pid !== root) total += processCpuMs(pid) ?? 0
  return total
}

/** CPU of `root` and every process below it (the authority: its Miniflare host and workerd), ms. */
export function treeCpuMs(root: number): number {
  let total = 0
  for (const pid of processTree(root) ?? []) total += processCpuMs(pid) ?? 0
  return total
}

function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal …
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const busy = (v[0] ?? 0) + (v[1] ?? 0) + (v[2] ?? 0) + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0)
  return busy * TICK_MS
}

/** CPU of one process, ms; undefined once it ended. */
export function processCpuMs(pid: number): number | undefined {
  const f = statFields(pid)
  return f && (Number(f[11]) + Number(f[12])) * TICK_MS
}

export function sampleCpu(edgePid?: number): CpuSample | undefined {
  if (!procAvailable) return undefined
  const own = process.cpuUsage()
  return {
    servers: descendantsCpuMs(process.pid),
    bench: (own.user + own.system) / 1000,
    edge: edgePid === undefined ? undefined : processCpuMs(edgePid),
    machine: machineBusyMs(),
    at: performance.now(),
  }
}

export interface CpuUse {
  serversMs: number
  edgeMs: number | undefined
  benchMs: number
  /** CPU that programs other than this bench used meanwhile, in % of one core. */
  othersPercent: number
}

export function cpuBetween(a: CpuSample | undefined, b: CpuSample | undefined): CpuUse | undefined {
  if (!a || !b) return undefined
  const wall = b.at - a.at
  const servers = b.servers - a.servers
  const bench = b.bench - a.bench
  const others = Math.max(0, b.machine - a.machine - servers - bench)
  return {
    serversMs: servers,
    edgeMs: a.edge !== undefined && b.edge !== undefined ? b.edge - a.edge : undefined,
    benchMs: bench,
    othersPercent: wall > 0 ? (others / wall) * 100 : 0,
  }
}
