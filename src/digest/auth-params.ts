/**
 * The generic RFC 7235 §2.1 grammar under every Digest header, scheme-agnostic:
 *
 *   challenge / credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param = token BWS "=" BWS ( token / quoted-string )
 *
 * A list of challenges may hold several schemes (`Basic realm="a", Digest realm="b", …`): a new
 * one starts at a token followed by whitespace and not by `=` (or by `,` / the end). Empty list
 * elements (`a=1, , b=2`) are tolerated as RFC 7230 §7 asks of recipients.
 * Throws only DigestError.
 */
import { DigestError } from './errors.ts'

export interface AuthParam {
  /** Lower-cased. */
  name: string
  /** Unescaped; quoted-string content exactly as received (no charset decoding here). */
  value: string
  quoted: boolean
}

export interface AuthItem {
  /** As received (compare case-insensitively). */
  scheme: string
  token68?: string
  params: AuthParam[]
}

const TCHAR = new Uint8Array(128)
const TOKEN68 = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
  if (alnum) TCHAR[c] = TOKEN68[c] = 1
}
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1
for (const ch of '-._~+/') TOKEN68[ch.charCodeAt(0)] = 1

const SP = 0x20
const HTAB = 0x09
const COMMA = 0x2c
const EQUALS = 0x3d
const DQUOTE = 0x22
const BACKSLASH = 0x5c

export function isTchar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1
}

/** Octets a quoted-string may not carry, even escaped: CTLs other than HTAB, and DEL. */
export function isForbiddenInQuoted(code: number): boolean {
  return (code < 0x20 && code !== HTAB) || code === 0x7f
}

/** Does `text` hold a character no quoted-string can carry (isForbiddenInQuoted)? */
export function hasForbiddenInQuoted(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (isForbiddenInQuoted(text.charCodeAt(i))) return true
  return false
}

class Cursor {
  readonly text: string
  pos = 0

  constructor(text: string) {
    this.text = text
  }

  get done(): boolean {
    return this.pos >= this.text.length
  }

  code(offset = 0): number {
    return this.text.charCodeAt(this.pos + offset)
  }

  skipOws(): void {
    while (!this.done && (this.code() === SP || this.code() === HTAB)) this.pos++
  }

  /** Skip OWS and any run of commas (empty list elements). */
  skipSeparators(): void {
    while (!this.done) {
      const c = this.code()
      if (c === SP || c === HTAB || c === COMMA) this.pos++
      else break
    }
  }

  fail(what: string): never {
    throw new DigestError('syntax', `${what} at offset ${this.pos}`)
  }

  readToken(): string {
    const start = this.pos
    while (!this.done && isTchar(this.code())) this.pos++
    return this.text.slice(start, this.pos)
  }

  readQuoted(): string {
    // Called on the opening DQUOTE.
    this.pos++
    let out = ''
    let runStart = this.pos
    while (!this.done) {
      const c = this.code()
      if (c === DQUOTE) {
        out += this.text.slice(runStart, this.pos)
        this.pos++
        return out
      }
      if (c === BACKSLASH) {
        out += this.text.slice(runStart, this.pos)
        this.pos++
        if (this.done) break
        if (isForbiddenInQuoted(this.code())) this.fail('control character in quoted-pair')
        out += this.text[this.pos]
        this.pos++
        runStart = this.pos
        continue
      }
      if (isForbiddenInQuoted(c)) this.fail('control character in quoted-string')
      this.pos++
    }
    return this.fail('unterminated quoted-string')
  }

  /** token68 when the rest of this list element is one; otherwise leaves the cursor unmoved. */
  tryToken68(): string | undefined {
    const start = this.pos
    let p = start
    const { text } = this
    while (p < text.length && text.charCodeAt(p) < 128 && TOKEN68[text.charCodeAt(p)] === 1) p++
    if (p === start) return undefined
    while (p < text.length && text.charCodeAt(p) === EQUALS) p++
    const end = p
    while (p < text.length && (text.charCodeAt(p) === SP || text.charCodeAt(p) === HTAB)) p++
    if (p < text.length && text.charCodeAt(p) !== COMMA) return undefined
    this.pos = end
    return text.slice(start, end)
  }

