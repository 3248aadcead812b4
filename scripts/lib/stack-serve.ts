/**
 * The local stack on plain workerd, for measurements: each worker's production bundle (what
 * `wrangler deploy` would upload) runs in its own Miniflare/workerd process, reached through a
 * socket bound directly to the worker. No `wrangler dev` proxy, no live reload, no bundling on
 * requests. Storage is the same `<persistTo>/v3` layout that `wrangler dev` and the users CLI use,
 * so users seeded by the CLI are visible and the gate's Durable Objects carry over.
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Log, Miniflare, MiniflareOptions, WorkerOptions } from 'miniflare'
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler'
import { runProgram } from './run-program.ts'
import { CONFIGS, childEnv, PROJECT_ROOT, WRANGLER_CLI } from './stack-paths.ts'
import { assertPortsFree } from './stack-ports.ts'
import { readDotenv } from './stack-secrets.ts'
import { extraGatePersistTo, prepareStack, type StackBasics, wiringVars } from './stack-start.ts'

export interface ServeOptions extends StackBasics {
  /** Extra `[vars]` overrides for the gate (e.g. ALGORITHMS, REPLAY_MODE for a benchmark). */
  gateVars?: Record<string, string>
  /** Print workerd's output (console.log of the workers); default false. */
  verbose?: boolean
}

export interface ServedWorker {
  readonly name: string
  readonly url: string
  stop(): Promise<void>
}

export interface ServedStack {
  readonly urls: { gate: string; authority: string; origin: string }
  readonly gate: ServedWorker
  readonly authority: ServedWorker
  readonly origin: ServedWorker
  /** Serves another gate from the same bundle on `port` with other vars (same store). */
  startGate(options: {
    name: string
    port: number
    vars?: Record<string, string>
  }): Promise<ServedWorker>
  stop(): Promise<void>
}

/** The parts of Miniflare used here. */
interface MiniflareModule {
  Miniflare: new (options: unknown) => Miniflare
  /** Converts the flat options (as in Miniflare's README) to the constructor's current shape. */
  convertV4MiniflareOptions(options: MiniflareOptions): unknown
  NoOpLog: new () => Log
}

/**
 * The Miniflare that this project's wrangler runs (same workerd, same storage format), rather
 * than whichever copy npm hoisted to the top of node_modules.
 */
async function loadMiniflare(): Promise<MiniflareModule> {
  const fromWrangler = createRequire(import.meta.resolve('wrangler'))
  const entry = fromWrangler.resolve('miniflare')
  return (await import(pathToFileURL(entry).href)) as MiniflareModule
}

/** `wrangler deploy --dry-run --outdir`: the bundle wrangler would upload. */
export async function bundleWorker(config: string, outdir: string): Promise<string> {
  const result = await runProgram(
    process.execPath,
    [WRANGLER_CLI, 'deploy', '--dry-run', '--outdir', outdir, '-c', config],
    { cwd: PROJECT_ROOT, env: childEnv({ NO_COLOR: '1' }) }
  )
  if (result.code !== 0) {
    throw new Error(
      `bundling ${config} failed (exit ${result.code}):\n${result.stdout}${result.stderr}`
    )
  }
  return join(outdir, 'index.js')
}

interface WorkerPlan {
  name: string
  config: string
  port: number
  script: string
  bindings: Record<string, string>
  persistTo: string
}

function workerOptions(plan: WorkerPlan): WorkerOptions {
  const fromConfig = unstable_getMiniflareWorkerOptions(plan.config).workerOptions
  const { name } = unstable_readConfig({ config: plan.config })
  return {
    ...(fromConfig as WorkerOptions),
    // The deployed name: Durable Object storage is keyed by it, as under wrangler dev.
    name,
    modules: [{ type: 'ESModule', path: plan.script }],
    modulesRoot: join(plan.script, '..'),
    bindings: { ...(fromConfig.bindings as Record<string, string>), ...plan.bindings },
    unsafeDirectSockets: [{ host: '127.0.0.1', port: plan.port }],
  } as WorkerOptions
}

async function serveWorker(
  miniflare: MiniflareModule,
  plan: WorkerPlan,
  verbose: boolean
): Promise<ServedWorker> {
  const options = {
    // Miniflare's own entry socket (routing, cf object) is not used: any free port.
    host: '127.0.0.1',
    port: 0,
    resourcePersistencePath: join(plan.persistTo, 'v3'),
    ...(verbose
      ? {}
      : { log: new miniflare.NoOpLog(), handleStructuredLogs: () => {}, logRequests: false }),
    workers: [workerOptions(plan)],
  } as MiniflareOptions
  const mf = new miniflare.Miniflare(miniflare.convertV4MiniflareOptions(options))
  await mf.ready
  return {
    name: plan.name,
    url: `http://127.0.0.1:${plan.port}`,
    stop: () => mf.dispose(),
  }
}

function secretBindings(file: string): Record<string, string> {
  return Object.fromEntries(readDotenv(file))
}

export async function serveStack(options: ServeOptions = {}): Promise<ServedStack> {
  const { ports, persistTo, secrets } = await prepareStack(options)
  const verbose = options.verbose ?? false

  const bundles = mkdtempSync(join(tmpdir(), 'digest-gate-serve-'))
  const script = async (name: string, config: string) => {
    const outdir = join(bundles, name)
    mkdirSync(outdir)
    return bundleWorker(config, outdir)
  }
  const scripts = {
    authority: await script('authority', CONFIGS.authority),
    origin: await script('origin', CONFIGS.origin),
    gate: await script('gate', CONFIGS.gate),
  }
  options.onProgress?.(`bundled the workers in ${bundles}`)

  const miniflare = await loadMiniflare()
  const served: ServedWorker[] = []
  const serve = async (plan: WorkerPlan) => {
    const worker = await serveWorker(miniflare, plan, verbose)
    served.push(worker)
    return worker
  }
  const stop = async () => {
    for (const worker of [...served].reverse()) await worker.stop()
    rmSync(bundles, { recursive: true, force: true })
  }
  const gateBindings = (vars: Record<string, string> = {}) => ({
    ...secretBindings(secrets.gate),
    ...wiringVars(ports),
    ...options.gateVars,
    ...vars,
  })
  try {
    const authority = await serve({
      name: 'authority',
      config: CONFIGS.authority,
      port: ports.authority,
      script: scripts.authority,
      persistTo,
      bindings: secretBindings(secrets.authority),
    })
    const origin = await serve({
      name: 'origin',
      config: CONFIGS.origin,
      port: ports.origin,
      script: scripts.origin,
      persistTo,
      bindings: {},
    })
    const gate = await serve({
      name: 'gate',
      config: CONFIGS.gate,
      port: ports.gate,
      script: scripts.gate,
      persistTo,
      bindings: gateBindings(),
    })
    return {
      urls: { gate: gate.url, authority: authority.url, origin: origin.url },
      gate,
      authority,
      origin,
      startGate: async (gate) => {
        await assertPortsFree({ [gate.name]: gate.port })
        return serve({
          name: gate.name,
          config: CONFIGS.gate,
          port: gate.port,
          script: scripts.gate,
          persistTo: extraGatePersistTo(persistTo, gate.name),
          bindings: gateBindings(gate.vars),
        })
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}
