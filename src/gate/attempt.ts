/**
 * One authentication attempt as the steps after parsing share it, and what they all do with it:
 * accept it, give the brakes their count back, hash its body for auth-int.
 */
import { hashOf } from '../digest/algorithms.ts'
import { hashStreamHex } from '../digest/hash.ts'
import type { DigestCredentials } from '../digest/types.ts'
import type { ContextRequest } from './context-types.ts'
import type { ResolvedOptions } from './resolve-options.ts'
import type { Acceptance } from './verdict.ts'

/** The request as authentication sees it. */
export interface Incoming {
  method: string
  url: URL
  authorization: string | undefined
  /** A fresh copy of the body, for auth-int. */
  body: () => ReadableStream<Uint8Array> | null
  /** Content-Length as declared, when it is. */
  contentLength: number | undefined
  /** The client's brake bucket (address, IPv6 /64, Worker tenant). */
  bucket: string
  /** Channel facts for BINDING; undefined when binding is off or none were presented. */
  binding: string | undefined
  now: number
  /** Keep background work (brake refunds) alive past the response. */
  waitUntil: (p: Promise<unknown>) => void
}

/** What the steps after parsing share. */
export interface Attempt {
  handle: string
  request: ContextRequest
  credentials: DigestCredentials
  nonceAgeSeconds: number
  incoming: Incoming
}

export function accept(
  a: Attempt,
  principal: Acceptance['principal'],
  rspauth: string,
  verifiedBy: Acceptance['verifiedBy']
): Acceptance {
  return {
    kind: 'accept',
    principal,
    rspauth,
    verifiedBy,
    handle: a.handle,
    algorithm: a.request.algorithm,
    credentials: a.credentials,
    nonceAgeSeconds: a.nonceAgeSeconds,
  }
}

/** A verified attempt the brakes admitted gives its count back. */
export function refund(o: ResolvedOptions, a: Attempt): void {
  if (!o.brakes) return
  const { bucket, username, now } = a.request
  a.incoming.waitUntil(
    o.brakes.store.succeeded(bucket, username, now, o.brakePolicy).catch(() => {})
  )
}

/**
 * H(entity-body) for auth-int, reading at most `maxAuthIntBody` bytes; undefined beyond that.
 * Only called once a context or the brakes have let the attempt go on.
 */
export async function hashBody(o: ResolvedOptions, a: Attempt): Promise<string | undefined> {
  const limit = o.maxAuthIntBody
  if (a.incoming.contentLength !== undefined && a.incoming.contentLength > limit) return undefined
  const body = a.incoming.body()
  let seen = 0
  let over = false
  const counted =
    body === null
      ? null
      : body.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              seen += chunk.byteLength
              if (seen > limit) {
                over = true
                controller.error(new RangeError('body too large'))
                return
              }
              controller.enqueue(chunk)
            },
          })
        )
  try {
    const hash = await hashStreamHex(hashOf(a.request.algorithm), counted)
    return over ? undefined : hash
  } catch (err) {
    if (over) return undefined
    throw err
  }
}

