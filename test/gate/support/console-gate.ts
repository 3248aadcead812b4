/**
 * The console's test fixtures: the gate worker with this project's env (console on), whose
 * background work (the refusal ring's writes, the reports) can be awaited, the realm's index
 * object, and the handle a client's last request named.
 */
import { env } from 'cloudflare:workers'
import { readNonceFields } from '../../../src/digest/tokens.ts'
import { consoleIndexName } from '../../../src/gate/console/reports.ts'
import type { buildGate } from '../../../src/index.ts'
import { type client, REALM, settlingGate } from '../fakes.ts'

export type ConsoleGate = ((req: Request) => Promise<Response>) & {
  /** Wait for what the requests so far left in the background. */
  settled(): Promise<void>
}

/** The gate worker with this project's env, optionally other vars or bindings. */
export function consoleGate(vars: Record<string, unknown> = {}): ConsoleGate {
  const { fetch, settled } = settlingGate({ ...env, ...vars } as Parameters<typeof buildGate>[0])
  return Object.assign(fetch, { settled })
}

/** The console's index object of the test realm. */
export const indexObject = () => env.CONSOLE_INDEX.getByName(consoleIndexName(REALM))

/** The handle a client's last Authorization header names. */
export function handleOf(c: ReturnType<typeof client>): string {
  const nonce = /nonce="([^"]+)"/.exec(c.sent.at(-1)?.authorization ?? '')?.[1] ?? ''
  return readNonceFields(nonce)?.handle ?? ''
}
