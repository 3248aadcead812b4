/**
 * One worker under `wrangler dev` (the real dev server, with its proxy and live reload), started
 * and awaited until it answers HTTP, with a handle to stop or restart it on the same port.
 */
import { join } from 'node:path'
import { childEnv, PROJECT_ROOT, WRANGLER_CLI } from './stack-paths.ts'
import { freePort } from './stack-ports.ts'
import { type ManagedProcess, spawnManaged, waitForHttp } from './stack-process.ts'

export interface WorkerSpec {
  /** Short name used as the output prefix and log file name: gate, authority, origin, gate-md5… */
  name: string
  /** Path of the worker's wrangler.toml. */
  config: string
  port: number
  /** Directory of local storage (DO SQLite, KV), shared by every worker of a stack. */
  persistTo: string
  /** Dotenv file with the worker's secrets; none for the demo origin. */
  envFile?: string
  /** `[vars]` overrides, passed as `--var NAME:value`. */
  vars?: Record<string, string>
  /** Path that must answer before the worker counts as started (any status). */
  readyPath?: string
}

export interface StackOutput {
  /** Print children's output, prefixed with their names. */
  print: boolean
  /** Directory for one log file per worker (`<name>.log`). */
  logDir?: string
  /** Isolates this stack's dev registry (WRANGLER_REGISTRY_PATH) from other `wrangler dev`s. */
  registryPath?: string
}

export interface RunningWorker {
  readonly spec: WorkerSpec
  readonly url: string
  /** The current process (replaced by restart()). */
  process(): ManagedProcess
  stop(): Promise<void>
  /** Stops the worker if it runs, starts it again with the same spec, waits until it answers. */
  restart(): Promise<void>
}

const READY_TIMEOUT_MS = 90_000

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
    '--persist-to',
    spec.persistTo,
    '--show-interactive-dev-session=false',
  ]
  if (spec.envFile) args.push('--env-file', spec.envFile)
  for (const [name, value] of Object.entries(spec.vars ?? {}))
    args.push('--var', `${name}:${value}`)
  return args
}

async function launch(spec: WorkerSpec, output: StackOutput): Promise<ManagedProcess> {
  const env: NodeJS.ProcessEnv = {}
  if (output.registryPath) env.WRANGLER_REGISTRY_PATH = output.registryPath
  if (!output.print) env.NO_COLOR = '1'
  const inspectorPort = await freePort()
  const child = spawnManaged(spec.name, process.execPath, wranglerDevArgs(spec, inspectorPort), {
    cwd: PROJECT_ROOT,
    env: childEnv(env),
    output: {
      print: output.print,
      logFile: output.logDir ? join(output.logDir, `${spec.name}.log`) : undefined,
    },
  })
  try {
    await waitForHttp(`http://127.0.0.1:${spec.port}${spec.readyPath ?? '/'}`, {
      timeoutMs: READY_TIMEOUT_MS,
      process: child,
    })
  } catch (error) {
    await child.stop()
    throw error
  }
  return child
}

export async function startWranglerDev(
  spec: WorkerSpec,
  output: StackOutput
): Promise<RunningWorker> {
  let current = await launch(spec, output)
  return {
    spec,
    url: `http://127.0.0.1:${spec.port}`,
    process: () => current,
    stop: () => current.stop(),
    async restart() {
      await current.stop()
      current = await launch(spec, output)
    },
  }
}
