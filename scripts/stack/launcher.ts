/**
 * Starting workers, waiting until they answer, stopping and restarting them: the one place that
 * knows how `npm start`, `npm run serve`, the end-to-end suite and the bench run a worker.
 *
 *   startWranglerDev  one worker under `wrangler dev`: live reload, local KV and Durable Object
 *                     persistence, the dev registry (npm start, the end-to-end suite)
 *   startWorkerd      bundled workers on plain `workerd serve`, one socket each, no proxy and no
 *                     interceptor: as deployed (npm run serve, the bench)
 *   startMiniflare    a bundled worker with KV bindings on Miniflare, which plain workerd cannot
 *                     serve (the reference authority behind npm run serve and the bench)
 *   launch            any server program (the three above; the bench's Apache)
 *
 * Each is a child process group of its own (stop() takes down what it started), counted as
 * started once every URL it serves answers HTTP with any status.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { childEnv, PROJECT_ROOT, WRANGLER_CLI } from './paths.ts'
import { freePort } from './ports.ts'
import { type ManagedProcess, type OutputOptions, spawnManaged } from './process.ts'
import { readDotenv } from './secrets.ts'
import { type WorkerdOptions, workerdConfig } from './workerd-config.ts'

export interface WorkerSpec {
  /** Output prefix, log file name and workerd service name: gate, authority, origin, gate-md5… */
  name: string
  /** Path of the worker's wrangler.toml. */
  config: string
  port: number
  /**
   * Local storage, laid out as `wrangler dev --persist-to` lays it out (`<dir>/v3/do`,
   * `<dir>/v3/kv`), whatever the backend: the users CLI and every backend see one store.
   */
  persistTo?: string
  /** Dotenv file of the worker's secrets. */
  envFile?: string
  /** Overrides of the config's `[vars]` (and of the secrets). */
  vars?: Record<string, string>
  /** The bundle to run (bundleWorkers' output): workerd and Miniflare only. */
  script?: string
  /** Path that must answer (any status) before the worker counts as started; default `/`. */
  readyPath?: string
}

export interface LaunchOutput {
  /** Print the workers' output, prefixed with their names. */
  print?: boolean
  /** Directory for one log file per launched process (`<name>.log`). */
  logDir?: string
  /** Every output line (workerd's structured logs as text). */
  onLine?: (line: string) => void
}

export interface RunningWorker {
  readonly name: string
  /** Base URL (of the first worker, for a workerd process serving several): its origin. */
  readonly url: string
  /** The current process (replaced by restart()). */
  process(): ManagedProcess
  stop(): Promise<void>
  /** Stops it if it runs, starts it again as before (same ports, same storage), waits for it. */
  restart(): Promise<void>
}

/** How to start a server program: resolved again at each (re)start. */
export interface Command {
  command: string
  args: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Rewrites each output line before it is printed, logged or handed on. */
  readLine?: (line: string) => string
}

/** Generous: two cores shared with other work, and `wrangler dev` bundles before it answers. */
const READY_TIMEOUT_MS = 90_000

const readyUrl = (spec: WorkerSpec) => `http://127.0.0.1:${spec.port}${spec.readyPath ?? '/'}`

/**
 * Polls `url` until it answers with any HTTP status. Rejects when `timeoutMs` passes or when
 * `child` ends first (with its last output, which usually says why).
 */
