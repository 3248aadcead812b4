/** What the global setup hands to every e2e test file (vitest provide/inject). */
import { inject } from 'vitest'
import type { SecretFiles } from '../../../scripts/stack/secrets.ts'
import type { GateVariant } from './variants.ts'

export interface E2eContext {
  /** Temporary directory of this run: state, secrets, logs, interop results. */
  runDir: string
  /** The stack's persist directory (authority KV with the demo users; the default gate's DOs). */
  persistTo: string
  secrets: SecretFiles
  logDir: string
  registryPath: string
  /** JSON lines written by the client tests, rendered into docs/interop.md at teardown. */
  interopFile: string
  authorityUrl: string
  originUrl: string
  /** Gate base URL per configuration. */
  gates: Record<GateVariant, string>
  /** The vars that point a gate at this run's authority and origin. */
  wiringVars: Record<string, string>
}

declare module 'vitest' {
  export interface ProvidedContext {
    e2e: E2eContext
  }
}

export function e2e(): E2eContext {
  return inject('e2e')
}
