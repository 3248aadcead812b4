/**
 * One JSON line per verification (Workers Logs index JSON). Names who, where and what happened;
 * never hashes, session keys, responses, tokens or passwords.
 */
import type { VerifyResult } from './metrics.ts'

export interface VerifyLogLine {
  /** As counted in /metrics, or `error` for an authority fault (500). */
  result: VerifyResult | 'error'
  /** Why, in more detail than the caller is told (e.g. unknown_user vs wrong_response). */
  detail?: string
  serverId?: string
  realm?: string
  /** The canonical name when the user was found, else the name (or userhash) as sent. */
  user?: string
  userhash?: boolean
  algorithm?: string
  status: number
}

export function logVerification(line: VerifyLogLine): void {
  console.log(JSON.stringify({ event: 'authority.verify', ...line }))
}
