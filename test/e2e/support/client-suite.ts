/**
 * The checks every client goes through, given an adapter that performs one request the client's
 * way. Each login goes through a recorder so the matrix shows what the client actually sent.
 *   - per gate configuration: right password → 200 and the origin sees the user (matrix cell);
 *     where the client is known not to support the configuration, a clean 401 instead (never 5xx)
 *   - default configuration: wrong password → 401, bob on /admin/* → 403, /public/* anonymous → 200
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { e2e } from './context.ts'
import { assertionProblem, type Echo, expectForwardedAs, parseEcho } from './echo.ts'
import type { ClientId } from './interop.ts'
import { record } from './record.ts'
import { type Exchange, type Recorder, startRecorder } from './recorder.ts'
import { ALICE, BOB, WRONG_PASSWORD } from './users.ts'
import { type GateVariant, VARIANT_NAMES } from './variants.ts'

export interface Credentials {
  user: string
  password: string
}

export interface ClientAnswer {
  /** Final HTTP status (0 when the client failed before getting one). */
  status: number
  body: string
  /** The client raised/crashed instead of completing the request (its own limitation). */
  clientError?: string
}

export interface ClientAdapter {
  id: ClientId
  /** The client's version line for the document. */
  version(): Promise<string> | string
  /** One logical request the client's way (including its own 401 → retry), final answer. */
  get(
    url: string,
    credentials: Credentials | undefined,
    variant: GateVariant
  ): Promise<ClientAnswer>
}

/** Per configuration: true = the login must succeed; a string = known to fail, and why. */
export type Expectations = Record<GateVariant, true | string>

/** What the client is known to send, checked on the wire. */
export interface WireExpectations {
  /** The `algorithm` directive per configuration ('' = none sent). */
  algorithm?: Partial<Record<GateVariant, string>>
  /** Whether it answers `userhash=true` with a hashed username. */
  userhash?: boolean
}

/** At most 120 printable characters of a body, for messages (bodies may be binary). */
export function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?')
  return clean.length > 120 ? `${clean.slice(0, 120)}…` : clean
}

/** Whether a 200 carried the demo origin's answer for alice; the problem otherwise. */
function checkDelivered(answer: ClientAnswer, client: string): { ok: boolean; problem?: string } {
  if (answer.status !== 200) return { ok: false }
  let echo: Echo
  try {
    echo = JSON.parse(answer.body) as Echo
  } catch {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: spotting control characters is the point
    const binary = /[^\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]/.test(answer.body) ? ' (binary)' : ''
    return { ok: false, problem: `200 but the body is not the origin's JSON${binary}` }
  }
  if (echo.origin !== 'digest-gate-demo-origin') return { ok: false, problem: '200 from elsewhere' }
  if (echo.authHeaders['x-auth-user'] !== ALICE.name) {
    return { ok: false, problem: `origin saw user ${echo.authHeaders['x-auth-user']}` }
  }
  if (echo.authorizationReceived) return { ok: false, problem: 'Authorization reached the origin' }
  const assertion = assertionProblem(echo, ALICE.name)
  if (assertion) return { ok: false, problem: assertion }
  if (echo.path !== '/private/hello' || echo.query !== `client=${client}`) {
    return { ok: false, problem: `origin saw ${echo.path}?${echo.query}` }
  }
  return { ok: true }
}

/** The Digest exchange that carried the login (the last request that sent Digest). */
function lastDigest(exchanges: Exchange[]): Exchange | undefined {
  return [...exchanges].reverse().find((e) => e.digest !== undefined)
}

