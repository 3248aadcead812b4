/**
 * Child processes: programs run to completion with their output collected (runProgram), and
 * long-running ones (spawnManaged) in a process group of their own, so that stopping one also
 * stops what it started (wrangler dev's workerd, Miniflare's), with their output handed on line
 * by line and a last-resort cleanup when this process exits.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { appendFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface RunOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Written to the program's stdin, which is then closed. */
  input?: string
  /** Killed (SIGKILL) after this long. Default: no limit. */
  timeoutMs?: number
}

/** Runs a program to completion and collects its output (no shell involved). */
export function runProgram(
  command: string,
  args: string[],
  options: RunOptions = {}
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`${command}: ${error.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })
    })
    child.stdin.end(options.input ?? '')
  })
}

export interface OutputOptions {
  /** Print each output line to this process's stdout, prefixed with the child's name. */
  print?: boolean
  /** Also append every line (unprefixed) to this file. */
  logFile?: string
  /** Also hand every line to this callback. */
  onLine?: (line: string) => void
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

export interface SpawnOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  output: OutputOptions
  /** Rewrites each raw output line before it is handed on (e.g. structured logs to text). */
  readLine?: (line: string) => string
}

const COLOURS = [36, 35, 33, 32, 34, 31]
const RECENT_LINES = 80
const live = new Set<number>()
let cleanupInstalled = false
let colourIndex = 0

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

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions
): ManagedProcess {
  installExitCleanup()
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${command}`)
  const pid = child.pid
  live.add(pid)
  const colour = COLOURS[colourIndex++ % COLOURS.length]
  const prefix = process.stdout.isTTY ? `\x1b[${colour}m[${name}]\x1b[0m ` : `[${name}] `
  const { print, logFile, onLine: listener } = options.output
  const recent: string[] = []
  const onLine = (raw: string) => {
    const line = options.readLine ? options.readLine(raw) : raw
    recent.push(line)
    if (recent.length > RECENT_LINES) recent.shift()
    if (print) process.stdout.write(`${prefix}${line}\n`)
    if (logFile) appendFileSync(logFile, `${line}\n`)
    listener?.(line)
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
