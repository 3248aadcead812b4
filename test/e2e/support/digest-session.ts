/**
 * A Digest session as a real client keeps one (src/digest/client.ts: nonce, nc, cnonce), sending
 * as a given client address: the gate keys its brakes on CF-Connecting-IP, which `wrangler dev`
 * passes through when the client sets it (and sets to 127.0.0.1 otherwise).
 */
import { createDigestClient, type DigestClient } from '../../../src/digest/client.ts'
import type { AlgorithmName } from '../../../src/digest/types.ts'

export interface Answer {
  status: number
  headers: Headers
  body: string
}

export interface DigestSession {
  readonly user: string
  readonly clientIp: string
  /** Every Authorization header the session sent, in order (what an eavesdropper could capture). */
  readonly sent: string[]
  /** One request the client's way (answers a 401 challenge itself), the final answer. */
  get(path: string): Promise<Answer>
  /** The Authorization header the session would send next for `method path` (advances nc). */
  authorizationFor(method: string, path: string): Promise<string>
}

export interface SessionOptions {
  clientIp: string
  algorithm?: AlgorithmName
}

/** A plain request from `clientIp` (no Digest handling). */
export async function send(
  url: string,
  clientIp: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {}
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: { ...init.headers, 'cf-connecting-ip': clientIp },
    body: init.body,
  })
  return { status: response.status, headers: response.headers, body: await response.text() }
}

export function digestSession(
  baseUrl: string,
  user: string,
  password: string,
  options: SessionOptions
): DigestSession {
  const sent: string[] = []
  const client: DigestClient = createDigestClient({
    username: user,
    password,
    algorithm: options.algorithm,
    fetch: (input, init) => {
      const headers = new Headers(init?.headers)
      headers.set('cf-connecting-ip', options.clientIp)
      const authorization = headers.get('authorization')
      if (authorization !== null) sent.push(authorization)
      return fetch(input, { ...init, headers })
    },
  })
  return {
    user,
    clientIp: options.clientIp,
    sent,
    async get(path) {
      const response = await client.fetch(`${baseUrl}${path}`)
      return { status: response.status, headers: response.headers, body: await response.text() }
    },
    async authorizationFor(method, path) {
      const header = await client.authorizationFor(method, `${baseUrl}${path}`)
      if (header === undefined) throw new Error('no challenge known yet: get() something first')
      return header
    },
  }
}
