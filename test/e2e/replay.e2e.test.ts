/**
 * Replays of captured requests against the real gate (shared default gate, REPLAY_MODE=window):
 * an eavesdropper who saw an Authorization header sends it again, as is or with another method or
 * uri. Every replay is refused, none reaches the authority, and none costs the real client
 * anything (an nc is recorded only for a response that verified).
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { e2e } from './support/context.ts'
import { tailDecisions, tailVerifications, workerLog } from './support/decisions.ts'
import { type Answer, type DigestSession, digestSession, send } from './support/digest-session.ts'
import { ALICE } from './support/users.ts'

/** The real client, and the eavesdropper replaying from elsewhere (its own brake counters). */
const CLIENT_IP = '198.51.100.50'
const REPLAYER_IP = '198.51.100.51'

/** The nc of a Digest header, e.g. 00000003. */
const ncOf = (header: string) => /\bnc=([0-9a-f]{8})/i.exec(header)?.[1] as string

describe('replays of captured requests', () => {
  let gate: string
  let alice: DigestSession

  const replay = (
    path: string,
    authorization: string,
    method = 'GET',
    body?: string
  ): Promise<Answer> =>
    send(`${gate}${path}`, REPLAYER_IP, { method, headers: { authorization }, body })

  beforeAll(async () => {
    gate = e2e().gates.default
    alice = digestSession(gate, ALICE.name, ALICE.password, { clientIp: CLIENT_IP })
    expect((await alice.get('/private/replay/login')).status).toBe(200)
  })

  it('the same request again (same nonce and nc): refused with stale=true, no authority call', async () => {
    const verifications = tailVerifications(workerLog('authority'))
    const decisions = tailDecisions(workerLog('gate'))
    const header = await alice.authorizationFor('GET', '/private/replay/a')
    expect(
      (await send(`${gate}/private/replay/a`, CLIENT_IP, { headers: { authorization: header } }))
        .status
    ).toBe(200)
    for (let i = 0; i < 3; i++) {
      const again = await replay('/private/replay/a', header)
      expect(again.status).toBe(401)
      expect(again.headers.get('www-authenticate')).toMatch(/stale=true/)
    }
    const records = await decisions.waitFor(4)
    expect(records.slice(1).map((r) => r.reason)).toEqual(['nc_replay', 'nc_replay', 'nc_replay'])
    expect(records.filter((r) => r.authorityCalled)).toEqual([])
    expect(await verifications.quiet()).toEqual([])
  })

  it('the initial authentication replayed: refused, and the authority is not asked again', async () => {
    const fresh = digestSession(gate, ALICE.name, ALICE.password, { clientIp: CLIENT_IP })
    expect((await fresh.get('/private/replay/initial')).status).toBe(200)
    // sent[0] is the challenge-answering request that went to the authority.
    expect(fresh.sent).toHaveLength(1)
    const initial = fresh.sent[0] as string
    const verifications = tailVerifications(workerLog('authority'))
    const again = await replay('/private/replay/initial', initial)
    expect(again.status).toBe(401)
    expect(again.headers.get('www-authenticate')).toMatch(/stale=true/)
    expect(await verifications.quiet()).toEqual([])
  })

  it('with another method or another uri: refused, and the real client is not harmed', async () => {
    const verifications = tailVerifications(workerLog('authority'))
    const header = await alice.authorizationFor('GET', '/private/replay/b')
    // Captured in flight, never delivered: only the response hash protects it now.
    const asPost = await replay('/private/replay/b', header, 'POST', 'x=1')
    expect(asPost.status).toBe(401)
    expect(asPost.headers.get('www-authenticate')).not.toMatch(/stale=true/)
    const asDelete = await replay('/private/replay/b', header, 'DELETE')
    expect(asDelete.status).toBe(401)
    // Another request target, uri directive unchanged: the uri check refuses it.
    const elsewhere = await replay('/private/replay/other', header)
    expect(elsewhere.status).toBe(400)
    // Another target with the uri directive rewritten to match: the response no longer does.
    const rewritten = header.replace('uri="/private/replay/b"', 'uri="/private/replay/other"')
    expect(rewritten).not.toBe(header)
    expect((await replay('/private/replay/other', rewritten)).status).toBe(401)
    expect(await verifications.quiet()).toEqual([])

    // None of that recorded the nc: the original request still goes through, once.
    const original = await send(`${gate}/private/replay/b`, CLIENT_IP, {
      headers: { authorization: header },
    })
    expect(original.status).toBe(200)
    expect((await alice.get('/private/replay/c')).status).toBe(200)
  })

  it('a forged next nc on a captured header does not burn the real client’s count', async () => {
    const header = await alice.authorizationFor('GET', '/private/replay/d')
    const nc = Number.parseInt(ncOf(header), 16)
    const next = (nc + 1).toString(16).padStart(8, '0')
    const forged = header.replace(`nc=${ncOf(header)}`, `nc=${next}`)
    expect((await replay('/private/replay/d', forged)).status).toBe(401)
    expect(
      (await send(`${gate}/private/replay/d`, CLIENT_IP, { headers: { authorization: header } }))
        .status
    ).toBe(200)
    // The client's own next request uses that nc: still accepted.
    const own = await alice.authorizationFor('GET', '/private/replay/e')
    expect(ncOf(own)).toBe(next)
    expect(
      (await send(`${gate}/private/replay/e`, CLIENT_IP, { headers: { authorization: own } }))
        .status
    ).toBe(200)
  })

  it('ten copies of one captured request in parallel: exactly one is accepted', async () => {
    const verifications = tailVerifications(workerLog('authority'))
    const header = await alice.authorizationFor('GET', '/private/replay/race')
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => replay('/private/replay/race', header))
    )
    const statuses = answers.map((a) => a.status).sort()
    expect(statuses).toEqual([200, ...Array(9).fill(401)])
    expect(await verifications.quiet()).toEqual([])
  })
})
