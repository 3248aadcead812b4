/**
 * Strict validation of a VerifyRequest (protocol v1) from untrusted JSON. Hand-written so that
 * every refusal names the field at fault; never throws. Unknown members are ignored (forward
 * compatibility), known members must have exactly the documented shape.
 */
import { ALGORITHMS } from '../digest/algorithms.ts'
import type { AlgorithmName, Qop } from '../digest/types.ts'
import { encodeServerId } from './token.ts'
import type { VerifyRequest } from './v1.ts'

export interface RequestError {
  /** Dotted path of the member at fault, e.g. `directives.nc`; empty for the body itself. */
  field: string
  message: string
}

export type Validated<T> = { kind: 'valid'; value: T } | { kind: 'invalid'; error: RequestError }

const QOPS: readonly Qop[] = ['auth', 'auth-int']

/** RFC 9110 token, bounded: methods are short. */
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/
/** RFC 7616 says 8 hex digits; some clients (old Android) send fewer. It enters the hash as sent. */
const NC = /^[0-9a-fA-F]{1,8}$/
const LOWER_HEX = /^[0-9a-f]+$/

/** Upper bounds on the client-supplied strings (the whole body is bounded at 16 KiB as well). */
const MAX_SHORT = 1024
const MAX_URI = 8192

/** Thrown inside this module only, to unwind to validateVerifyRequest. */
class Invalid extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(message)
    this.field = field
  }
}

type Json = Record<string, unknown>

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function member(object: Json, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined
}

function string(object: Json, key: string, path: string, min: number, max: number): string {
  const value = member(object, key)
  if (typeof value !== 'string') throw new Invalid(path, `${path} must be a string`)
  if (value.length < min || value.length > max) {
    throw new Invalid(path, `${path} must be ${min}-${max} characters long`)
  }
  return value
}

function optionalString(object: Json, key: string, path: string, max: number): string | undefined {
  return member(object, key) === undefined ? undefined : string(object, key, path, 0, max)
}

function oneOf<T extends string>(
  object: Json,
  key: string,
  path: string,
  allowed: readonly T[]
): T | undefined {
  const value = member(object, key)
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new Invalid(path, `${path} must be one of ${allowed.join(', ')}`)
  }
  return value as T
}

function hashLength(algorithm: AlgorithmName): number {
  return algorithm.startsWith('MD5') ? 32 : 64
}

function parseDirectives(input: unknown): VerifyRequest['directives'] {
  if (!isObject(input)) throw new Invalid('directives', 'directives must be an object')
  const userhash = member(input, 'userhash')
  if (typeof userhash !== 'boolean') {
    throw new Invalid('directives.userhash', 'directives.userhash must be a boolean')
  }
  const directives: VerifyRequest['directives'] = {
    username: string(input, 'username', 'directives.username', 0, MAX_SHORT),
    userhash,
    realm: string(input, 'realm', 'directives.realm', 0, MAX_SHORT),
    nonce: string(input, 'nonce', 'directives.nonce', 1, MAX_SHORT),
    uri: string(input, 'uri', 'directives.uri', 1, MAX_URI),
    response: string(input, 'response', 'directives.response', 0, MAX_SHORT),
  }
  const algorithm = oneOf(input, 'algorithm', 'directives.algorithm', ALGORITHMS)
  const qop = oneOf(input, 'qop', 'directives.qop', QOPS)
  const nc = optionalString(input, 'nc', 'directives.nc', 8)
  const cnonce = optionalString(input, 'cnonce', 'directives.cnonce', MAX_SHORT)
  if (nc !== undefined && !NC.test(nc)) {
    throw new Invalid('directives.nc', 'directives.nc must be 1 to 8 hexadecimal digits')
  }
  if (qop !== undefined && (nc === undefined || cnonce === undefined)) {
    const missing = nc === undefined ? 'nc' : 'cnonce'
    throw new Invalid(`directives.${missing}`, `directives.${missing} is required with qop`)
  }
  if (algorithm?.endsWith('-sess') && cnonce === undefined) {
    throw new Invalid('directives.cnonce', `directives.cnonce is required with ${algorithm}`)
  }
  if (algorithm !== undefined) directives.algorithm = algorithm
  if (qop !== undefined) directives.qop = qop
  if (nc !== undefined) directives.nc = nc
  if (cnonce !== undefined) directives.cnonce = cnonce
  return directives
}

function parse(input: unknown): VerifyRequest {
  if (!isObject(input)) throw new Invalid('', 'the request body must be a JSON object')
  if (member(input, 'version') !== 1) {
    throw new Invalid('version', 'version must be 1 (the only protocol version)')
  }
  const serverId = member(input, 'serverId')
  if (typeof serverId !== 'string' || encodeServerId(serverId) === undefined) {
    throw new Invalid('serverId', 'serverId must be 1-64 bytes of valid UTF-8')
  }
  const method = member(input, 'method')
  if (typeof method !== 'string' || !METHOD.test(method)) {
    throw new Invalid('method', 'method must be an HTTP method token (at most 32 characters)')
  }
  const directives = parseDirectives(member(input, 'directives'))
  const request: VerifyRequest = { version: 1, serverId, method, directives }
  const bodyHash = member(input, 'bodyHash')
  const length = hashLength(directives.algorithm ?? 'MD5')
  if (bodyHash !== undefined) {
    if (typeof bodyHash !== 'string' || bodyHash.length !== length || !LOWER_HEX.test(bodyHash)) {
      throw new Invalid(
        'bodyHash',
        `bodyHash must be ${length} lower-case hexadecimal digits (the algorithm's hash)`
      )
    }
    request.bodyHash = bodyHash
  } else if (directives.qop === 'auth-int') {
    throw new Invalid('bodyHash', 'bodyHash is required with qop=auth-int')
  }
  return request
}

/** Checks an untrusted value (parsed JSON or an RPC argument); returns a fresh, typed copy. */
export function validateVerifyRequest(input: unknown): Validated<VerifyRequest> {
  try {
    return { kind: 'valid', value: parse(input) }
  } catch (error) {
    if (error instanceof Invalid) {
      return { kind: 'invalid', error: { field: error.field, message: error.message } }
    }
    // Exotic inputs (getters, proxies over RPC) may throw anything: still a bad request.
    return { kind: 'invalid', error: { field: '', message: 'the request body could not be read' } }
  }
}
