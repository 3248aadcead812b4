/**
 * The local stack under `wrangler dev`: reference authority, demo origin and gate, each in its own
 * `wrangler dev` on 127.0.0.1, sharing one persist directory. Used by `npm start` and by the
 * end-to-end tests (other ports, a temporary persist directory and secrets of their own).
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  CONFIGS,
  DEFAULT_PERSIST_TO,
  DEFAULT_PORTS,
  LOCAL_SERVER_ID,
  PROJECT_SECRETS,
} from './stack-paths.ts'
import { assertPortsFree } from './stack-ports.ts'
import { ensureSecrets, type SecretFiles } from './stack-secrets.ts'
import { seedDemoUsers } from './stack-users.ts'
import {
  type RunningWorker,
  type StackOutput,
  startWranglerDev,
  type WorkerSpec,
} from './stack-wrangler-dev.ts'

export interface StackOptions extends StackBasics {
  /** Extra `[vars]` overrides for the gate. */
  gateVars?: Record<string, string>
  /** Do not print the children's output (it still goes to logDir when given). */
  quiet?: boolean
  logDir?: string
  /** Isolate the dev registry of this stack (tests). */
  registryPath?: string
}

export interface GateOptions {
  /** Output prefix and log file name, e.g. `gate-md5`. */
  name: string
  port: number
  vars?: Record<string, string>
}

/**
 * Storage of an extra gate: its own directory, because two workerd processes must not open the
 * same Durable Object SQLite files (per-user objects would be shared). Gates keep nothing in KV.
 */
export function extraGatePersistTo(persistTo: string, name: string): string {
  return join(persistTo, 'extra-gates', name)
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
  /** Starts another gate on the same authority, origin, store and secrets (other vars). */
  startGate(options: GateOptions): Promise<RunningWorker>
  /** Resolves with the first child that ended without stop() having been called. */
  readonly died: Promise<{ name: string; code: number }>
  /** Stops every worker this stack started (gates first). */
  stop(): Promise<void>
}

/** The gate's ORIGIN_URL/AUTHORITY_URL for these ports, or {} when they are wrangler.toml's. */
export function wiringVars(ports: { authority: number; origin: number }): Record<string, string> {
  if (ports.authority === DEFAULT_PORTS.authority && ports.origin === DEFAULT_PORTS.origin)
    return {}
  return {
    ORIGIN_URL: `http://127.0.0.1:${ports.origin}`,
    AUTHORITY_URL: `http://127.0.0.1:${ports.authority}/v1/verify`,
  }
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
  /** Called with progress messages (secrets written, users seeded). */
  onProgress?: (message: string) => void
}

/**
 * Checks the ports are free, writes missing secrets and seeds the demo users: what `npm start`
 * and `npm run serve` do before starting anything.
 */
export async function prepareStack(options: StackBasics) {
  const ports = {
    gate: options.gatePort ?? DEFAULT_PORTS.gate,
    authority: options.authorityPort ?? DEFAULT_PORTS.authority,
    origin: options.originPort ?? DEFAULT_PORTS.origin,
  }
  const persistTo = options.persistTo ?? DEFAULT_PERSIST_TO
  const secrets = options.secrets ?? PROJECT_SECRETS
  await assertPortsFree(ports)
  mkdirSync(persistTo, { recursive: true })
  const written = await ensureSecrets(secrets, LOCAL_SERVER_ID)
  for (const line of written) options.onProgress?.(`generated local secrets: ${line}`)
  if (options.seed ?? true) {
    const output = await seedDemoUsers({ persistTo })
    if (output.trim() !== '') options.onProgress?.(output.trim())
  }
  return { ports, persistTo, secrets }
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const { ports, persistTo, secrets } = await prepareStack(options)
  if (options.logDir) mkdirSync(options.logDir, { recursive: true })
  const output: StackOutput = {
    print: !options.quiet,
    logDir: options.logDir,
    registryPath: options.registryPath,
  }

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
      if (!stopping && worker.process() === child) reportDeath({ name: worker.spec.name, code })
    })
  }
  const start = async (spec: WorkerSpec) => {
    const worker = await startWranglerDev(spec, output)
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
  const stop = async () => {
    stopping = true
    for (const worker of [...started].reverse()) await worker.stop()
  }

  const wiring = wiringVars(ports)
  const gateSpec = (gate: GateOptions, gatePersistTo: string): WorkerSpec => ({
    name: gate.name,
    config: CONFIGS.gate,
    port: gate.port,
    persistTo: gatePersistTo,
    envFile: secrets.gate,
    vars: { ...wiring, ...options.gateVars, ...gate.vars },
  })
  try {
    // Sequential: two cores, and each wrangler dev is CPU-heavy while it bundles and boots.
    const authority = await start({
      name: 'authority',
      config: CONFIGS.authority,
      port: ports.authority,
      persistTo,
      envFile: secrets.authority,
    })
    const origin = await start({
      name: 'origin',
      config: CONFIGS.origin,
      port: ports.origin,
      persistTo,
    })
    const gate = await start(gateSpec({ name: 'gate', port: ports.gate }, persistTo))
    return {
      persistTo,
      secrets,
      urls: { gate: gate.url, authority: authority.url, origin: origin.url },
      gate,
      authority,
      origin,
      wiringVars: wiring,
      startGate: async (gateOptions) => {
        await assertPortsFree({ [gateOptions.name]: gateOptions.port })
        return start(gateSpec(gateOptions, extraGatePersistTo(persistTo, gateOptions.name)))
      },
      died,
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}
