/** HTTP plumbing of the authority: bounded body reading, bearer tokens, JSON responses. */
import { timingSafeEqualString } from '../../src/digest/algorithms.ts'
import { encodeBase64Url } from '../../src/digest/base64url.ts'
import { readBodyUpTo } from '../../src/digest/bounded-body.ts'
import type { BodyRead } from './verify.ts'

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/** The token of `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(request: Request): string | undefined {
  const header = request.headers.get('Authorization')
  const match = header === null ? null : /^bearer +(\S+) *$/i.exec(header)
  return match?.[1]
}

/**
 * Whether the request carries `Authorization: Bearer <expected>`. Both sides are hashed first,
 * so the constant-time comparison also hides the expected token's length.
 */
export async function bearerMatches(request: Request, expected: string): Promise<boolean> {
  const given = bearerToken(request)
  if (given === undefined) return false
  const [a, b] = await Promise.all(
    [given, expected].map(async (text) =>
      encodeBase64Url(
        new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
      )
    )
  )
  return timingSafeEqualString(a as string, b as string)
}

/**
 * Reads a JSON body of at most `limit` bytes. Stops reading as soon as the limit is passed, so an
 * oversized body costs no more than `limit` bytes of memory.
 */
export async function readJsonBody(request: Request, limit: number): Promise<BodyRead> {
  const tooLarge = {
    kind: 'refused',
    status: 413,
    message: `the body exceeds ${limit} bytes`,
  } as const
  const declared = Number(request.headers.get('Content-Length') ?? '0')
  if (declared > limit) return tooLarge
  const bytes = await readBodyUpTo(request.body, limit)
  if (bytes === undefined) return tooLarge
  let text: string
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    return { kind: 'refused', status: 400, message: 'the body is not valid UTF-8' }
  }
  try {
    return { kind: 'read', value: JSON.parse(text) }
  } catch {
    return { kind: 'refused', status: 400, message: 'the body is not valid JSON' }
  }
}

/** Size check for an RPC argument: the same limit as over HTTP, on its JSON form. */
export function checkRpcBody(value: unknown, limit: number): BodyRead {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch {
    return { kind: 'refused', status: 400, message: 'the request is not representable as JSON' }
  }
  if (json === undefined) return { kind: 'refused', status: 400, message: 'the request is missing' }
  if (new TextEncoder().encode(json).byteLength > limit) {
    return { kind: 'refused', status: 413, message: `the request exceeds ${limit} bytes as JSON` }
  }
  // Validate the JSON form, exactly what an HTTP caller would have sent.
  return { kind: 'read', value: JSON.parse(json) }
}

export function jsonResponse(status: number, body: unknown, headers?: HeadersInit): Response {
  const response = Response.json(body, { status, headers })
  // Verdicts carry session keys: nothing on the way may keep a copy.
  response.headers.set('Cache-Control', 'no-store')
  return response
}
