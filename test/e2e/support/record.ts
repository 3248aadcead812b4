/** Appends an observation of a client test to this run's interop results (see interop.ts). */
import { appendFileSync } from 'node:fs'
import { e2e } from './context.ts'
import type { InteropRecord } from './interop.ts'

export function record(entry: InteropRecord): void {
  appendFileSync(e2e().interopFile, `${JSON.stringify(entry)}\n`)
}