  /** At a list element: does it open a new challenge (`scheme SP …`, `scheme,`, `scheme<end>`)? */
  startsNewItem(): boolean {
    const { text } = this
    let p = this.pos
    while (p < text.length && isTchar(text.charCodeAt(p))) p++
    if (p === this.pos) return false
    if (p === text.length || text.charCodeAt(p) === COMMA) return true
    if (text.charCodeAt(p) !== SP && text.charCodeAt(p) !== HTAB) return false
    while (p < text.length && (text.charCodeAt(p) === SP || text.charCodeAt(p) === HTAB)) p++
    return p === text.length || text.charCodeAt(p) !== EQUALS
  }

  readParam(): AuthParam {
    const name = this.readToken()
    if (name === '') this.fail('expected a directive name')
    this.skipOws()
    if (this.done || this.code() !== EQUALS) this.fail(`expected "=" after ${name}`)
    this.pos++
    this.skipOws()
    if (!this.done && this.code() === DQUOTE) {
      return { name: name.toLowerCase(), value: this.readQuoted(), quoted: true }
    }
    const value = this.readToken()
    if (value === '') this.fail(`expected a value for ${name}`)
    return { name: name.toLowerCase(), value, quoted: false }
  }

  /** After a value: OWS then `,` or the end. Returns false at the end. */
  endOfElement(): boolean {
    this.skipOws()
    if (this.done) return false
    if (this.code() !== COMMA) this.fail('unexpected character')
    this.skipSeparators()
    return !this.done
  }
}

function checkCount(item: AuthItem, maxParams: number): void {
  if (item.params.length > maxParams) {
    throw new DigestError('too_many_directives', `more than ${maxParams} directives`)
  }
}

/** Parse a comma-separated list of challenges (or one credentials value). */
export function parseAuthItems(text: string, maxParams: number): AuthItem[] {
  const cur = new Cursor(text)
  const items: AuthItem[] = []
  cur.skipSeparators()
  while (!cur.done) {
    const scheme = cur.readToken()
    if (scheme === '') cur.fail('expected an auth-scheme')
    const item: AuthItem = { scheme, params: [] }
    items.push(item)
    if (cur.done) break
    if (cur.code() === COMMA) {
      cur.skipSeparators()
      continue
    }
    if (cur.code() !== SP && cur.code() !== HTAB) cur.fail('expected a space after the scheme')
    cur.skipOws()
    if (cur.done) break
    let listOpened = false
    if (cur.code() === COMMA) {
      // `Digest , realm=…`: a param list may open with empty elements; else a bare scheme.
      cur.skipSeparators()
      if (cur.done) break
      if (cur.startsNewItem()) continue
      listOpened = true
    }
    const token68 = listOpened ? undefined : cur.tryToken68()
    if (token68 !== undefined) {
      item.token68 = token68
      if (!cur.endOfElement()) break
      continue
    }
    for (;;) {
      item.params.push(cur.readParam())
      checkCount(item, maxParams)
      if (!cur.endOfElement()) return items
      if (cur.startsNewItem()) break
    }
  }
  return items
}

/** Parse a bare `#auth-param` list (Authentication-Info has no scheme). */
export function parseAuthParams(text: string, maxParams: number): AuthParam[] {
  const cur = new Cursor(text)
  const item: AuthItem = { scheme: '', params: [] }
  cur.skipSeparators()
  while (!cur.done) {
    item.params.push(cur.readParam())
    checkCount(item, maxParams)
    if (!cur.endOfElement()) break
  }
  return item.params
}

/** Index params by name; a repeated name is refused (RFC 7235 §2.1: once per challenge). */
export function directiveMap(params: readonly AuthParam[]): Map<string, AuthParam> {
  const map = new Map<string, AuthParam>()
  for (const p of params) {
    if (map.has(p.name)) {
      throw new DigestError('duplicate_directive', `directive ${p.name} repeated`, p.name)
    }
    map.set(p.name, p)
  }
  return map
}

/** quoted-string with `"` and `\` escaped; CTLs cannot be represented and are refused. */
export function quoteString(value: string, directive: string): string {
  let out = '"'
  let runStart = 0
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (isForbiddenInQuoted(c)) {
      throw new DigestError('invalid_directive', `control character in ${directive}`, directive)
    }
    if (c === DQUOTE || c === BACKSLASH) {
      out += `${value.slice(runStart, i)}\\`
      runStart = i
    }
  }
  return `${out + value.slice(runStart)}"`
}
