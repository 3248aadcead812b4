/**
 * memoryBrakes() under plain Node, outside workerd: the module loads without `cloudflare:workers`
 * (importing it would throw here) and brakes, refunds and sweeps as it does in the gate's tests.
 */
import { describe, expect, it } from 'vitest'
import { type BrakeAttempt, DEFAULT_BRAKE_POLICY } from '../../src/gate/brake-policy.ts'
import { memoryBrakes } from '../../src/gate/memory-brakes.ts'

const now = 1_750_000_000
const at = (bucket: string, user: string, t = now): BrakeAttempt => ({
  bucket,
  realm: 'node',
  user,
  now: t,
})

describe('memoryBrakes under Node', () => {
  it('runs where Durable Objects do not exist', () => {
    expect(typeof (globalThis as { WebSocketPair?: unknown }).WebSocketPair).toBe('undefined')
    expect(process.release.name).toBe('node')
  })

  it('admits the threshold of parallel attempts, refuses the rest with the wait, refunds a login', async () => {
    const brakes = memoryBrakes()
    const p = DEFAULT_BRAKE_POLICY
    const verdicts = await Promise.all(
      Array.from({ length: 15 }, () => brakes.admit(at('198.51.100.1', 'alice'), p))
    )
    expect(verdicts.filter((v) => v.kind === 'admitted')).toHaveLength(p.userFailures)
    expect(verdicts.filter((v) => v.kind === 'braked')).toEqual(
      Array(15 - p.userFailures).fill({ kind: 'braked', retryAfter: 1, reason: 'user_failures' })
    )
    // After the wait one attempt passes; verified, it is taken back and its bucket known.
    expect((await brakes.admit(at('198.51.100.1', 'alice', now + 1), p)).kind).toBe('admitted')
    await brakes.succeeded(at('198.51.100.1', 'alice', now + 1), p)
    expect(brakes.inspect(`user:${JSON.stringify(['node', 'alice'])}`).known).toEqual([
      { bucket: '198.51.100.1', until: now + 1 + p.knownClientSeconds },
    ])
    // Another user from another bucket is not slowed.
    expect(await brakes.recordFailure(at('198.51.100.2', 'bob'), p)).toEqual({ kind: 'admitted' })
    expect(brakes.size).toBe(4)
    // Once everything has drained, the next call sweeps: only its own objects and the user
    // object holding the known bucket are left.
    await brakes.recordFailure(at('198.51.100.3', 'carol', now + 2 * p.windowSeconds), p)
    expect(brakes.size).toBe(3)
  })
})
