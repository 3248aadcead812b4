/**
 * Fresh names per test: Durable Objects' storage outlives a test, so no two tests may share a
 * user, a context or a client address.
 */
import type { FakeAuthority } from '../fakes.ts'

let serial = 0

/** A name no other test run has used. */
export const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++serial}`

/** Client addresses of a documentation range (RFC 5737), one new address per call. */
export function addressesIn(range: '192.0.2' | '198.51.100' | '203.0.113'): () => string {
  let host = 0
  return () => `${range}.${++host}`
}

/** A user the fake authority knows, under a fresh name. */
export function addUser(
  authority: FakeAuthority,
  password = 'right-password',
  prefix = 'user'
): string {
  const name = unique(prefix)
  authority.users.set(name, { password, groups: [] })
  return name
}
