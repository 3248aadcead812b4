/**
 * The one verification code path, shared by HTTP (POST /v1/verify) and RPC (service binding):
 * authenticate the calling gate, validate the request, check that the token covers its serverId
 * and realm, check that the nonce names that gate, find the user, recompute the response, answer
 * with the principal and the session key.
 */

import {
  type GateTokenCheck,
  type GateTokenClaims,
  verifyGateToken,
} from '../../src/authority-protocol/token.ts'
import type {
  ErrorBody,
  ErrorStatus,
  VerifyRequest,
  VerifyResponse,
} from '../../src/authority-protocol/v1.ts'
import { validateVerifyRequest } from '../../src/authority-protocol/validate.ts'
import { computeResponse, hashOf, timingSafeEqualString } from '../../src/digest/algorithms.ts'
import { readNonceFields } from '../../src/digest/tokens.ts'
import type { AlgorithmName } from '../../src/digest/types.ts'
import { type AuthorityEnv, allowedRealms } from './env.ts'
import { logVerification, type VerifyLogLine } from './log.ts'
import { countVerification, type VerifyResult } from './metrics.ts'
import { findUser, HASH_NAMES, HEX_LENGTH, type UserRecord } from './store.ts'

export type Outcome =
  | { status: 200; body: VerifyResponse }
  | { status: ErrorStatus; body: ErrorBody }

/** What the transport read from the caller: a JSON value, or why there is none. */
export type BodyRead =
  | { kind: 'read'; value: unknown }
  | { kind: 'refused'; status: 400 | 413; message: string }

/**
 * Runs one verification. `token` is the bearer token (undefined when absent); `readBody` is
 * called only once the caller is authenticated, so strangers cannot make us parse anything.
 * Never throws: an unexpected fault becomes 500 `internal`.
 */
export async function runVerification(
  env: AuthorityEnv,
  token: string | undefined,
  readBody: () => Promise<BodyRead>
): Promise<Outcome> {
  // Every exit below sets the result; 'invalid' until the request has been validated.
  const log: VerifyLogLine = { result: 'invalid', status: 0 }
  let outcome: Outcome
  try {
    outcome = await verify(env, token, readBody, log)
  } catch (error) {
    console.error(
      JSON.stringify({ event: 'authority.error', message: String((error as Error)?.message) })
    )
    outcome = errorOutcome(500, 'internal', 'the authority failed to verify the request')
    log.detail = 'internal_error'
  }
  log.status = outcome.status
  if (outcome.status === 500) log.result = 'error'
  else countVerification(log.result as VerifyResult)
  logVerification(log)
  return outcome
}

async function verify(
  env: AuthorityEnv,
  token: string | undefined,
  readBody: () => Promise<BodyRead>,
  log: VerifyLogLine
): Promise<Outcome> {
  const secret = env.AUTHORITY_SECRET
  if (secret === undefined || secret.length === 0) {
    log.detail = 'no_secret'
    return errorOutcome(500, 'internal', 'the authority has no AUTHORITY_SECRET configured')
  }
  const caller = await authenticateCaller(secret, token, log)
  if (caller.kind === 'refused') return caller.outcome
  const { claims } = caller

  const body = await readBody()
  if (body.kind === 'refused') {
    log.detail = body.status === 413 ? 'too_large' : 'unreadable_body'
    return errorOutcome(
      body.status,
      body.status === 413 ? 'too_large' : 'invalid_request',
      body.message
    )
  }
  const validated = validateVerifyRequest(body.value)
  if (validated.kind === 'invalid') {
    log.detail = `invalid_field:${validated.error.field}`
    return errorOutcome(400, 'invalid_request', validated.error.message)
  }
  const request = validated.value
  const { directives } = request
  // Not the user name: until a user is found it may be anything, a password typed in its place.
  log.realm = directives.realm
  log.userhash = directives.userhash
  log.algorithm = directives.algorithm ?? 'MD5'
  if (request.serverId !== claims.serverId) {
    return unauthorized(
      log,
      'server_id_not_token',
      'serverId differs from the server named by the token'
    )
  }
  if (!claims.realms.includes(directives.realm)) {
    return unauthorized(
      log,
      'realm_not_in_token',
      "the gate token does not cover the request's realm: mint one naming it (--realm)"
    )
  }
  return decide(env, request, log)
}

const REMINT = 'mint a new one with `npm run users -- token <serverId>`'

type CallerCheck =
  | { kind: 'authenticated'; claims: GateTokenClaims }
  | { kind: 'refused'; outcome: Outcome }

/** The token's claims, or the 401 that refuses the caller (before its body is read). */
async function authenticateCaller(
  secret: string,
  token: string | undefined,
  log: VerifyLogLine
): Promise<CallerCheck> {
  if (token === undefined) {
    const outcome = unauthorized(log, 'no_token', 'a valid gate token is required')
    return { kind: 'refused', outcome }
  }
  const check = await verifyGateToken(secret, token)
  if (check.kind === 'valid') {
    log.serverId = check.claims.serverId
    return { kind: 'authenticated', claims: check.claims }
  }
  return { kind: 'refused', outcome: refusal(check, log) }
}

