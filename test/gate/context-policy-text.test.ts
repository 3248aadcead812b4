/**
 * The policy crosses to a security context's object as its JSON text (policyText), parsed there
 * once per change of the text: the object judges by the policy of each call, text or object, and
 * a policy JSON would not carry faithfully goes as the object. Real Durable Objects.
 */
import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { computeResponse } from '../../src/digest/algorithms.ts'
import type { ContextPolicy, ContextRequest } from '../../src/gate/context-types.ts'
import { policyText } from '../../src/gate/security-context.ts'

const KEY = 'a'.repeat(32)

const policy = (over: Partial<ContextPolicy> = {}): ContextPolicy => ({
  replay: 'window',
  windowSize: 128,
  nonceLifetime: 300,
  idleTimeout: 1800,
  maxLifetime: 43_200,
  revalidateAfter: 3600,
  freeMismatches: 5,
  brakes: false,
  ...over,
})

function request(nc: number, now: number): ContextRequest {
  const base = {
    username: 'alice',
    userhash: false,
    realm: 'r',
    algorithm: 'MD5' as const,
    nonce: 'n-1',
    nonceIssuedAt: now,
    nonceExpired: false,
    uri: '/x',
    method: 'GET',
    qop: 'auth' as const,
    nc,
    ncRaw: nc.toString(16).padStart(8, '0'),
    cnonce: 'c',
    now,
    bucket: '192.0.2.1',
  }
  const response = computeResponse({ ...base, nc: base.ncRaw, ha1: KEY })
  return { ...base, response }
}

async function established(p: ContextPolicy, now: number) {
  const stub = env.CONTEXTS.getByName(`policy-text-${crypto.randomUUID()}`)
  const answer = await stub.establish(
    {
      ...request(1, now),
      principal: { name: 'alice', groups: ['staff'] },
      sessionKey: KEY,
      startedAt: now * 1000,
    },
    p
  )
  expect(answer.kind).toBe('established')
  return stub
}

describe('the policy as text', () => {
  it('is made once per policy object, and JSON text only where JSON carries it', () => {
    const p = policy()
    const text = policyText(p)
    expect(typeof text).toBe('string')
    expect(JSON.parse(text as string)).toEqual(p)
    expect(policyText(p)).toBe(text)
    const never = policy({ revalidateAfter: Number.POSITIVE_INFINITY })
    expect(policyText(never)).toBe(never)
  })

  it('is judged by as the object is, and a changed text is read again', async () => {
    const now = Math.floor(Date.now() / 1000)
    const windowed = policy()
    const stub = await established(windowed, now)
    const text = policyText(windowed)
    expect((await stub.verify(request(2, now), text)).kind).toBe('verified')
    // The same nc again, under the same text and under the object: a replay either way.
    expect(await stub.verify(request(2, now), text)).toEqual({ kind: 'replay', verified: true })
    expect(await stub.verify(request(2, now), windowed)).toEqual({ kind: 'replay', verified: true })
    // Another text (replay off) is parsed, not the last one reused: nc is not checked.
    const off = policyText(policy({ replay: 'off' }))
    expect((await stub.verify(request(2, now), off)).kind).toBe('verified')
    expect(await stub.verify(request(2, now), text)).toEqual({ kind: 'replay', verified: true })
  })

  it('travels in a batch per item', async () => {
    const now = Math.floor(Date.now() / 1000)
    const windowed = policy()
    const stub = await established(windowed, now)
    const text = policyText(windowed)
    const answers = await stub.verifyMany([
      { req: request(3, now), policy: text },
      { req: request(3, now), policy: text },
      { req: request(4, now), policy: windowed },
    ])
    expect(answers.map((a) => ('answer' in a ? a.answer.kind : a.error))).toEqual([
      'verified',
      'replay',
      'verified',
    ])
  })
})
