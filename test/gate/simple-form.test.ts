/**
 * The simple form, `digestAuth({ realm, users })`, alone in a plain Hono app: users verified in
 * the process, contexts and brakes in memory. Inside workerd here; simple-form.node.test.ts runs
 * the same app under plain Node.
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { baseHA1 } from '../../src/digest/algorithms.ts'
import type { DigestAuthOptions } from '../../src/entries/index.ts'
import { digestAuth, memoryContexts } from '../../src/entries/index.ts'
import { clientOf } from './support/app-client.ts'

const REALM = 'api'

type SimpleOptions = Omit<Extract<DigestAuthOptions, { users: unknown }>, 'realm'>

function app(options: SimpleOptions) {
  const seen: string[] = []
  const a = new Hono()
  a.use('/private/*', digestAuth({ realm: REALM, onDecision: () => {}, ...options }))
  a.all('/private/*', (c) => {
    seen.push(c.req.path)
    return c.json(c.var.digestAuth)
  })
  return { app: a, seen }
}

describe('digestAuth({ realm, users })', () => {
  it('logs users in from a record of passwords, and types c.var.digestAuth', async () => {
    const { app: a, seen } = app({ users: { alice: 'wonderland', bob: 'builder' } })
    const alice = clientOf(a, 'alice', 'wonderland')
    for (let i = 0; i < 5; i++) {
      const res = await alice.fetch(`/private/${i}`)
      expect(res.status).toBe(200)
      const body = (await res.json()) as { principal: { name: string }; verifiedBy: string }
      expect(body.principal).toEqual({ name: 'alice', groups: [] })
      expect(body.verifiedBy).toBe(i === 0 ? 'authority' : 'context')
    }
    expect((await clientOf(a, 'bob', 'nope').fetch('/private/x')).status).toBe(401)
    const anonymous = await a.request('https://app.test/private/x')
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Digest realm="api"/)
    expect(seen).toEqual(['/private/0', '/private/1', '/private/2', '/private/3', '/private/4'])
  })

  it('refuses a captured request sent again, and never hands it to the handler', async () => {
    const { app: a, seen } = app({ users: { alice: 'wonderland' } })
    const alice = clientOf(a, 'alice', 'wonderland')
    expect((await alice.fetch('/private/once')).status).toBe(200)
    const captured = alice.sent.at(-1) as string
    const again = await a.request('https://app.test/private/once', {
      headers: { authorization: captured },
    })
    expect(again.status).toBe(401)
    expect(again.headers.get('www-authenticate')).toMatch(/stale=true/)
    expect(seen).toEqual(['/private/once'])
  })

  it('takes a lookup function (async), groups, and a stored H(A1) for one hash', async () => {
    const ha1 = baseHA1('MD5', 'carol', REALM, 'secret')
    const users: DigestAuthOptions['users'] = async (name) =>
      name === 'carol' ? { ha1, hash: 'MD5', groups: ['ops'] } : undefined
    const md5 = app({ users, algorithms: ['MD5'] })
    const res = await clientOf(md5.app, 'carol', 'secret').fetch('/private/h')
    expect(res.status).toBe(200)
    expect(((await res.json()) as { principal: unknown }).principal).toEqual({
      name: 'carol',
      groups: ['ops'],
    })
    // A stored MD5 H(A1) cannot answer a SHA-256 login.
    const sha = app({ users, algorithms: ['SHA-256'] })
    expect((await clientOf(sha.app, 'carol', 'secret').fetch('/private/h')).status).toBe(401)
  })

  it('offers userhash with a record of users', async () => {
    const { app: a } = app({ users: { 'Jäsøn Doe': 'Secret, or not?' }, userhash: true })
    const jason = clientOf(a, 'Jäsøn Doe', 'Secret, or not?')
    expect((await jason.fetch('/private/u')).status).toBe(200)
    expect(jason.sent[0]).toMatch(/userhash=true/)
  })

  it('slows a guesser down (brakes in memory) while the user still gets in', async () => {
    const { app: a } = app({
      users: { alice: 'wonderland' },
      brakes: { policy: { userFailures: 3 } },
    })
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) {
      statuses.push(
        (await clientOf(a, 'alice', `guess${i}`, '203.0.113.9').fetch('/private/g')).status
      )
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401])
    expect(statuses).toContain(429)
    expect(
      (await clientOf(a, 'alice', 'wonderland', '198.51.100.2').fetch('/private/g')).status
    ).toBe(200)
  })

  it('refuses new logins with 503 when its memory store is full of live contexts', async () => {
    const { app: a } = app({
      users: { alice: 'wonderland' },
      contexts: memoryContexts({ maxContexts: 2 }),
    })
    expect((await clientOf(a, 'alice', 'wonderland').fetch('/private/1')).status).toBe(200)
    expect((await clientOf(a, 'alice', 'wonderland').fetch('/private/2')).status).toBe(200)
    const third = await clientOf(a, 'alice', 'wonderland').fetch('/private/3')
    expect(third.status).toBe(503)
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0)
  })

  it('refuses options that could not work, when built', () => {
    const base = { realm: REALM }
    expect(() =>
      digestAuth({ ...base, users: {}, authority: { verify: async () => ({}) } } as never)
    ).toThrow(/either users or an authority/)
    expect(() => digestAuth({ ...base, users: () => undefined, userhash: true })).toThrow(
      /userhash/
    )
    expect(() => digestAuth({ ...base, users: {}, windowSize: 100 })).toThrow(/windowSize/)
    expect(() => digestAuth({ ...base, users: {}, contextReleaseAfter: 1 })).toThrow(
      /contextReleaseAfter/
    )
  })
})
