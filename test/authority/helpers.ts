/**
 * Shared fixtures of the authority tests (workerd): a gate token, nonces minted like the gate's,
 * users written to the USERS namespace, and requests built the way a client computes them.
 */
import { env, exports } from 'cloudflare:workers'
import type { AuthorityEnv } from '../../authority/src/env.ts'
import { hashesForPassword, recordEntries, type UserRecord } from '../../authority/src/store.ts'
import { type GateTokenClaims, mintGateToken } from '../../src/authority-protocol/token.ts'
import type { VerifyRequest } from '../../src/authority-protocol/v1.ts'
import { computeResponse, hashOf } from '../../src/digest/algorithms.ts'
import { hashHex } from '../../src/digest/hash.ts'
import { createTokenMinter, newContextHandle } from '../../src/digest/tokens.ts'
import type { AlgorithmName, Qop } from '../../src/digest/types.ts'

export const SECRET = 'test-authority-secret-0123456789abcdef'
export const SERVER_ID = 'gate-test'
export const REALM = 'digest-gate'
/** The realm of RFC 7616 §3.9.2's example user. */
export const RFC_REALM = 'api@example.org'
export const URL_VERIFY = 'https://authority.test/v1/verify'

export const authorityEnv = env as unknown as AuthorityEnv

export const METRICS_TOKEN = 'test-metrics-token-0123456789abcdef'

/** The worker reads its secrets from its env; tests provide them (no .dev.vars in CI). */
export function configureSecret(): void {
  authorityEnv.AUTHORITY_SECRET = SECRET
  authorityEnv.METRICS_TOKEN = METRICS_TOKEN
}

const minter = createTokenMinter({ current: { id: 7, secret: 'the-gate-nonce-key' } })

/** A nonce as the gate mints it, naming `serverId` (the authority cannot check its MAC). */
export async function gateNonce(serverId = SERVER_ID): Promise<string> {
  return (await minter).mintNonce({
    serverId,
    handle: newContextHandle(),
    now: Math.floor(Date.now() / 1000),
  })
}

/** A gate token for SERVER_ID, REALM and RFC_REALM, valid for an hour, unless told otherwise. */
export function gateToken(options: Partial<GateTokenClaims> & { secret?: string } = {}) {
  return mintGateToken(options.secret ?? SECRET, {
    serverId: options.serverId ?? SERVER_ID,
    realms: options.realms ?? [REALM, RFC_REALM],
    expiresAt: options.expiresAt ?? Math.floor(Date.now() / 1000) + 3600,
  })
}

export async function putUser(
  name: string,
  password: string,
  options: Partial<Pick<UserRecord, 'realm' | 'groups' | 'disabled'>> & { md5Only?: boolean } = {}
): Promise<UserRecord> {
  const realm = options.realm ?? REALM
  const all = hashesForPassword(name, realm, password)
  const record: UserRecord = {
    name,
    realm,
    hashes: options.md5Only ? { MD5: all.MD5 } : all,
    groups: options.groups ?? [],
    disabled: options.disabled ?? false,
    source: options.md5Only ? 'htdigest' : 'cli',
    updatedAt: new Date().toISOString(),
  }
  for (const entry of recordEntries(record)) {
    await authorityEnv.USERS.put(entry.key, entry.value, { metadata: entry.metadata })
  }
  return record
}

export interface ClientInput {
  username: string
  password: string
  realm?: string
  algorithm?: AlgorithmName
  /** 'none' = RFC 2069 form. */
  qop?: Qop | 'none'
  /** Send H(username:realm) instead of the name. */
  userhash?: boolean
  method?: string
  uri?: string
  body?: string
  nonce?: string
  serverId?: string
}

/** A VerifyRequest carrying the response a correct client computes from `password`. */
export async function clientRequest(input: ClientInput): Promise<VerifyRequest> {
  const realm = input.realm ?? REALM
  const algorithm = input.algorithm
  const hash = hashOf(algorithm ?? 'MD5')
  const qop = input.qop === 'none' ? undefined : (input.qop ?? 'auth')
  const nonce = input.nonce ?? (await gateNonce())
  const method = input.method ?? 'GET'
  const uri = input.uri ?? '/private/report?x=1'
  const nc = '00000001'
  const cnonce = 'f2/wE4q74E6zIJEt'
  const bodyHash = qop === 'auth-int' ? hashHex(hash, input.body ?? '') : undefined
  const ha1 = hashHex(hash, `${input.username}:${realm}:${input.password}`)
  const response = computeResponse({
    algorithm: algorithm ?? 'MD5',
    ha1,
    nonce,
    nc: qop ? nc : undefined,
    cnonce,
    qop,
    method,
    uri,
    bodyHash,
  })
  const username = input.userhash ? hashHex(hash, `${input.username}:${realm}`) : input.username
  const request: VerifyRequest = {
    version: 1,
    serverId: input.serverId ?? SERVER_ID,
    method,
    directives: { username, userhash: input.userhash ?? false, realm, nonce, uri, response },
  }
  if (algorithm !== undefined) request.directives.algorithm = algorithm
  if (qop !== undefined) Object.assign(request.directives, { qop, nc, cnonce })
  else if (algorithm?.endsWith('-sess')) request.directives.cnonce = cnonce
  if (bodyHash !== undefined) request.bodyHash = bodyHash
  return request
}

/** POST /v1/verify through the worker's fetch handler. */
export async function postVerify(
  body: unknown,
  options: { token?: string | null; raw?: boolean } = {}
): Promise<Response> {
  const token = options.token === undefined ? await gateToken() : options.token
  const headers: Record<string, string> = { 'Content-Type': 'application/json' }
  if (token !== null) headers.Authorization = `Bearer ${token}`
  return exports.default.fetch(URL_VERIFY, {
    method: 'POST',
    headers,
    body: options.raw ? (body as string) : JSON.stringify(body),
  })
}

/** The counters of GET /metrics, by result label. */
export async function readMetrics(): Promise<Record<string, number>> {
  const response = await exports.default.fetch('https://authority.test/metrics', {
    headers: { Authorization: `Bearer ${METRICS_TOKEN}` },
  })
  const text = await response.text()
  const counts: Record<string, number> = {}
  for (const match of text.matchAll(/^authority_verify_total\{result="([a-z_]+)"\} (\d+)$/gm)) {
    counts[match[1] as string] = Number(match[2])
  }
  return counts
}
