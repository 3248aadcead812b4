import { exports } from 'cloudflare:workers'
import { beforeAll, describe, expect, it, vi } from 'vitest'
import type { VerifyRpcResult } from '../../src/authority-protocol/v1.ts'
import { ALGORITHMS, baseHA1, hashOf, userhash } from '../../src/digest/algorithms.ts'
import { encodeBase64Url } from '../../src/digest/base64url.ts'
import type { Qop } from '../../src/digest/types.ts'
import {
  authorityEnv,
  clientRequest,
  configureSecret,
  gateNonce,
  gateToken,
  METRICS_TOKEN,
  postVerify,
  putUser,
  REALM,
  RFC_REALM,
  readMetrics,
  SERVER_ID,
} from './helpers.ts'

// One JSON line per verification: captured (and kept off the test output) for the log tests.
const log = vi.spyOn(console, 'log').mockImplementation(() => {})
const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})

beforeAll(async () => {
  configureSecret()
  await putUser('alice', 'wonderland', { groups: ['admin', 'ops'] })
  await putUser('carol', 'c4rol', { disabled: true })
  await putUser('harry', 'htdigest-pass', { md5Only: true })
})

/** The last authority.verify line logged. */
function lastLine(): Record<string, unknown> {
  return JSON.parse(String(log.mock.calls.at(-1)?.[0]))
}

async function verdict(response: Response): Promise<unknown> {
  expect(response.status).toBe(200)
  expect(response.headers.get('Content-Type')).toMatch(/^application\/json/)
  expect(response.headers.get('Cache-Control')).toBe('no-store')
  return response.json()
}

describe('every algorithm and qop verifies', () => {
  const qops: (Qop | 'none')[] = ['auth', 'auth-int', 'none']
  for (const algorithm of ALGORITHMS) {
    for (const qop of qops) {
      it(`${algorithm}, qop ${qop}`, async () => {
        const request = await clientRequest({
          username: 'alice',
          password: 'wonderland',
          algorithm,
          qop,
          method: 'POST',
          body: '{"hello":"world"}',
        })
        expect(await verdict(await postVerify(request))).toEqual({
          result: 'ok',
          principal: { name: 'alice', groups: ['admin', 'ops'] },
          sessionKey: baseHA1(hashOf(algorithm), 'alice', REALM, 'wonderland'),
          algorithm,
        })
      })
    }
  }

  it('no algorithm directive means MD5', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    expect(request.directives.algorithm).toBeUndefined()
    const body = (await verdict(await postVerify(request))) as { algorithm: string }
    expect(body.algorithm).toBe('MD5')
  })

  it('a response in upper-case hex is the same response', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    request.directives.response = request.directives.response.toUpperCase()
    expect(await verdict(await postVerify(request))).toMatchObject({ result: 'ok' })
  })

  it('auth-int binds the body: another body hash is refused', async () => {
    const request = await clientRequest({
      username: 'alice',
      password: 'wonderland',
      algorithm: 'SHA-256',
      qop: 'auth-int',
      body: 'original',
    })
    request.bodyHash = 'f'.repeat(64)
    expect(await verdict(await postVerify(request))).toEqual({
      result: 'denied',
      reason: 'logon_denied',
    })
  })

  it('the method enters A2: another method is refused', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    request.method = 'DELETE'
    expect(await verdict(await postVerify(request))).toMatchObject({ reason: 'logon_denied' })
  })
})

