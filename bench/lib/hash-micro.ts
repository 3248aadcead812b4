/**
 * The hash rows of `npm run bench:micro`: every candidate of hash-candidates.ts, per call, under
 * Node (in this process) and inside workerd (the bench/workers/hash-micro bundle on plain
 * `workerd serve`, as the gate runs). Samples of all candidates are interleaved, each round in
 * another order, and the median of the rounds is reported: other programs on this machine come
 * and go within seconds.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundleWorker } from '../../scripts/stack/bundle.ts'
import { startWorkerd } from '../../scripts/stack/launcher.ts'
import { PROJECT_ROOT } from '../../scripts/stack/paths.ts'
import { freePort } from '../../scripts/stack/ports.ts'
import type { AlgorithmName, HashName } from '../../src/digest/types.ts'
import {
  benchRequest,
  candidates,
  type Sample,
  sampleHash,
  sampleResponse,
} from './hash-candidates.ts'

/** What is timed: `computeResponse` of an algorithm, or `hashHex` of one ~100-byte text. */
export interface HashTarget {
  kind: 'response' | 'hash'
  name: string
}

export const HASH_TARGETS: readonly HashTarget[] = [
  { kind: 'hash', name: 'MD5' },
  { kind: 'hash', name: 'SHA-256' },
  { kind: 'hash', name: 'SHA-512-256' },
  { kind: 'response', name: 'MD5' },
  { kind: 'response', name: 'SHA-256' },
  { kind: 'response', name: 'SHA-256-sess' },
  { kind: 'response', name: 'SHA-512-256' },
]

interface Sampler {
  candidates: string[]
  /** One sample, and the CPU time its thread(s) used meanwhile (ns; undefined without /proc). */
  sample(
    candidate: string,
    target: HashTarget,
    ms: number
  ): Promise<{ sample: Sample; cpuNs: number | undefined }>
  close(): Promise<void>
}

export interface HashRow {
  runtime: 'node' | 'workerd'
  target: string
  candidate: string
  /** Median over the rounds of the wall time per call, measured inside the runtime. */
  microsecondsPerCall: number
  /**
   * Median over the rounds of the CPU time per call: the runtime's threads' CPU (Linux
   * schedstat), blind to time spent descheduled while other programs ran. Undefined without /proc.
   */
  cpuMicrosecondsPerCall: number | undefined
  rounds: number[]
  cpuRounds: number[]
}

/** CPU time of every thread of a process so far, ns (Linux /proc schedstat), or undefined. */
function threadsCpuNs(pid: number): number | undefined {
  try {
    let total = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const fields = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')
      total += Number(fields[0])
    }
    return total
  } catch {
    return undefined
  }
}

/** CPU time of this Node thread so far, ns. */
function ownThreadCpuNs(): number {
  const usage = (process as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage?.()
  const { user, system } = usage ?? process.cpuUsage()
  return (user + system) * 1000
}

async function nodeSampler(): Promise<Sampler> {
  const list = await candidates()
  let nextNc = 1
  return {
    candidates: list.map((c) => c.name),
    async sample(name, target, ms) {
      const candidate = list.find((c) => c.name === name)
      if (candidate === undefined) throw new Error(`no candidate ${name}`)
      const before = ownThreadCpuNs()
      let sample: Sample
      if (target.kind === 'hash') {
        sample = await sampleHash(candidate, target.name as HashName, ms)
      } else {
        const request = benchRequest(target.name as AlgorithmName)
        sample = await sampleResponse(candidate, request, ms, nextNc)
        nextNc += sample.calls
      }
      return { sample, cpuNs: ownThreadCpuNs() - before }
    },
    close: async () => {},
  }
}

async function workerdSampler(log: (line: string) => void): Promise<Sampler> {
  const dir = mkdtempSync(join(tmpdir(), 'hash-micro-'))
  try {
    const config = join(PROJECT_ROOT, 'bench', 'workers', 'hash-micro', 'wrangler.toml')
    const outdir = join(dir, 'bundle')
    mkdirSync(outdir)
    log('bundling bench/workers/hash-micro (wrangler deploy --dry-run)')
    const script = await bundleWorker(config, outdir)
    const port = await freePort()
    const workerd = await startWorkerd(
      'hash-micro',
      [{ name: 'hash-micro', config, script, port, readyPath: '/candidates' }],
      { dir, onLine: (line) => log(`workerd: ${line}`) }
    )
    const base = `http://127.0.0.1:${port}`
    const list = (await (await fetch(`${base}/candidates`)).json()) as string[]
    return {
      candidates: list,
      async sample(candidate, target, ms) {
        const query = new URLSearchParams({ candidate, kind: target.kind, name: target.name })
        query.set('ms', String(ms))
        const before = threadsCpuNs(workerd.process().pid)
        const response = await fetch(`${base}/sample?${query}`)
        if (!response.ok) throw new Error(`workerd sample: ${response.status}`)
        const sample = (await response.json()) as Sample
        const after = threadsCpuNs(workerd.process().pid)
        const cpuNs = before === undefined || after === undefined ? undefined : after - before
        return { sample, cpuNs }
      },
      async close() {
        await workerd.stop()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** Deterministic shuffle (round `seed`), so that no candidate always runs first. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items]
  let state = seed * 2654435761 + 1
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2147483648
    const j = state % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

export async function hashRows(options: {
  runtime: 'node' | 'workerd'
  rounds: number
  sampleMs: number
  log: (line: string) => void
}): Promise<HashRow[]> {
  const sampler =
    options.runtime === 'node' ? await nodeSampler() : await workerdSampler(options.log)
  try {
    const cells = HASH_TARGETS.flatMap((target) =>
      sampler.candidates.map((candidate) => ({ target, candidate }))
    )
    // One untimed round: JIT warm-up, lazy initialisation.
    for (const { target, candidate } of cells) {
      await sampler.sample(candidate, target, Math.min(50, options.sampleMs))
    }
    const wall = new Map<string, number[]>()
    const cpu = new Map<string, number[]>()
    const add = (map: Map<string, number[]>, key: string, value: number) => {
      map.set(key, [...(map.get(key) ?? []), value])
    }
    for (let round = 0; round < options.rounds; round++) {
      for (const { target, candidate } of shuffled(cells, round)) {
        const { sample, cpuNs } = await sampler.sample(candidate, target, options.sampleMs)
        const key = `${target.kind} ${target.name}\u0000${candidate}`
        add(wall, key, sample.microsecondsPerCall)
        if (cpuNs !== undefined) add(cpu, key, cpuNs / 1000 / sample.calls)
      }
      options.log(`${options.runtime}: round ${round + 1}/${options.rounds}`)
    }
    const round2 = (n: number) => Number(n.toFixed(2))
    return cells.map(({ target, candidate }) => {
      const key = `${target.kind} ${target.name}\u0000${candidate}`
      const rounds = wall.get(key) ?? []
      const cpuRounds = cpu.get(key) ?? []
      return {
        runtime: options.runtime,
        target: `${target.kind === 'hash' ? 'hashHex' : 'computeResponse'} ${target.name}`,
        candidate,
        microsecondsPerCall: round2(median(rounds)),
        cpuMicrosecondsPerCall: cpuRounds.length > 0 ? round2(median(cpuRounds)) : undefined,
        rounds: rounds.map(round2),
        cpuRounds: cpuRounds.map(round2),
      }
    })
  } finally {
    await sampler.close()
  }
}
