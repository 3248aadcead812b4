/**
 * `npx node bench/perf-rows.ts [gate wrangler.toml]`: `perf record` of one gate's workerd process
 * while it serves its public route (row p) and established sessions (row c, replay off), in turn.
 * Environment: PERF_ROUNDS (2), PERF_SECONDS (3), PERF_REPLAY (off), PERF_OUT (directory for the
 * perf.data files), PERF_V8_FLAGS (default: --max-semi-space-size=8 --perf-basic-prof).
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startWorkerd } from '../scripts/stack/launcher.ts'
import { CONFIGS } from '../scripts/stack/paths.ts'
import { freePorts } from '../scripts/stack/ports.ts'
import { runLoadInThread } from './lib/load.ts'
import { BENCH_PATH, digestSessionRequests, PUBLIC_BENCH_PATH, rawGet } from './lib/requests.ts'
import { BENCH_USER, type ScratchStack, startScratchStack } from './lib/stack.ts'

const ROUNDS = Number(process.env.PERF_ROUNDS ?? 2)
const SECONDS = Number(process.env.PERF_SECONDS ?? 3)
const REPLAY = process.env.PERF_REPLAY ?? 'off'
const OUT = process.env.PERF_OUT ?? '/tmp/perf-rows'
const CONNECTIONS = 8
const V8_FLAGS = (process.env.PERF_V8_FLAGS ?? '--max-semi-space-size=8 --perf-basic-prof')
  .split(' ')
  .filter(Boolean)

function perfRecord(pid: number, file: string, seconds: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      'perf',
      ['record', '-F', '999', '-g', '-p', String(pid), '-o', file, '--', 'sleep', String(seconds)],
      { stdio: ['ignore', 'ignore', 'inherit'] }
    )
    p.on('exit', () => resolve())
    p.on('error', reject)
  })
}

async function main(): Promise<void> {
  const config = process.argv[2] ?? CONFIGS.gate
  mkdirSync(OUT, { recursive: true })
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-perf-'))
  let scratch: ScratchStack | undefined
  try {
    const ports = (await freePorts(3)) as number[]
    scratch = await startScratchStack(
      dir,
      { origin: ports[0] as number, authority: ports[1] as number, gate: ports[2] as number },
      { gate: config }
    )
    const { stack, bundles, start } = scratch
    const port = ports[2] as number
    const gate = await start(
      startWorkerd(
        'gate',
        [
          {
            ...stack.gate,
            config,
            script: bundles.gate,
            port,
            persistTo: join(dir, 'gate'),
            vars: {
              ...stack.gate.vars,
              REPLAY_MODE: REPLAY,
              LOG_LEVEL: process.env.PERF_LOG_LEVEL ?? 'logins',
            },
          },
        ],
        { dir, v8Flags: V8_FLAGS }
      )
    )
    const pid = gate.process().pid as number
    console.log(`gate pid ${pid}`)
    const run = async (row: 'p' | 'c', record?: string) => {
      const durationMs = SECONDS * 1000
      const queues: string[][] = []
      if (row === 'p') {
        for (let i = 0; i < CONNECTIONS; i++) queues.push([rawGet(port, PUBLIC_BENCH_PATH)])
      } else {
        const each = Math.ceil(((durationMs / 1000 + 0.5) * 5000) / CONNECTIONS) + 50
        for (let i = 0; i < CONNECTIONS; i++) {
          queues.push(await digestSessionRequests(port, BENCH_PATH, BENCH_USER, each))
        }
      }
      const recording = record
        ? new Promise((r) => setTimeout(r, 500)).then(() => perfRecord(pid, record, SECONDS - 0.5))
        : undefined
      const r = await runLoadInThread({
        host: '127.0.0.1',
        port,
        connections: CONNECTIONS,
        queues,
        assignment: 'per-connection',
        repeat: row === 'p',
        warmupMs: 500,
        durationMs,
      })
      await recording
      console.log(
        `${row}${record ? ` -> ${record}` : ''}: ${Math.round((r.ok / r.windowMs) * 1000)} ok/s, ${r.completed - r.ok} non-2xx${r.exhausted ? ', ran out' : ''}`
      )
    }
    await run('p')
    await run('c')
    for (let round = 0; round < ROUNDS; round++) {
      for (const row of round % 2 ? (['c', 'p'] as const) : (['p', 'c'] as const)) {
        await run(row, join(OUT, `${row}-${round + 1}.data`))
      }
    }
  } finally {
    await scratch?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  console.error(
    `[perf-rows] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
  )
  process.exit(1)
})