describe('userhash (RFC 7616 §3.9.2 user, realm and password)', () => {
  const realm = RFC_REALM
  const name = 'Jäsøn Doe'
  const password = 'Secret, or not?'

  beforeAll(async () => {
    await putUser(name, password, { realm, groups: ['json'] })
  })

  it('stores the RFC values (SHA-512/256 as corrected by erratum 4897)', async () => {
    expect(userhash('SHA-512-256', name, realm)).toBe(
      '793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b'
    )
    const request = await clientRequest({
      username: name,
      password,
      realm,
      algorithm: 'SHA-512-256',
      userhash: true,
      uri: '/doe.json',
    })
    expect(request.directives.username).toBe(
      '793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b'
    )
    expect(await verdict(await postVerify(request))).toEqual({
      result: 'ok',
      principal: { name, groups: ['json'] },
      sessionKey: '2d3d9f12c9f3d30011259dc5fecee005ae24de40e3e1f61806d03e65f1e6024f',
      algorithm: 'SHA-512-256',
    })
  })

  for (const algorithm of ['MD5', 'SHA-256-sess', 'SHA-512-256-sess'] as const) {
    it(`finds the user by the ${hashOf(algorithm)} userhash (${algorithm})`, async () => {
      const request = await clientRequest({
        username: name,
        password,
        realm,
        algorithm,
        userhash: true,
      })
      expect(await verdict(await postVerify(request))).toMatchObject({
        result: 'ok',
        principal: { name },
      })
    })
  }

  it('accepts the userhash in upper-case hex', async () => {
    const request = await clientRequest({ username: name, password, realm, userhash: true })
    request.directives.username = request.directives.username.toUpperCase()
    expect(await verdict(await postVerify(request))).toMatchObject({ result: 'ok' })
  })

  it('a userhash of another hash function finds nobody', async () => {
    const request = await clientRequest({
      username: name,
      password,
      realm,
      algorithm: 'SHA-256',
      userhash: true,
    })
    request.directives.username = userhash('SHA-512-256', name, realm)
    expect(await verdict(await postVerify(request))).toEqual({
      result: 'denied',
      reason: 'logon_denied',
    })
  })

  it('a plain name flagged userhash=true finds nobody', async () => {
    const request = await clientRequest({ username: name, password, realm })
    request.directives.userhash = true
    expect(await verdict(await postVerify(request))).toMatchObject({ reason: 'logon_denied' })
  })
})

