/**
 * revokeAtGate, the users CLI's call to the gate's admin endpoint: each way it can end, against a
 * stand-in gate (the CLI test covers the revoked case end to end).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { revokeAtGate } from '../../scripts/users/revoke.ts'

let gate: Server
let adminUrl: string

beforeAll(async () => {
  gate = createServer((request, response) => {
    if (request.headers.authorization !== 'Bearer admin-token') {
      response.writeHead(401).end('wrong token')
      return
    }
    response.writeHead(200, { 'Content-Type': 'application/json' }).end('{"revoked":1}')
  })
  await new Promise<void>((done) => gate.listen(0, '127.0.0.1', done))
  adminUrl = `http://127.0.0.1:${(gate.address() as AddressInfo).port}/.digest-gate/admin/`
})

afterAll(() => {
  gate?.close()
})

/** A local address nothing listens on: a server that was closed again. */
async function closedUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((done) => server.close(() => done()))
  return `http://127.0.0.1:${port}/.digest-gate/admin`
}

describe('revokeAtGate', () => {
  it('revoked: the gate answered 2xx', async () => {
    expect(await revokeAtGate(adminUrl, 'admin-token', 'digest-gate', 'bob')).toEqual({
      kind: 'revoked',
      message: 'gate revoked the contexts of bob (200 {"revoked":1})',
    })
  })

  it('refused: the gate answered with an error status', async () => {
    expect(await revokeAtGate(adminUrl, 'other-token', 'digest-gate', 'bob')).toEqual({
      kind: 'refused',
      message: 'gate refused the revocation: 401 wrong token',
    })
  })

  it('unreachable: no answer at all', async () => {
    const result = await revokeAtGate(await closedUrl(), 'admin-token', 'digest-gate', 'bob')
    expect(result.kind).toBe('unreachable')
    expect(result.message).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+\/.+\/bob\/revoke: /)
  })
})