export function describeClientSuite(
  adapter: ClientAdapter,
  expectations: Expectations,
  wire: WireExpectations = {}
): void {
  describe(`${adapter.id}: right password per gate configuration`, () => {
    const recorders = new Map<GateVariant, Recorder>()
    beforeAll(async () => {
      record({ kind: 'version', client: adapter.id, version: await adapter.version() })
      for (const variant of VARIANT_NAMES) {
        recorders.set(variant, await startRecorder(e2e().gates[variant]))
      }
    })
    afterAll(async () => {
      for (const recorder of recorders.values()) await recorder.close()
    })

    for (const variant of VARIANT_NAMES) {
      const expected = expectations[variant]
      const title =
        expected === true ? `${variant}: 200 as alice` : `${variant}: refused (${expected})`
      it(title, async () => {
        const recorder = recorders.get(variant) as Recorder
        recorder.clear()
        const answer = await adapter.get(
          `${recorder.url}/private/hello?client=${adapter.id}`,
          {
            user: ALICE.name,
            password: ALICE.password,
          },
          variant
        )
        const sent = lastDigest(recorder.exchanges)
        const sentAlgorithm = sent ? (sent.digest?.algorithm ?? '') : undefined
        const offered = recorder.exchanges.find((e) => e.challenges > 0)?.offered
        // Delivered = 200 and the origin's answer shows alice, without Authorization.
        const delivered = checkDelivered(answer, adapter.id)
        const wantAlgorithm = wire.algorithm?.[variant]
        const notes = [
          delivered.problem ?? (delivered.ok || expected === true ? answer.clientError : expected),
          wantAlgorithm !== undefined && wantAlgorithm !== (sentAlgorithm ?? '')
            ? `expected ${wantAlgorithm || 'no algorithm'}`
            : undefined,
        ].filter((note) => note !== undefined)
        record({
          kind: 'cell',
          client: adapter.id,
          variant,
          ok: delivered.ok,
          status: answer.status,
          algorithm: sentAlgorithm,
          offered,
          userhash: sent?.digest?.userhash === 'true',
          note: notes.length > 0 ? notes.join('; ') : undefined,
        })
        if (wantAlgorithm !== undefined) expect(sentAlgorithm ?? '').toBe(wantAlgorithm)
        if (variant === 'userhash' && wire.userhash !== undefined) {
          expect(sent?.digest?.userhash === 'true').toBe(wire.userhash)
        }
        if (expected === true) {
          expect(answer.status, printable(answer.body)).toBe(200)
          expect(delivered.problem).toBeUndefined()
        } else if (answer.clientError === undefined) {
          // A client that cannot answer this challenge must get a clean refusal from the gate.
          expect(answer.status).toBe(401)
        }
      })
    }
  })

  describe(`${adapter.id}: outcomes on the default configuration`, () => {
    let recorder: Recorder
    beforeAll(async () => {
      recorder = await startRecorder(e2e().gates.default)
    })
    afterAll(async () => {
      await recorder.close()
    })

    const check = (name: string, run: () => Promise<void>) =>
      it(name, async () => {
        try {
          await run()
          record({ kind: 'check', client: adapter.id, check: name, ok: true })
        } catch (error) {
          const detail = error instanceof Error ? error.message.split('\n')[0] : String(error)
          record({ kind: 'check', client: adapter.id, check: name, ok: false, detail })
          throw error
        }
      })

    check('wrong password → 401', async () => {
      const answer = await adapter.get(
        `${recorder.url}/private/hello`,
        { user: ALICE.name, password: WRONG_PASSWORD },
        'default'
      )
      expect(answer.status).toBe(401)
    })
    check('bob on /admin/* → 403', async () => {
      const answer = await adapter.get(
        `${recorder.url}/admin/panel`,
        { user: BOB.name, password: BOB.password },
        'default'
      )
      expect(answer.status).toBe(403)
    })
    check('alice on /admin/* → 200', async () => {
      const answer = await adapter.get(
        `${recorder.url}/admin/panel`,
        { user: ALICE.name, password: ALICE.password },
        'default'
      )
      expect(answer.status).toBe(200)
      expectForwardedAs(parseEcho(answer.body), ALICE.name)
    })
    check('/public/* without credentials → 200', async () => {
      const answer = await adapter.get(`${recorder.url}/public/hello`, undefined, 'default')
      expect(answer.status).toBe(200)
      const echo = parseEcho(answer.body)
      expect(echo.authHeaders['x-auth-user']).toBeUndefined()
      expect(echo.assertion).toBeNull()
    })
  })
}
