/** The demo users that `users seed-demo` creates: the e2e tests log in as them. */
import { DEMO_USERS, type DemoUser } from '../../../scripts/users/demo.ts'

function demoUser(name: string): DemoUser {
  const user = DEMO_USERS.find((u) => u.name === name)
  if (!user) throw new Error(`no demo user ${name} in scripts/users/demo.ts`)
  return user
}

/** In group admin. */
export const ALICE = demoUser('alice')
/** In no group: refused on /admin/*. */
export const BOB = demoUser('bob')
export const WRONG_PASSWORD = 'not-the-password'
