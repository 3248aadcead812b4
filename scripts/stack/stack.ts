/**
 * The local stack: reference authority, demo origin and gate on 127.0.0.1, sharing one persist
 * directory and one pair of secret files, on one of two backends:
 *   'wrangler-dev'  each worker under `wrangler dev`: live reload (npm start, the end-to-end suite)
 *   'workerd'       the production bundles: origin and gate each on plain workerd, the authority
 *                   on Miniflare for its KV store (npm run serve)
 * A stack is described by a StackPlan (ports, persist directory, secret files) and the WorkerSpecs
 * stackWorkers() derives from it; the bench builds its own stack from the same pieces.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_REALM } from '../../authority/src/store.ts'
import { bundleWorkers } from './bundle.ts'
import {
  type LaunchOutput,
  type RunningWorker,
  startMiniflare,
  startWorkerd,
  startWranglerDev,
  type WorkerSpec,
} from './launcher.ts'
import {
  CONFIGS,
  DEFAULT_PERSIST_TO,
  DEFAULT_PORTS,
  DEMO_ROUTES,
  LOCAL_SERVER_ID,
  PROJECT_SECRETS,
} from './paths.ts'
import { assertPortsFree } from './ports.ts'
import { ensureSecrets, type SecretFiles } from './secrets.ts'
import { seedDemoUsers } from './users-cli.ts'

export type StackBackend = 'wrangler-dev' | 'workerd'

/** Where a stack lives: its ports, its storage and its secrets. */
export interface StackPlan {
  ports: { gate: number; authority: number; origin: number }
  /** Storage of every worker of the stack (`wrangler dev --persist-to` layout). */
  persistTo: string
  secrets: SecretFiles
}

/** What every way of running the stack is given. */
export interface StackBasics {
  gatePort?: number
  authorityPort?: number
  originPort?: number
  /** Default: .wrangler/state in the project (the users CLI's default too). */
  persistTo?: string
  /** Default: .dev.vars and authority/.dev.vars in the project. */
  secrets?: SecretFiles
  /** Create the demo users (default true). */
  seed?: boolean
  /** Called with progress messages (secrets written, users seeded, bundles built). */
  onProgress?: (message: string) => void
}

export interface StackOptions extends StackBasics {
  /** Default 'wrangler-dev'. */
  backend?: StackBackend
  /** Extra `[vars]` overrides for the gate. */
  gateVars?: Record<string, string>
  /** Do not print the workers' output (it still goes to logDir when given). */
  quiet?: boolean
  logDir?: string
  /** Isolate the dev registry of this stack's `wrangler dev`s (tests). */
  registryPath?: string
}

export interface GateOptions {
  /** Output prefix and log file name, e.g. `gate-md5`. */
  name: string
  port: number
  vars?: Record<string, string>
}

export interface Stack {
  readonly persistTo: string
  readonly secrets: SecretFiles
  readonly urls: { gate: string; authority: string; origin: string }
  readonly gate: RunningWorker
  readonly authority: RunningWorker
  readonly origin: RunningWorker
  /** The gate vars that point this stack's gates at its authority and origin. */
  readonly wiringVars: Record<string, string>
  /** Starts another gate on the same authority, origin, secrets and backend (other vars). */
  startGate(options: GateOptions): Promise<RunningWorker>
  /** Resolves with the first worker that ended without the stack's stop() having been called. */
  readonly died: Promise<{ name: string; code: number }>
  /** Stops every worker this stack started (gates first). */
  stop(): Promise<void>
}

/**
 * Storage of an extra gate: its own directory, because two workerd processes must not open the
 * same Durable Object SQLite files (per-user objects would be shared). Gates keep nothing in KV.
 */
export function extraGatePersistTo(persistTo: string, name: string): string {
  return join(persistTo, 'extra-gates', name)
}

/**
 * The local stack's own wiring of the gate: its realm and server identity (which the local token
 * names), the demo routes, the operator's console for the demo group `admin` (alice), where its
 * authority and origin listen, and a decision line for every request (the default, `logins`,
 * leaves out those verified at the edge; the e2e suites read them). Given to every gate the stack
 * starts, over wrangler.toml's [vars], so that editing wrangler.toml for a deployment never
 * changes what `npm start` runs.
 */
export function wiringVars(ports: { authority: number; origin: number }): Record<string, string> {
  return {
    REALM: DEFAULT_REALM,
    SERVER_ID: LOCAL_SERVER_ID,
    ROUTES: DEMO_ROUTES,
    CONSOLE_GROUP: 'admin',
    ORIGIN_URL: `http://127.0.0.1:${ports.origin}`,
    AUTHORITY_URL: `http://127.0.0.1:${ports.authority}/v1/verify`,
    LOG_LEVEL: 'all',
  }
}

/**
 * Checks the ports are free, writes missing secrets and seeds the demo users: what every stack
 * does before starting anything.
 */
export async function prepareStack(options: StackBasics = {}): Promise<StackPlan> {
  const plan: StackPlan = {
    ports: {
      gate: options.gatePort ?? DEFAULT_PORTS.gate,
      authority: options.authorityPort ?? DEFAULT_PORTS.authority,
      origin: options.originPort ?? DEFAULT_PORTS.origin,
    },
    persistTo: options.persistTo ?? DEFAULT_PERSIST_TO,
    secrets: options.secrets ?? PROJECT_SECRETS,
  }
  await assertPortsFree(plan.ports)
  mkdirSync(plan.persistTo, { recursive: true })
  const written = await ensureSecrets(plan.secrets, LOCAL_SERVER_ID)
  for (const line of written) options.onProgress?.(`generated local secrets: ${line}`)
  if (options.seed ?? true) {
    const output = await seedDemoUsers({ persistTo: plan.persistTo })
    if (output.trim() !== '') options.onProgress?.(output.trim())
  }
  return plan
}

