/**
 * Hostile Authorization headers against the whole gate: never a 5xx, never an authority call for
 * a forged nonce, and malformed input is a 400.
 */
import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { captureDecisions, challengeOf, type FakeAuthority, GATE, installPeers } from './fakes.ts'

let authority: FakeAuthority
beforeEach(() => {
  ;({ authority } = installPeers())
  captureDecisions()
})
afterEach(() => {
  vi.restoreAllMocks()
})

const send = (authorization: string) =>
  exports.default.fetch(new Request(`${GATE}/private/fuzz`, { headers: { authorization } }))

/** Printable ASCII: workerd re-encodes other code points (the parser tests cover Latin-1 bytes). */
const headerChars = fc
  .string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 300,
  })
  .filter((s) => s.trim() === s)

const directiveName = fc.constantFrom(
  'username',
  'realm',
  'nonce',
  'uri',
  'response',
  'algorithm',
  'qop',
  'nc',
  'cnonce',
  'opaque',
  'userhash',
  'username*',
  'charset',
  'x'
)

const directive = fc
  .tuple(directiveName, headerChars, fc.boolean())
  .map(([k, v, quoted]) => (quoted ? `${k}="${v.replace(/["\\]/g, '')}"` : `${k}=${v}`))

it('never answers 5xx to arbitrary Authorization values', async () => {
  await fc.assert(
    fc.asyncProperty(headerChars, async (h) => {
      const res = await send(`Digest ${h}`)
      expect(res.status).toBeLessThan(500)
      expect([400, 401]).toContain(res.status)
    }),
    { numRuns: 300 }
  )
})

it('never answers 5xx to directive soups, and never calls the authority for forged nonces', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(directive, { maxLength: 14 }), async (ds) => {
      const res = await send(`Digest ${ds.join(', ')}`)
      expect([400, 401]).toContain(res.status)
    }),
    { numRuns: 400 }
  )
  expect(authority.calls).toBe(0)
})

it('refuses well-formed headers with random nonces before any I/O', async () => {
  const { opaque } = challengeOf(await exports.default.fetch(new Request(`${GATE}/private/fuzz`)))
  await fc.assert(
    fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_-]{20,90}$/), async (nonce) => {
      const res = await send(
        `Digest username="alice", realm="digest-gate", nonce="${nonce}", uri="/private/fuzz", ` +
          `response="${'0'.repeat(64)}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="abc", opaque="${opaque}"`
      )
      expect(res.status).toBe(401)
    }),
    { numRuns: 200 }
  )
  expect(authority.calls).toBe(0)
})
