/**
 * Child processes for the local stack: spawned in their own process group (so that stopping one
 * also stops the workerd it started), output prefixed line by line with the child's name, and a
 * last-resort cleanup when this process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

export interface OutputOptions {
  /** Print each output line to this process's stdout, prefixed with the child's name. */
  print: boolean
  /** Also append every line (unprefixed) to this file. */
  logFile?: string
}

export interface ManagedProcess {
  readonly name: string
  readonly pid: number
  /** Resolves with the exit code (128 + n when killed by a signal) once the child has ended. */
  readonly exited: Promise<number>
  /** True until the child has ended. */
  running(): boolean
  /** The last lines of output, for error messages when a child fails to start. */
  recentOutput(): string
  /** SIGTERM to the child's process group, SIGKILL after `graceMs`; resolves once it has ended. */
  stop(graceMs?: number): Promise<void>
}

const COLOURS = [36, 35, 33, 32, 34, 31]
const RECENT_LINES = 80
const live = new Set<number>()
let cleanupInstalled = false

/** Kills every still-running child group when this process exits, however it exits (but SIGKILL). */
function installExitCleanup(): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  process.on('exit', () => {
    for (const pid of live) killGroup(pid, 'SIGKILL')
  })
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }
  return 128 + ((signal && numbers[signal]) || 1)
}

let colourIndex = 0

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; output: OutputOptions }
): ManagedProcess {
  installExitCleanup()
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`)
  const pid = child.pid
  live.add(pid)
  const colour = COLOURS[colourIndex++ % COLOURS.length]
  const prefix = process.stdout.isTTY ? `\x1b[${colour}m[${name}]\x1b[0m ` : `[${name}] `
  const recent: string[] = []
  const onLine = (line: string) => {
    recent.push(line)
    if (recent.length > RECENT_LINES) recent.shift()
    if (options.output.print) process.stdout.write(`${prefix}${line}\n`)
    if (options.output.logFile) appendFileSync(options.output.logFile, `${line}\n`)
  }
  for (const stream of [child.stdout, child.stderr]) {
    if (stream)
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', onLine)
  }
  let ended = false
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => {
      ended = true
      live.delete(pid)
      // The group may still hold a workerd grandchild: take it down with its parent.
      killGroup(pid, 'SIGKILL')
      resolve(code ?? signalNumber(signal))
    })
    child.on('error', (error) => {
      onLine(`spawn error: ${error.message}`)
      ended = true
      live.delete(pid)
      resolve(127)
    })
  })
  return {
    name,
    pid,
    exited,
    running: () => !ended,
    recentOutput: () => recent.join('\n'),
    async stop(graceMs = 5000) {
      if (ended) return
      killGroup(pid, 'SIGTERM')
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

/**
 * Polls `url` until it answers with any HTTP status. Rejects when `timeoutMs` passes or when
 * `process` ends first (with its last output, which usually says why).
 */
export async function waitForHttp(
  url: string,
  options: { timeoutMs: number; process?: ManagedProcess }
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  while (Date.now() < deadline) {
    if (options.process && !options.process.running()) {
      throw new Error(
        `${options.process.name} exited before answering ${url}:\n${options.process.recentOutput()}`
      )
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
      await response.arrayBuffer()
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  const output = options.process ? `\n${options.process.recentOutput()}` : ''
  throw new Error(`no answer from ${url} within ${options.timeoutMs} ms${output}`)
}