export async function waitForHttp(
  url: string,
  options: { timeoutMs: number; process?: ManagedProcess }
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  const child = options.process
  while (Date.now() < deadline) {
    if (child && !child.running()) {
      throw new Error(`${child.name} exited before answering ${url}:\n${child.recentOutput()}`)
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
      await response.arrayBuffer()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  const output = child ? `\n${child.recentOutput()}` : ''
  throw new Error(`no answer from ${url} within ${options.timeoutMs} ms${output}`)
}

/** Starts `name` from `command()` and waits until each of `readyUrls` answers. */
export async function launch(
  name: string,
  readyUrls: string[],
  command: () => Command | Promise<Command>,
  output: LaunchOutput = {}
): Promise<RunningWorker> {
  if (output.logDir) mkdirSync(output.logDir, { recursive: true })
  const spawnOutput: OutputOptions = {
    print: output.print,
    logFile: output.logDir ? join(output.logDir, `${name}.log`) : undefined,
    onLine: output.onLine,
  }
  const start = async () => {
    const c = await command()
    const child = spawnManaged(name, c.command, c.args, {
      cwd: c.cwd ?? PROJECT_ROOT,
      env: c.env ?? childEnv(),
      output: spawnOutput,
      readLine: c.readLine,
    })
    try {
      for (const url of readyUrls)
        await waitForHttp(url, { timeoutMs: READY_TIMEOUT_MS, process: child })
    } catch (error) {
      await child.stop()
      throw error
    }
    return child
  }
  let current = await start()
  return {
    name,
    url: readyUrls[0] === undefined ? '' : new URL(readyUrls[0]).origin,
    process: () => current,
    stop: () => current.stop(),
    async restart() {
      await current.stop()
      current = await start()
    },
  }
}

/**
 * `inspectorPort`: wrangler's default (9229, or the next free one) races when several `wrangler
 * dev` start at once ("Address already in use (socket direct:1:default)"), so each gets its own.
 */
export function wranglerDevArgs(spec: WorkerSpec, inspectorPort: number): string[] {
  const args = [
    WRANGLER_CLI,
    'dev',
    '-c',
    spec.config,
    '--port',
    String(spec.port),
    '--ip',
    '127.0.0.1',
    '--inspector-port',
    String(inspectorPort),
    '--show-interactive-dev-session=false',
  ]
  if (spec.persistTo) args.push('--persist-to', spec.persistTo)
  if (spec.envFile) args.push('--env-file', spec.envFile)
  for (const [name, value] of Object.entries(spec.vars ?? {})) {
    args.push('--var', `${name}:${value}`)
  }
  return args
}

export function startWranglerDev(
  spec: WorkerSpec,
  output: LaunchOutput & {
    /** Isolates this stack's dev registry (WRANGLER_REGISTRY_PATH) from other `wrangler dev`s. */
    registryPath?: string
  } = {}
): Promise<RunningWorker> {
  const env: Record<string, string> = {}
  if (output.registryPath) env.WRANGLER_REGISTRY_PATH = output.registryPath
  if (!output.print) env.NO_COLOR = '1'
  return launch(
    spec.name,
    [readyUrl(spec)],
    async () => ({
      command: process.execPath,
      args: wranglerDevArgs(spec, await freePort()),
      env: childEnv(env),
    }),
    output
  )
}

/** The workerd binary of the Miniflare that this project's wrangler runs. */
export function workerdBinary(): string {
  const fromWrangler = createRequire(import.meta.resolve('wrangler'))
  const fromMiniflare = createRequire(fromWrangler.resolve('miniflare'))
  const main = fromMiniflare('workerd') as { default?: string } | string
  return typeof main === 'string' ? main : (main.default ?? '')
}

function requireScript(spec: WorkerSpec): string {
  if (!spec.script) throw new Error(`${spec.name}: no bundle (script) to run`)
  return spec.script
}

/** The worker's text bindings: its secrets, then its var overrides (the config's come first). */
function bindingsOf(spec: WorkerSpec): Record<string, string> {
  const secrets = spec.envFile ? Object.fromEntries(readDotenv(spec.envFile)) : {}
  return { ...secrets, ...spec.vars }
}

/** workerd's structured log line as text: the message, with its level when it is not routine. */
export function structuredLogText(line: string): string {
  if (!line.startsWith('{')) return line
  try {
    const log = JSON.parse(line) as { level?: unknown; message?: unknown }
    if (typeof log.message !== 'string') return line
    return log.level === 'warn' || log.level === 'error'
      ? `${log.level}: ${log.message}`
      : log.message
  } catch {
    return line
  }
}

/**
 * One `workerd serve` process named `name` for `specs` (each on its own socket). Its
 * configuration, secrets included, is written to `<dir>/<name>.capnp` (mode 0600).
 */
export function startWorkerd(
  name: string,
  specs: WorkerSpec[],
  output: LaunchOutput & {
    dir: string
    /** Opens V8's inspector on this port (bench/profile.ts). */
    inspectorPort?: number
  } & WorkerdOptions
): Promise<RunningWorker> {
  const configFile = join(output.dir, `${name}.capnp`)
  const services = specs.map((spec) => ({
    service: spec.name,
    config: spec.config,
    script: requireScript(spec),
    port: spec.port,
    vars: bindingsOf(spec),
    durableObjectsDir: spec.persistTo ? join(spec.persistTo, 'v3', 'do') : undefined,
  }))
  for (const service of services) {
    if (service.durableObjectsDir) mkdirSync(service.durableObjectsDir, { recursive: true })
  }
  writeFileSync(configFile, workerdConfig(services, output.dir, output), { mode: 0o600 })
  const args = ['serve', configFile]
  if (output.inspectorPort) args.push(`--inspector-addr=127.0.0.1:${output.inspectorPort}`)
  return launch(
    name,
    specs.map(readyUrl),
    () => ({ command: workerdBinary(), args, cwd: output.dir, readLine: structuredLogText }),
    output
  )
}

const MINIFLARE_HOST = join(import.meta.dirname, 'miniflare-host.ts')

/** What scripts/stack/miniflare-host.ts is given (on its command line: no secrets, paths only). */
export interface MiniflarePlan {
  config: string
  script: string
  port: number
  persistTo?: string
  envFile?: string
  vars: Record<string, string>
}

export function startMiniflare(
  spec: WorkerSpec,
  output: LaunchOutput = {}
): Promise<RunningWorker> {
  const plan: MiniflarePlan = {
    config: spec.config,
    script: requireScript(spec),
    port: spec.port,
    persistTo: spec.persistTo,
    envFile: spec.envFile,
    vars: spec.vars ?? {},
  }
  return launch(
    spec.name,
    [readyUrl(spec)],
    () => ({ command: process.execPath, args: [MINIFLARE_HOST, JSON.stringify(plan)] }),
    output
  )
}
