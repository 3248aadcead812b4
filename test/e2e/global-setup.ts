/**
 * Global setup of `npm run test:e2e`: one stack for the whole run (reference authority, demo
 * origin, the default gate and one gate per configuration in variants.ts), each under `wrangler
 * dev` on a free port, with a temporary persist directory and secrets of its own, so a run never
 * touches the developer's `npm start` state. Teardown stops it all and renders the interop matrix
 * into the run directory, which it then empties but for the matrix; docs/interop.md only when
 * asked (`npm run docs:interop`) and the run was complete.
 *
 *   E2E_VERBOSE=1  print the workers' output     E2E_KEEP=1  keep the run directory (logs, state)
 *   E2E_WRITE_DOCS=1  also write docs/interop.md (set by `npm run docs:interop`)
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import { PROJECT_ROOT } from '../../scripts/stack/paths.ts'
import { freePorts } from '../../scripts/stack/ports.ts'
import { type Stack, startStack } from '../../scripts/stack/stack.ts'
import type { E2eContext } from './support/context.ts'
import { isComplete, readRecords, renderInterop } from './support/interop.ts'
import {
  GATE_VARIANTS,
  type GateVariant,
  SHARED_GATE_VARS,
  VARIANT_NAMES,
} from './support/variants.ts'
import { wranglerVersion } from './support/versions.ts'

const verbose = process.env.E2E_VERBOSE === '1'
const keep = process.env.E2E_KEEP === '1'
const writeDocs = process.env.E2E_WRITE_DOCS === '1'
/** What the run directory keeps after a run (unless E2E_KEEP): the interop matrix. */
const MATRIX_FILES = new Set(['interop.md', 'interop.jsonl'])

/**
 * Runs `tasks` at most `limit` at a time (two cores: wrangler dev boots are CPU-bound). Settles
 * every task before rejecting, so that nothing is still starting when the caller cleans up.
 */
async function limited<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = []
  const errors: unknown[] = []
  let next = 0
  const worker = async () => {
    while (next < tasks.length && errors.length === 0) {
      const index = next++
      try {
        results[index] = await (tasks[index] as () => Promise<T>)()
      } catch (error) {
        errors.push(error)
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  if (errors.length > 0) throw errors[0]
  return results
}

export default async function setup(project: TestProject) {
  const started = Date.now()
  const runDir = mkdtempSync(join(tmpdir(), 'digest-gate-e2e-'))
  const logDir = join(runDir, 'logs')
  const variants = VARIANT_NAMES.filter((v) => v !== 'default')
  const [gatePort, authorityPort, originPort, ...variantPorts] = await freePorts(
    3 + variants.length
  )
  const log = (message: string) => {
    if (verbose) console.log(`[e2e] ${message}`)
  }
  let stack: Stack | undefined
  try {
    stack = await startStack({
      gatePort,
      authorityPort,
      originPort,
      persistTo: join(runDir, 'state'),
      secrets: { gate: join(runDir, 'gate.env'), authority: join(runDir, 'authority.env') },
      quiet: !verbose,
      logDir,
      registryPath: join(runDir, 'registry'),
      gateVars: SHARED_GATE_VARS,
      onProgress: log,
    })
    const current = stack
    const extra = await limited(
      2,
      variants.map(
        (variant, i) => () =>
          current.startGate({
            name: `gate-${variant}`,
            port: variantPorts[i] as number,
            vars: GATE_VARIANTS[variant],
          })
      )
    )
    const gates = { default: stack.urls.gate } as Record<GateVariant, string>
    variants.forEach((variant, i) => {
      gates[variant] = (extra[i] as { url: string }).url
    })
    const context: E2eContext = {
      runDir,
      persistTo: stack.persistTo,
      secrets: stack.secrets,
      logDir,
      registryPath: join(runDir, 'registry'),
      interopFile: join(runDir, 'interop.jsonl'),
      authorityUrl: stack.urls.authority,
      originUrl: stack.urls.origin,
      gates,
      wiringVars: stack.wiringVars,
    }
    project.provide('e2e', context)
    console.log(
      `[e2e] stack of ${3 + variants.length} workers up in ${((Date.now() - started) / 1000).toFixed(1)} s (logs: ${logDir})`
    )
  } catch (error) {
    await stack?.stop()
    console.error(`[e2e] the stack did not start; logs kept in ${logDir}`)
    throw error
  }

  return async () => {
    await stack?.stop()
    const interopFile = join(runDir, 'interop.jsonl')
    const records = readRecords(interopFile)
    const complete = records.length > 0 && isComplete(records)
    if (records.length > 0) {
      const environment = [
        `gate, authority and demo origin under \`wrangler dev\` (wrangler ${wranglerVersion()}), Node ${process.versions.node}`,
      ]
      const markdown = renderInterop(records, environment)
      writeFileSync(join(runDir, 'interop.md'), markdown)
      console.log(
        `[e2e] interop matrix${complete ? '' : ' (partial run)'}: ${join(runDir, 'interop.md')}`
      )
      if (writeDocs && complete) {
        writeFileSync(join(PROJECT_ROOT, 'docs', 'interop.md'), markdown)
        console.log('[e2e] wrote docs/interop.md')
      } else if (writeDocs) {
        console.log('[e2e] partial run: docs/interop.md unchanged')
      }
    }
    if (keep || (records.length > 0 && !complete)) {
      console.log(`[e2e] run directory kept: ${runDir}`)
    } else if (records.length > 0) {
      for (const entry of readdirSync(runDir)) {
        if (!MATRIX_FILES.has(entry)) rmSync(join(runDir, entry), { recursive: true, force: true })
      }
    } else {
      rmSync(runDir, { recursive: true, force: true })
    }
  }
}
