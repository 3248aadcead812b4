/**
 * Authority protocol v1: the wire types shared by the gate's authority client and any authority.
 * Normative text: docs/authority-protocol.md. Pure TypeScript, no runtime imports.
 *
 * POST {AUTHORITY_URL}   (e.g. https://authority.example.com/v1/verify)
 *   Authorization: Bearer <gate token>      token bound to the gate's server identity, its
 *                                           realms and an expiry
 *   Content-Type: application/json
 *   body: VerifyRequest
 * 200 + VerifyResponse   a verdict (ok or denied)
 * 400 invalid request, 401 caller not authenticated (or its token does not cover the realm),
 * 413 body too large; 5xx = authority fault.
 */
import type { AlgorithmName, DigestCredentials } from '../digest/types.ts'

/** Path of the verification endpoint on the reference authority. */
export const VERIFY_PATH = '/v1/verify'

/** Largest request body an authority must accept; larger bodies get 413. */
export const MAX_REQUEST_BYTES = 16 * 1024

/** The directives the authority needs; nc travels exactly as the client sent it (1-8 hex digits). */
export type WireDirectives = Pick<
  DigestCredentials,
  'username' | 'userhash' | 'realm' | 'nonce' | 'uri' | 'response' | 'algorithm' | 'qop' | 'cnonce'
> & { nc?: string }

export interface VerifyRequest {
  version: 1
  /** The calling gate's identity; must equal the identity in the nonce and the token's. */
  serverId: string
  /** Request method as received by the gate (enters A2). */
  method: string
  /** The client's directives, as parsed by the gate. */
  directives: WireDirectives
  /** Hex H(entity-body) with the algorithm's hash, for qop=auth-int. */
  bodyHash?: string
}

export interface Principal {
  /** Canonical user name (never the userhash). */
  name: string
  groups: string[]
}

export type VerifyResponse =
  | {
      result: 'ok'
      principal: Principal
      /** Hex H(username:realm:password) for the hash of `algorithm` — password-equivalent. */
      sessionKey: string
      algorithm: AlgorithmName
    }
  | {
      result: 'denied'
      /**
       * logon_denied: unknown user, wrong response or disabled user (not told apart);
       * server_mismatch: the nonce names another gate;
       * unsupported_algorithm: the user has no stored hash for that algorithm (e.g. htdigest import).
       */
      reason: 'logon_denied' | 'server_mismatch' | 'unsupported_algorithm'
    }

export interface ErrorBody {
  error: 'invalid_request' | 'unauthorized' | 'too_large' | 'internal'
  message: string
}

/** HTTP status that goes with each error (5xx only for `internal`). */
export type ErrorStatus = 400 | 401 | 413 | 500

/**
 * What the RPC entrypoint returns (service binding): the verdict as over HTTP, or the error body
 * with the HTTP status it would have had.
 */
export type VerifyRpcResult = VerifyResponse | (ErrorBody & { status: ErrorStatus })

/** The RPC surface of an authority reached through a service binding (`AuthorityEntrypoint`). */
export interface AuthorityRpc {
  verify(token: string, request: unknown): Promise<VerifyRpcResult>
}

/**
 * Gate token format (its own version, independent of the protocol's):
 * `v2.<payload base64url>.<HMAC-SHA-256(secret, "digest-gate token v2:" + payload) base64url>`,
 * the payload naming the serverId, the realms and the expiry (layout in token.ts).
 */
export const TOKEN_PREFIX = 'v2'
/** Domain-separation prefix of the token MAC input (followed by the payload bytes). */
export const TOKEN_MAC_LABEL = 'digest-gate token v2:'
/** Prefixes of earlier token formats: refused with advice to mint a new token. */
export const OUTDATED_TOKEN_PREFIXES: readonly string[] = ['v1']
