/**
 * One JSON line per verification (Workers Logs index JSON). Names who, where and what happened;
 * never hashes, session keys, responses, tokens, passwords, or a user name that matched nobody.
 */
import type { VerifyResult } from './metrics.ts'

export interface VerifyLogLine {
  /** As counted in /metrics, or `error` for an authority fault (500). */
  result: VerifyResult | 'error'
  /** Why, in more detail than the caller is told (e.g. unknown_user vs wrong_response). */
  detail?: string
  serverId?: string
  realm?: string
  /**
   * The canonical name of a user that was found; absent otherwise. What was sent in place of an
   * unknown name is never logged: it may be a password typed in the wrong field.
   */
  user?: string
  userhash?: boolean
  algorithm?: string
  status: number
}

export function logVerification(line: VerifyLogLine): void {
  console.log(JSON.stringify({ event: 'authority.verify', ...line }))
}