function refusal(check: Extract<GateTokenCheck, { kind: 'invalid' }>, log: VerifyLogLine): Outcome {
  if (check.reason === 'expired') {
    log.serverId = check.claims.serverId
    const when = new Date(check.claims.expiresAt * 1000).toISOString()
    return unauthorized(log, 'expired_token', `the gate token expired at ${when}: ${REMINT}`)
  }
  if (check.reason === 'outdated_format') {
    const message = `this gate token format is no longer accepted: ${REMINT}`
    return unauthorized(log, 'outdated_token_format', message)
  }
  return unauthorized(log, `${check.reason}_token`, 'a valid gate token is required')
}

/** The verdict on a valid request from an authenticated gate (always 200). */
async function decide(
  env: AuthorityEnv,
  request: VerifyRequest,
  log: VerifyLogLine
): Promise<Outcome> {
  const { directives } = request
  const nonceServer = readNonceFields(directives.nonce)?.serverId
  if (nonceServer !== request.serverId) {
    log.detail = nonceServer === undefined ? 'unreadable_nonce' : 'nonce_names_other_server'
    return denied(log, 'server_mismatch')
  }

  const algorithm: AlgorithmName = directives.algorithm ?? 'MD5'
  const hash = hashOf(algorithm)
  const realms = allowedRealms(env)
  const realmAllowed = realms === undefined || realms.has(directives.realm)
  const lookup = realmAllowed
    ? await findUser(
        env.USERS,
        directives.realm,
        directives.username,
        directives.userhash ? { userhash: true, hash } : { userhash: false }
      )
    : ({ kind: 'not_found', reason: 'realm_not_allowed' } as const)
  const record = lookup.kind === 'found' ? lookup.record : undefined
  // Canonical names only: a found user, or the stored name of a record that failed to decode.
  if (record !== undefined) log.user = record.name
  else if (lookup.kind === 'not_found' && lookup.reason === 'corrupt_record') log.user = lookup.name

  const stored = record?.hashes[hash]
  if (record !== undefined && stored === undefined) {
    log.detail = `no_${hash}_hash_stored:${record.source}`
    warnUnsupported(record, algorithm)
    return denied(log, 'unsupported_algorithm')
  }

  // An unknown user costs the same hashing as a known one: a fixed stand-in key of the right size.
  const expected = computeResponse({
    algorithm,
    ha1: stored ?? '0'.repeat(HEX_LENGTH[hash]),
    nonce: directives.nonce,
    nc: directives.nc,
    cnonce: directives.cnonce,
    qop: directives.qop,
    method: request.method,
    uri: directives.uri,
    bodyHash: request.bodyHash,
  })
  const matches = timingSafeEqualString(expected, directives.response.toLowerCase())

  if (lookup.kind === 'not_found' || stored === undefined) {
    log.detail = lookup.kind === 'found' ? 'no_hash' : lookup.reason
    return denied(log, 'logon_denied')
  }
  if (!matches) {
    log.detail = 'wrong_response'
    return denied(log, 'logon_denied')
  }
  if (lookup.record.disabled) {
    log.detail = 'disabled'
    return denied(log, 'logon_denied')
  }
  log.result = 'ok'
  return {
    status: 200,
    body: {
      result: 'ok',
      principal: { name: lookup.record.name, groups: [...lookup.record.groups] },
      sessionKey: stored,
      algorithm,
    },
  }
}

/** The admin's clue: which hashes the user has, and how to give it the missing one. */
function warnUnsupported(record: UserRecord, algorithm: AlgorithmName): void {
  const available = HASH_NAMES.filter((name) => record.hashes[name] !== undefined)
  console.warn(
    JSON.stringify({
      event: 'authority.unsupported_algorithm',
      realm: record.realm,
      user: record.name,
      algorithm,
      message: `user has no ${hashOf(algorithm)} hash (source ${record.source}): offer ${available.join(' or ')} to this user, or set a new password with \`npm run users -- passwd\``,
    })
  )
}

function denied(
  log: VerifyLogLine,
  reason: 'logon_denied' | 'server_mismatch' | 'unsupported_algorithm'
): Outcome {
  log.result = reason satisfies VerifyResult
  return { status: 200, body: { result: 'denied', reason } }
}

function unauthorized(log: VerifyLogLine, detail: string, message: string): Outcome {
  log.result = 'unauthorized_caller'
  log.detail = detail
  return errorOutcome(401, 'unauthorized', message)
}

function errorOutcome(status: ErrorStatus, error: ErrorBody['error'], message: string): Outcome {
  return { status, body: { error, message } }
}