describe('denials do not tell unknown user, wrong password and disabled apart', () => {
  async function answer(username: string, password: string): Promise<[number, string, string]> {
    const response = await postVerify(await clientRequest({ username, password }))
    return [response.status, response.headers.get('Content-Type') ?? '', await response.text()]
  }

  it('gives byte-identical answers', async () => {
    const wrongPassword = await answer('alice', 'not-wonderland')
    const unknownUser = await answer('mallory', 'wonderland')
    const disabled = await answer('carol', 'c4rol')
    const disabledWrong = await answer('carol', 'nope')
    expect(wrongPassword).toEqual([
      200,
      'application/json',
      '{"result":"denied","reason":"logon_denied"}',
    ])
    expect(unknownUser).toEqual(wrongPassword)
    expect(disabled).toEqual(wrongPassword)
    expect(disabledWrong).toEqual(wrongPassword)
  })

  it('but logs why, without secrets', async () => {
    log.mockClear()
    await answer('mallory', 'x')
    await answer('alice', 'x')
    await answer('carol', 'c4rol')
    const good = await clientRequest({ username: 'alice', password: 'wonderland' })
    const okResponse = (await (await postVerify(good)).json()) as { sessionKey: string }
    const lines = log.mock.calls.map((call) => JSON.parse(String(call[0])))
    expect(lines.map((line) => [line.result, line.detail, line.user])).toEqual([
      ['logon_denied', 'unknown_user', undefined],
      ['logon_denied', 'wrong_response', 'alice'],
      ['logon_denied', 'disabled', 'carol'],
      ['ok', undefined, 'alice'],
    ])
    expect(lines[3]).toMatchObject({
      event: 'authority.verify',
      realm: REALM,
      serverId: SERVER_ID,
      status: 200,
      algorithm: 'MD5',
    })
    const text = log.mock.calls.join('\n')
    expect(text).not.toContain(okResponse.sessionKey)
    expect(text).not.toContain(good.directives.response)
  })

  it('never logs what was sent in place of an unknown name', async () => {
    // A password typed into the user name field must not end up in the logs.
    const typed = 'Tr0ub4dor&3-typed-as-name'
    const all = [log, warn, vi.spyOn(console, 'error').mockImplementation(() => {})]
    for (const spy of all) spy.mockClear()
    const plain = await clientRequest({ username: typed, password: 'x' })
    const hashed = await clientRequest({ username: typed, password: 'x', userhash: true })
    const invalid = await clientRequest({ username: `${typed}:with-colon`, password: 'x' })
    const corrupt = await clientRequest({ username: 'dora', password: 'x' })
    await authorityEnv.USERS.put('user:digest-gate:dora', '{"not":"a record"}')
    for (const request of [plain, hashed, invalid, corrupt]) {
      expect(await verdict(await postVerify(request))).toMatchObject({ reason: 'logon_denied' })
    }
    const output = all.flatMap((spy) => spy.mock.calls.map((call) => call.join(' '))).join('\n')
    expect(output).not.toContain(typed)
    expect(output).not.toContain(hashed.directives.username)
    const lines = log.mock.calls.map((call) => JSON.parse(String(call[0])))
    expect(lines.map((line) => [line.detail, line.user, line.userhash])).toEqual([
      ['unknown_user', undefined, false],
      ['unknown_user', undefined, true],
      ['invalid_name', undefined, false],
      // The name of a stored record is known to the store: the admin needs it to repair it.
      ['corrupt_record', 'dora', false],
    ])
  })

  it('a realm outside ALLOWED_REALMS is a logon denial', async () => {
    authorityEnv.ALLOWED_REALMS = 'elsewhere, another'
    try {
      const request = await clientRequest({ username: 'alice', password: 'wonderland' })
      expect(await verdict(await postVerify(request))).toMatchObject({ reason: 'logon_denied' })
      authorityEnv.ALLOWED_REALMS = `elsewhere, ${REALM}`
      expect(await verdict(await postVerify(request))).toMatchObject({ result: 'ok' })
    } finally {
      delete authorityEnv.ALLOWED_REALMS
    }
  })
})

describe('htdigest imports (MD5 only)', () => {
  it('log in with MD5 and MD5-sess', async () => {
    for (const algorithm of ['MD5', 'MD5-sess'] as const) {
      const request = await clientRequest({
        username: 'harry',
        password: 'htdigest-pass',
        algorithm,
      })
      expect(await verdict(await postVerify(request))).toMatchObject({ result: 'ok' })
    }
  })

  it('are refused SHA-256 with unsupported_algorithm and a log line saying why', async () => {
    warn.mockClear()
    const request = await clientRequest({
      username: 'harry',
      password: 'htdigest-pass',
      algorithm: 'SHA-256',
    })
    expect(await verdict(await postVerify(request))).toEqual({
      result: 'denied',
      reason: 'unsupported_algorithm',
    })
    const line = JSON.parse(String(warn.mock.calls.at(-1)?.[0]))
    expect(line).toMatchObject({
      event: 'authority.unsupported_algorithm',
      user: 'harry',
      algorithm: 'SHA-256',
    })
    expect(line.message).toContain('offer MD5')
  })
})

