/**
 * Apache htdigest files: one `user:realm:H(user:realm:password)` line per user, MD5 only
 * (htdigest(1), mod_auth_digest's AuthUserFile). Parsing is pure and reports every bad line.
 */
import { nameProblem } from '../../authority/src/store.ts'

export interface HtdigestUser {
  name: string
  realm: string
  /** Lower-case hex MD5 of name:realm:password. */
  md5: string
  line: number
}

export interface HtdigestProblem {
  line: number
  message: string
}

export type HtdigestParse =
  | { kind: 'parsed'; users: HtdigestUser[] }
  | { kind: 'invalid'; problems: HtdigestProblem[] }

/** Parses a whole file; blank lines and `#` comments are skipped. Never throws. */
export function parseHtdigest(text: string): HtdigestParse {
  const users: HtdigestUser[] = []
  const problems: HtdigestProblem[] = []
  const firstLine = new Map<string, number>()
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, index) => {
    const line = index + 1
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) return
    const fields = raw.split(':')
    if (fields.length !== 3) {
      problems.push({
        line,
        message: `expected user:realm:hash (3 fields separated by ':'), found ${fields.length}`,
      })
      return
    }
    const [name, realm, hash] = fields as [string, string, string]
    const problem = nameProblem('name', name) ?? nameProblem('realm', realm)
    if (problem !== undefined) {
      problems.push({ line, message: problem })
      return
    }
    if (!/^[0-9a-fA-F]{32}$/.test(hash)) {
      problems.push({ line, message: 'the hash must be 32 hexadecimal digits (an MD5 digest)' })
      return
    }
    const id = `${realm}:${name}`
    const earlier = firstLine.get(id)
    if (earlier !== undefined) {
      problems.push({ line, message: `user "${name}" of realm "${realm}" repeats line ${earlier}` })
      return
    }
    firstLine.set(id, line)
    users.push({ name, realm, md5: hash.toLowerCase(), line })
  })
  return problems.length > 0 ? { kind: 'invalid', problems } : { kind: 'parsed', users }
}