/**
 * Where a gate is probed until it answers: its admin endpoint, whose bearer check answers 401
 * without a decision (every stack's secrets set ADMIN_TOKEN). A probe of any other path would log
 * a decision, racing the tests and the bench that count them.
 */
export const GATE_READY_PATH = '/.digest-gate/admin'

/** A gate of the stack: its secrets and storage, wired to the stack's authority and origin. */
export function gateWorker(
  plan: StackPlan,
  gate: GateOptions,
  persistTo: string = extraGatePersistTo(plan.persistTo, gate.name)
): WorkerSpec {
  return {
    name: gate.name,
    config: CONFIGS.gate,
    port: gate.port,
    persistTo,
    envFile: plan.secrets.gate,
    vars: { ...wiringVars(plan.ports), ...gate.vars },
    readyPath: GATE_READY_PATH,
  }
}

/** The stack's three workers, whatever runs them. */
export function stackWorkers(plan: StackPlan, gateVars: Record<string, string> = {}) {
  return {
    authority: {
      name: 'authority',
      config: CONFIGS.authority,
      port: plan.ports.authority,
      persistTo: plan.persistTo,
      envFile: plan.secrets.authority,
    },
    origin: {
      name: 'origin',
      config: CONFIGS.origin,
      port: plan.ports.origin,
      persistTo: plan.persistTo,
      // The gate whose published keys verify the assertion (demo-origin/src/assertion.ts).
      vars: { GATE_URL: `http://127.0.0.1:${plan.ports.gate}` },
    },
    gate: gateWorker(plan, { name: 'gate', port: plan.ports.gate, vars: gateVars }, plan.persistTo),
  } satisfies Record<string, WorkerSpec>
}

/** Starts one worker of the stack on its backend; `script` is its bundle (workerd only). */
type Starter = (spec: WorkerSpec, bundle: 'authority' | 'origin' | 'gate') => Promise<RunningWorker>

async function starter(
  backend: StackBackend,
  options: StackOptions,
  cleanups: (() => void)[]
): Promise<Starter> {
  const output: LaunchOutput = { print: !options.quiet, logDir: options.logDir }
  if (backend === 'wrangler-dev') {
    return (spec) => startWranglerDev(spec, { ...output, registryPath: options.registryPath })
  }
  const dir = mkdtempSync(join(tmpdir(), 'digest-gate-serve-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  const scripts = await bundleWorkers(join(dir, 'bundles'), CONFIGS)
  options.onProgress?.('bundled the workers (wrangler deploy --dry-run)')
  return (spec, bundle) => {
    const worker = { ...spec, script: scripts[bundle] }
    // Only the authority has KV, which plain workerd cannot serve.
    return bundle === 'authority'
      ? startMiniflare(worker, output)
      : startWorkerd(spec.name, [worker], { ...output, dir })
  }
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const backend = options.backend ?? 'wrangler-dev'
  const plan = await prepareStack(options)
  const workers = stackWorkers(plan, options.gateVars)
  const cleanups: (() => void)[] = []
  const started: RunningWorker[] = []
  let stopping = false
  let reportDeath: (death: { name: string; code: number }) => void = () => {}
  const died = new Promise<{ name: string; code: number }>((resolve) => {
    reportDeath = resolve
  })
  const watch = (worker: RunningWorker) => {
    const child = worker.process()
    child.exited.then((code) => {
      // A restart replaces the process: only the current one's death counts.
      if (!stopping && worker.process() === child) reportDeath({ name: worker.name, code })
    })
  }
  const stop = async () => {
    stopping = true
    for (const worker of [...started].reverse()) await worker.stop()
    for (const cleanup of cleanups) cleanup()
  }
  try {
    const startOne = await starter(backend, options, cleanups)
    const start = async (spec: WorkerSpec, bundle: 'authority' | 'origin' | 'gate') => {
      const worker = await startOne(spec, bundle)
      started.push(worker)
      if (stopping) {
        // stop() ran while this one was booting: do not leave it behind.
        await worker.stop()
        throw new Error(`stack stopped while ${spec.name} was starting`)
      }
      watch(worker)
      const restart = worker.restart
      return Object.assign(worker, {
        async restart() {
          await restart()
          watch(worker)
        },
      })
    }
    // One at a time: two cores, and each wrangler dev is CPU-heavy while it bundles and boots.
    const authority = await start(workers.authority, 'authority')
    const origin = await start(workers.origin, 'origin')
    const gate = await start(workers.gate, 'gate')
    return {
      persistTo: plan.persistTo,
      secrets: plan.secrets,
      urls: { gate: gate.url, authority: authority.url, origin: origin.url },
      gate,
      authority,
      origin,
      wiringVars: wiringVars(plan.ports),
      startGate: async (gate) => {
        await assertPortsFree({ [gate.name]: gate.port })
        const vars = { ...options.gateVars, ...gate.vars }
        return start(gateWorker(plan, { ...gate, vars }), 'gate')
      },
      died,
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}
