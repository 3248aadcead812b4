/**
 * `node bench/ab.ts <gate wrangler.toml B> [A]`: compares two builds of the gate (A defaults to
 * the project's) on the hot path, interleaved A/B/B/A so that both see the same machine. Each gate
 * runs in a workerd process of its own, so the CPU per request of the gate alone is read from
 * /proc. For checking a performance change before proposing it (docs/performance.md).
 * Environment: AB_ROUNDS (default 4), AB_SECONDS (3), AB_REPLAY (comma list, default "off,window"),
 * AB_CONNECTIONS (8), AB_TMPFS=1 (Durable Object files on /dev/shm).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../scripts/lib/stack-paths.ts'
import { freePorts } from '../scripts/lib/stack-ports.ts'
import { readDotenv } from '../scripts/lib/stack-secrets.ts'
import { bundleWorker } from '../scripts/lib/stack-serve.ts'
import { prepareStack } from '../scripts/lib/stack-start.ts'
import { runLoadInThread } from './lib/load.ts'
import { BENCH_PATH, digestSessionRequests } from './lib/requests.ts'
import { BENCH_USER } from './lib/stack.ts'
import { serveWorker } from './lib/workerd.ts'
import { startWorkerd, type WorkerdProcess } from './lib/workerd-process.ts'

const ROUNDS = Number(process.env.AB_ROUNDS ?? 4)
const SECONDS = Number(process.env.AB_SECONDS ?? 3)
const CONNECTIONS = Number(process.env.AB_CONNECTIONS ?? 8)
const REPLAY = (process.env.AB_REPLAY ?? 'off,window').split(',')
/** AB_TMPFS=1: Durable Object files on /dev/shm (no fsync cost), to see the CPU alone. */
const STORAGE_ROOT =
  process.env.AB_TMPFS === '1' ? mkdtempSync('/dev/shm/digest-gate-ab-') : undefined

function processCpuMs(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 10
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2
}

async function main(): Promise<void> {
  const configB = process.argv[2]
  const configA = process.argv[3] ?? join(PROJECT_ROOT, 'wrangler.toml')
  if (!configB) throw new Error('usage: node bench/ab.ts <gate wrangler.toml B> [A]')
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-ab-'))
  const stops: (() => Promise<void>)[] = []
  try {
    const secrets = { gate: join(dir, 'gate.env'), authority: join(dir, 'authority.env') }
    const ports = (await freePorts(2 + 2 * REPLAY.length)) as number[]
    const [originPort, authorityPort] = ports as [number, number]
    await prepareStack({
      persistTo: join(dir, 'state'),
      secrets,
      seed: true,
      gatePort: ports[2],
      authorityPort,
      originPort,
    })
    const bundle = (name: string, config: string) => {
      mkdirSync(join(dir, name), { recursive: true })
      return bundleWorker(config, join(dir, name))
    }
    const [origin, authority, gateA, gateB] = await Promise.all([
      bundle('origin', join(PROJECT_ROOT, 'demo-origin', 'wrangler.toml')),
      bundle('authority', join(PROJECT_ROOT, 'authority', 'wrangler.toml')),
      bundle('gate-a', configA),
      bundle('gate-b', configB),
    ])
    const originProcess = await startWorkerd({
      workers: [
        {
          service: 'origin',
          config: join(PROJECT_ROOT, 'demo-origin', 'wrangler.toml'),
          script: origin,
          port: originPort,
        },
      ],
      configFile: join(dir, 'origin.capnp'),
      onLog: () => {},
    })
    stops.push(() => originProcess.stop())
    const authorityWorker = await serveWorker({
      config: join(PROJECT_ROOT, 'authority', 'wrangler.toml'),
      script: authority,
      port: authorityPort,
      persistTo: join(dir, 'state'),
      envFile: secrets.authority,
    })
    stops.push(() => authorityWorker.stop())

    interface Variant {
      name: string
      replay: string
      port: number
      process: WorkerdProcess
      runs: { okRps: number; cpuMsPerRequest: number }[]
    }
    const variants: Variant[] = []
    let next = 2
    for (const replay of REPLAY) {
      for (const [name, config, script] of [
        ['A', configA, gateA],
        ['B', configB, gateB],
      ] as const) {
        const port = ports[next++] as number
        const storage = join(STORAGE_ROOT ?? dir, `do-${name}-${replay}`)
        mkdirSync(storage, { recursive: true })
        const process = await startWorkerd({
          workers: [
            {
              service: 'gate',
              config,
              script,
              port,
              storage,
              vars: {
                ...Object.fromEntries(readDotenv(secrets.gate)),
                ORIGIN_URL: `http://127.0.0.1:${originPort}`,
                AUTHORITY_URL: `http://127.0.0.1:${authorityPort}/v1/verify`,
                REPLAY_MODE: replay,
              },
            },
          ],
          configFile: join(dir, `gate-${name}-${replay}.capnp`),
          onLog: () => {},
        })
        stops.push(() => process.stop())
        variants.push({ name, replay, port, process, runs: [] })
      }
    }

    const runOnce = async (v: Variant, durationMs: number) => {
      const each = Math.ceil((durationMs / 1000 + 0.5) * 4000)
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
      const before = processCpuMs(v.process.pid)
      const r = await runLoadInThread({
        host: '127.0.0.1',
        port: v.port,
        connections: CONNECTIONS,
        queues,
        assignment: 'per-connection',
        repeat: false,
        warmupMs: 500,
        durationMs,
      })
      const cpu = processCpuMs(v.process.pid) - before
      if (r.ok !== r.completed)
        console.log(`  ${v.name} ${v.replay}: ${r.completed - r.ok} non-2xx`)
      return { okRps: (r.ok / r.windowMs) * 1000, cpuMsPerRequest: cpu / Math.max(1, r.sent) }
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
            `round ${round + 1} ${replay} ${v.name}: ${Math.round(run.okRps)} ok/s, gate CPU ${run.cpuMsPerRequest.toFixed(3)} ms/req`
          )
        }
      }
    }
    console.log(`\nA = ${configA}\nB = ${configB}\nmedians over ${ROUNDS} rounds:`)
    for (const replay of REPLAY) {
      const [a, b] = ['A', 'B'].map((n) =>
        variants.find((v) => v.name === n && v.replay === replay)
      ) as [Variant, Variant]
      const cpuA = median(a.runs.map((r) => r.cpuMsPerRequest))
      const cpuB = median(b.runs.map((r) => r.cpuMsPerRequest))
      const rpsA = median(a.runs.map((r) => r.okRps))
      const rpsB = median(b.runs.map((r) => r.okRps))
      console.log(
        `  replay ${replay}: gate CPU A ${cpuA.toFixed(3)} B ${cpuB.toFixed(3)} ms/req (${(((cpuB - cpuA) / cpuA) * 100).toFixed(1)}%), ok/s A ${Math.round(rpsA)} B ${Math.round(rpsB)}`
      )
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
    if (STORAGE_ROOT) rmSync(STORAGE_ROOT, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(`[ab] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
})
