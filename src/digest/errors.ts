/**
 * The one error type the protocol core throws for bad input. Callers map it to
 * `400 Bad Request` (SEC_E_INVALID_TOKEN); nothing else should ever escape a parser.
 */
export type DigestErrorCode =
  | 'too_long' // header over the size limit
  | 'too_many_directives'
  | 'syntax' // grammar violation (bad token, unterminated quoted-string, stray characters…)
  | 'duplicate_directive'
  | 'missing_directive'
  | 'invalid_directive' // a directive with a value of the wrong shape (nc not 8 hex, bad username*…)
  | 'not_digest' // the scheme is not Digest

export class DigestError extends Error {
  override readonly name = 'DigestError'
  readonly code: DigestErrorCode
  /** The directive at fault, lower-cased, where there is one. */
  readonly directive: string | undefined

  constructor(code: DigestErrorCode, message: string, directive?: string) {
    super(message)
    this.code = code
    this.directive = directive
  }
}
