/**
 * One `workerd serve` process for a generated configuration: the binary that this project's
 * wrangler bundles, its console lines handed to a callback, stopped by its own pid.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { connect } from 'node:net'
import { dirname, join } from 'node:path'
import { type EdgeWorker, workerdConfig } from './workerd-config.ts'

/** The workerd binary of the Miniflare that wrangler runs. */
export function workerdBinary(): string {
  const fromWrangler = createRequire(import.meta.resolve('wrangler'))
  const fromMiniflare = createRequire(fromWrangler.resolve('miniflare'))
  const main = fromMiniflare('workerd') as { default?: string } | string
  return typeof main === 'string' ? main : (main.default ?? '')
}

export interface WorkerdProcess {
  readonly pid: number
  stop(): Promise<void>
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Lines of a stream, without the trailing newline. */
function eachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let pending = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    pending += chunk
    let newline = pending.indexOf('\n')
    while (newline >= 0) {
      onLine(pending.slice(0, newline))
      pending = pending.slice(newline + 1)
      newline = pending.indexOf('\n')
    }
  })
}

/** Structured log line -> (level, message); anything else is passed as it is. */
function parseLine(line: string): { level: string; message: string } {
  if (line.startsWith('{')) {
    try {
      const log = JSON.parse(line) as { level?: unknown; message?: unknown }
      if (typeof log.level === 'string' && typeof log.message === 'string') {
        return { level: log.level, message: log.message }
      }
    } catch {
      // not JSON: fall through
    }
  }
  return { level: 'raw', message: line }
}

export async function startWorkerd(options: {
  workers: EdgeWorker[]
  /** Where the configuration is written (the bundles' paths are made relative to it). */
  configFile: string
  onLog: (level: string, message: string) => void
  startTimeoutMs?: number
  /** Opens V8's inspector on this port (bench/profile.ts). */
  inspectorPort?: number
}): Promise<WorkerdProcess> {
  writeFileSync(options.configFile, workerdConfig(options.workers, dirname(options.configFile)))
  const args = ['serve', options.configFile]
  if (options.inspectorPort) args.push(`--inspector-addr=127.0.0.1:${options.inspectorPort}`)
  const child: ChildProcess = spawn(workerdBinary(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dirname(options.configFile),
  })
  const early: string[] = []
  const onLine = (line: string) => {
    if (early.length < 50) early.push(line)
    const { level, message } = parseLine(line)
    options.onLog(level, message)
  }
  if (child.stdout) eachLine(child.stdout, onLine)
  if (child.stderr) eachLine(child.stderr, onLine)
  let exited: number | null | undefined
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code) => {
      exited = code
      resolve()
    })
  })
  const stop = async () => {
    if (exited !== undefined) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exit
    clearTimeout(timer)
  }
  const deadline = Date.now() + (options.startTimeoutMs ?? 20_000)
  for (const worker of options.workers) {
    while (!(await portOpen(worker.port))) {
      if (exited !== undefined || Date.now() > deadline) {
        await stop()
        throw new Error(`workerd (${join(options.configFile)}) did not start:\n${early.join('\n')}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return { pid: child.pid ?? 0, stop }
}