describe('the nonce must name the calling gate', () => {
  it('a nonce of another gate is server_mismatch', async () => {
    const request = await clientRequest({
      username: 'alice',
      password: 'wonderland',
      nonce: await gateNonce('gate-elsewhere'),
    })
    expect(await verdict(await postVerify(request))).toEqual({
      result: 'denied',
      reason: 'server_mismatch',
    })
  })

  it('an unreadable nonce is server_mismatch', async () => {
    for (const nonce of [
      'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    ]) {
      const request = await clientRequest({ username: 'alice', password: 'wonderland', nonce })
      expect(await verdict(await postVerify(request))).toMatchObject({ reason: 'server_mismatch' })
    }
  })
})

describe('gate authentication', () => {
  async function refused(response: Response): Promise<string> {
    expect(response.status).toBe(401)
    expect(response.headers.get('WWW-Authenticate')).toMatch(/^Bearer /)
    const body = (await response.json()) as { error: string; message: string }
    expect(body.error).toBe('unauthorized')
    return body.message
  }

  it('refuses a missing token', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    await refused(await postVerify(request, { token: null }))
    expect(lastLine()).toMatchObject({ result: 'unauthorized_caller', detail: 'no_token' })
  })

  it('refuses malformed and forged tokens', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    const good = await gateToken()
    const [prefix, payload, mac] = good.split('.') as [string, string, string]
    const other = (await gateToken({ serverId: 'gate-other' })).split('.')[1]
    const cases: [string, string][] = [
      ['v2.garbage', 'malformed_token'],
      [`v3.${payload}.${mac}`, 'malformed_token'],
      [`${prefix}.${payload}.${mac.slice(0, -2)}AA`, 'forged_token'],
      [`${prefix}.${other}.${mac}`, 'forged_token'], // gate-other's claims, gate-test's MAC
      [await gateToken({ secret: 'another-authority-secret' }), 'forged_token'],
      [`${good}.x`, 'malformed_token'],
    ]
    for (const [token, detail] of cases) {
      expect(await refused(await postVerify(request, { token }))).toBe(
        'a valid gate token is required'
      )
      expect(lastLine()).toMatchObject({ result: 'unauthorized_caller', detail, status: 401 })
    }
  })

  it('refuses the valid token of another gate', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    await refused(await postVerify(request, { token: await gateToken({ serverId: 'gate-other' }) }))
    expect(lastLine()).toMatchObject({ detail: 'server_id_not_token', serverId: 'gate-other' })
  })

  it('refuses an expired token, naming the gate in the log and the expiry in the answer', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    const expiresAt = Math.floor(Date.now() / 1000) - 60
    const message = await refused(
      await postVerify(request, { token: await gateToken({ expiresAt }) })
    )
    expect(message).toContain(`expired at ${new Date(expiresAt * 1000).toISOString()}`)
    expect(message).toContain('npm run users -- token')
    expect(lastLine()).toMatchObject({
      result: 'unauthorized_caller',
      detail: 'expired_token',
      serverId: SERVER_ID,
    })
  })

  it('refuses a token of format v1 with advice to mint a new one', async () => {
    // The v1 token of gate-test: serverId and HMAC(secret, "digest-gate token v1:" + serverId).
    const key = await crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(authorityEnv.AUTHORITY_SECRET),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign']
    )
    const mac = await crypto.subtle.sign(
      'HMAC',
      key,
      new TextEncoder().encode(`digest-gate token v1:${SERVER_ID}`)
    )
    const v1 = `v1.${encodeBase64Url(new TextEncoder().encode(SERVER_ID))}.${encodeBase64Url(new Uint8Array(mac))}`
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    const message = await refused(await postVerify(request, { token: v1 }))
    expect(message).toContain('no longer accepted')
    expect(message).toContain('npm run users -- token')
    expect(lastLine()).toMatchObject({ detail: 'outdated_token_format' })
  })

  it('verifies only the realms the token names', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    const elsewhere = await gateToken({ realms: ['elsewhere'] })
    expect(await refused(await postVerify(request, { token: elsewhere }))).toContain('realm')
    expect(lastLine()).toMatchObject({
      result: 'unauthorized_caller',
      detail: 'realm_not_in_token',
      serverId: SERVER_ID,
      realm: REALM,
    })
    const both = await gateToken({ realms: ['elsewhere', REALM] })
    expect(await verdict(await postVerify(request, { token: both }))).toMatchObject({
      result: 'ok',
    })
  })

  it('refuses everything without AUTHORITY_SECRET (500, a configuration fault)', async () => {
    delete authorityEnv.AUTHORITY_SECRET
    try {
      const response = await postVerify({})
      expect(response.status).toBe(500)
      expect(await response.json()).toMatchObject({ error: 'internal' })
      expect((await exports.default.fetch('https://authority.test/healthz')).status).toBe(503)
    } finally {
      configureSecret()
    }
  })
})

