import { exports } from 'cloudflare:workers'
import fc from 'fast-check'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import type { VerifyRequest } from '../../src/authority-protocol/v1.ts'
import { validateVerifyRequest } from '../../src/authority-protocol/validate.ts'
import { clientRequest, configureSecret, gateToken } from './helpers.ts'

vi.spyOn(console, 'log').mockImplementation(() => {})

let good: VerifyRequest
beforeAll(async () => {
  configureSecret()
  good = await clientRequest({ username: 'alice', password: 'x', algorithm: 'SHA-256-sess' })
})

/** A valid request with one member, at any depth, replaced by an arbitrary JSON value. */
function mutated(request: VerifyRequest) {
  const fields = [
    'version',
    'serverId',
    'method',
    'bodyHash',
    'directives',
    ...Object.keys(request.directives).map((key) => `directives.${key}`),
    'directives.qop',
    'directives.algorithm',
  ]
  return fc.tuple(fc.constantFrom(...fields), fc.jsonValue()).map(([field, value]) => {
    const copy = structuredClone(request) as unknown as Record<string, Record<string, unknown>>
    const [outer, inner] = field.split('.') as [string, string | undefined]
    if (inner === undefined) copy[outer] = value as Record<string, unknown>
    else (copy[outer] as Record<string, unknown>)[inner] = value
    return copy
  })
}

describe('validateVerifyRequest', () => {
  it('accepts a well-formed request and copies only known members', () => {
    const result = validateVerifyRequest({ ...good, extra: 1 })
    expect(result).toEqual({ kind: 'valid', value: good })
  })

  it('never throws, whatever the JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = validateVerifyRequest(value)
        expect(result.kind).toBe('invalid')
        if (result.kind === 'invalid') expect(typeof result.error.message).toBe('string')
      }),
      { numRuns: 1000 }
    )
  })

  it('never throws on a valid request with one member replaced', () => {
    fc.assert(
      fc.property(mutated(good), (value) => {
        const result = validateVerifyRequest(value)
        if (result.kind === 'valid') expect(result.value.version).toBe(1)
        else expect(result.error.message.length).toBeGreaterThan(0)
      }),
      { numRuns: 1000 }
    )
  })

  it('never throws on hostile objects', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom')
        },
        has() {
          throw new Error('boom')
        },
        getOwnPropertyDescriptor() {
          throw new Error('boom')
        },
      }
    )
    expect(validateVerifyRequest(hostile).kind).toBe('invalid')
    expect(validateVerifyRequest(JSON.parse('{"__proto__":{"version":1}}')).kind).toBe('invalid')
  })
})

describe('POST /v1/verify with arbitrary JSON', () => {
  it('answers 400 (or a verdict), never 5xx', async () => {
    const token = await gateToken()
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue(), mutated(good)), async (value) => {
        const response = await exports.default.fetch('https://authority.test/v1/verify', {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}` },
          body: JSON.stringify(value),
        })
        expect([200, 400, 401, 413]).toContain(response.status)
        const body = (await response.json()) as { error?: string; result?: string }
        if (response.status === 400) expect(body.error).toBe('invalid_request')
        if (response.status === 200) expect(['ok', 'denied']).toContain(body.result)
      }),
      { numRuns: 150 }
    )
  })
})
