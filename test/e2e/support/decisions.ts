/**
 * Structured log records of the workers, as the harness keeps their output
 * (`<logDir>/<worker name>.log`): the gate's decisions (one JSON line per authentication decision,
 * src/gate/decision-log.ts) and the authority's verifications (one per call, whatever its result).
 * Unlike the authority's /metrics, these survive a live reload of `wrangler dev`, which resets
 * the per-isolate counters. A tail marks the file's end; a test acts, then reads what came since.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { DecisionLog } from '../../../src/gate/decision-log.ts'
import { e2e } from './context.ts'

export interface Tail<T> {
  /** Records written since the mark. */
  read(): T[]
  /** Waits until at least `count` records were written since the mark (or `timeoutMs` passed). */
  waitFor(count: number, timeoutMs?: number): Promise<T[]>
  /** Waits until no record has arrived for `quietMs` (the worker's output has caught up). */
  quiet(quietMs?: number, timeoutMs?: number): Promise<T[]>
  /** Moves the mark to the current end of the log. */
  reset(): void
}

/** What the reference authority logs per verification (authority/src/log.ts). */
export interface VerificationLog {
  event: 'authority.verify'
  result: string
  status: number
}

/** The log file of a worker started by the harness (`gate`, `authority`: the shared stack's). */
export function workerLog(name: string, logDir = e2e().logDir): string {
  return join(logDir, `${name}.log`)
}

function tailRecords<T>(file: string, marker: string): Tail<T> {
  const size = () => (existsSync(file) ? statSync(file).size : 0)
  let mark = size()
  const read = (): T[] => {
    if (!existsSync(file)) return []
    const text = readFileSync(file).subarray(mark).toString('utf8')
    const records: T[] = []
    // Whole lines only: the last one may still be being written.
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
      const at = line.indexOf(marker)
      // wrangler dev wraps console.warn/error lines in a label and colour codes: keep the object.
      if (at >= 0) records.push(JSON.parse(line.slice(at, line.lastIndexOf('}') + 1)) as T)
    }
    return records
  }
  return {
    read,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs
      let records = read()
      while (records.length < count && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        records = read()
      }
      return records
    },
    async quiet(quietMs = 700, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      let records = read()
      let since = Date.now()
      while (Date.now() - since < quietMs && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const now = read()
        if (now.length !== records.length) since = Date.now()
        records = now
      }
      return records
    },
    reset() {
      mark = size()
    },
  }
}

export function tailDecisions(file: string): Tail<DecisionLog> {
  return tailRecords(file, '{"event":"digest-gate.decision"')
}

export function tailVerifications(file: string): Tail<VerificationLog> {
  return tailRecords(file, '{"event":"authority.verify"')
}