describe('bad requests get 4xx JSON, never 5xx', () => {
  async function rejected(response: Response, status: number, error: string): Promise<string> {
    expect(response.status).toBe(status)
    const body = (await response.json()) as { error: string; message: string }
    expect(body.error).toBe(error)
    return body.message
  }

  it('broken JSON', async () => {
    await rejected(await postVerify('{"version":1,', { raw: true }), 400, 'invalid_request')
    await rejected(await postVerify('', { raw: true }), 400, 'invalid_request')
  })

  it('invalid UTF-8', async () => {
    const response = await exports.default.fetch('https://authority.test/v1/verify', {
      method: 'POST',
      headers: { Authorization: `Bearer ${await gateToken()}` },
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    })
    await rejected(response, 400, 'invalid_request')
  })

  it('missing and mistyped fields, named in the message', async () => {
    const good = await clientRequest({ username: 'alice', password: 'wonderland' })
    const cases: [unknown, string][] = [
      [[], 'body'],
      [{ ...good, version: 2 }, 'version'],
      [{ ...good, serverId: undefined }, 'serverId'],
      [{ ...good, method: 'GET /x' }, 'method'],
      [{ ...good, directives: null }, 'directives'],
      [{ ...good, directives: { ...good.directives, nonce: undefined } }, 'directives.nonce'],
      [{ ...good, directives: { ...good.directives, userhash: 'false' } }, 'directives.userhash'],
      [
        { ...good, directives: { ...good.directives, algorithm: 'sha-256' } },
        'directives.algorithm',
      ],
      [{ ...good, directives: { ...good.directives, nc: '00000000g' } }, 'directives.nc'],
      [{ ...good, directives: { ...good.directives, cnonce: undefined } }, 'directives.cnonce'],
      [{ ...good, directives: { ...good.directives, qop: 'auth-int' } }, 'bodyHash'],
    ]
    for (const [body, field] of cases) {
      expect(await rejected(await postVerify(body), 400, 'invalid_request')).toContain(field)
    }
  })

  it('a body over 16 KiB is 413', async () => {
    const good = await clientRequest({ username: 'alice', password: 'wonderland' })
    const big = { ...good, padding: 'x'.repeat(16 * 1024) }
    await rejected(await postVerify(big), 413, 'too_large')
  })

  it('a serverId other than the token names is 401', async () => {
    const request = await clientRequest({
      username: 'alice',
      password: 'wonderland',
      serverId: 'gate-other',
    })
    const response = await postVerify(request)
    expect(response.status).toBe(401)
  })

  it('other paths and methods', async () => {
    expect((await exports.default.fetch('https://authority.test/v1/verify')).status).toBe(405)
    expect((await exports.default.fetch('https://authority.test/')).status).toBe(404)
  })
})

describe('metrics', () => {
  it('count each result', async () => {
    const before = await readMetrics()
    await postVerify(await clientRequest({ username: 'alice', password: 'wonderland' }))
    await postVerify(await clientRequest({ username: 'alice', password: 'nope' }))
    await postVerify(
      await clientRequest({ username: 'alice', password: 'x', nonce: await gateNonce('other') })
    )
    await postVerify(
      await clientRequest({ username: 'harry', password: 'htdigest-pass', algorithm: 'SHA-256' })
    )
    await postVerify('{', { raw: true })
    await postVerify({}, { token: null })
    const after = await readMetrics()
    const delta = Object.fromEntries(
      Object.keys(after).map((key) => [key, (after[key] ?? 0) - (before[key] ?? 0)])
    )
    expect(delta).toEqual({
      ok: 1,
      logon_denied: 1,
      server_mismatch: 1,
      unsupported_algorithm: 1,
      invalid: 1,
      unauthorized_caller: 1,
    })
  })

  it('need the METRICS_TOKEN as bearer, compared whole', async () => {
    warn.mockClear()
    const get = (authorization?: string) =>
      exports.default.fetch('https://authority.test/metrics', {
        headers: authorization === undefined ? {} : { Authorization: authorization },
      })
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Bearer ${METRICS_TOKEN.slice(0, -1)}`,
      `Bearer ${METRICS_TOKEN}x`,
      `Basic ${btoa(`x:${METRICS_TOKEN}`)}`,
    ]) {
      const response = await get(authorization)
      expect(response.status).toBe(401)
      expect(response.headers.get('WWW-Authenticate')).toMatch(/^Bearer /)
      expect(await response.text()).not.toContain('authority_verify_total')
    }
    const refusals = warn.mock.calls.map((call) => JSON.parse(String(call[0])))
    expect(refusals.map((line) => [line.event, line.detail])).toEqual([
      ['authority.metrics_refused', 'no_token'],
      ['authority.metrics_refused', 'bad_token'],
      ['authority.metrics_refused', 'bad_token'],
      ['authority.metrics_refused', 'bad_token'],
      ['authority.metrics_refused', 'no_token'],
    ])
    expect(warn.mock.calls.join('\n')).not.toContain(METRICS_TOKEN.slice(0, 8))
    const response = await get(`Bearer ${METRICS_TOKEN}`)
    expect(response.status).toBe(200)
    expect(response.headers.get('Content-Type')).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(await response.text()).toContain('authority_verify_total{result="ok"}')
  })

  it('are off (404, whatever the method) without METRICS_TOKEN', async () => {
    delete authorityEnv.METRICS_TOKEN
    try {
      for (const method of ['GET', 'POST']) {
        const response = await exports.default.fetch('https://authority.test/metrics', {
          method,
          headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
        })
        expect(response.status).toBe(404)
        expect(await response.json()).toMatchObject({ error: 'not_found' })
      }
    } finally {
      configureSecret()
    }
  })

  it('health is public and tells nothing secret', async () => {
    const response = await exports.default.fetch('https://authority.test/healthz')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ status: 'ok' })
  })
})

describe('RPC entrypoint (service binding)', () => {
  const rpc = (
    exports as unknown as {
      AuthorityEntrypoint: { verify(token: unknown, request: unknown): Promise<VerifyRpcResult> }
    }
  ).AuthorityEntrypoint

  it('verifies through the same code path', async () => {
    const request = await clientRequest({
      username: 'alice',
      password: 'wonderland',
      algorithm: 'SHA-256',
    })
    expect(await rpc.verify(await gateToken(), request)).toMatchObject({
      result: 'ok',
      principal: { name: 'alice' },
      algorithm: 'SHA-256',
    })
    request.directives.response = '0'.repeat(64)
    expect(await rpc.verify(await gateToken(), request)).toEqual({
      result: 'denied',
      reason: 'logon_denied',
    })
  })

  it('returns errors with their status', async () => {
    const request = await clientRequest({ username: 'alice', password: 'wonderland' })
    expect(await rpc.verify('nope', request)).toMatchObject({ error: 'unauthorized', status: 401 })
    expect(await rpc.verify(undefined, request)).toMatchObject({ status: 401 })
    expect(await rpc.verify(await gateToken(), { version: 1 })).toMatchObject({
      error: 'invalid_request',
      status: 400,
    })
    expect(
      await rpc.verify(await gateToken(), { ...request, padding: 'x'.repeat(17000) })
    ).toMatchObject({ error: 'too_large', status: 413 })
  })
})
