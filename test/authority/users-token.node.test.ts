/** The decisions of `npm run users -- token`: durations, the signing secret, the stderr line. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CliError } from '../../scripts/users/errors.ts'
import { chooseTokenSecret, describeToken, parseDuration } from '../../scripts/users/token.ts'

const UNITS = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 } as const

describe('parseDuration', () => {
  it('reads the documented examples', () => {
    expect(parseDuration('90d')).toBe(90 * 86_400)
    expect(parseDuration('12h')).toBe(12 * 3600)
    expect(parseDuration('365d')).toBe(31_536_000)
    expect(parseDuration('1y')).toBe(31_536_000)
    expect(parseDuration('2w')).toBe(1_209_600)
  })

  it('reads every whole number of one unit exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 999_999 }),
        fc.constantFrom(...(Object.keys(UNITS) as (keyof typeof UNITS)[])),
        (n, unit) => {
          expect(parseDuration(`${n}${unit}`)).toBe(n * UNITS[unit])
        }
      )
    )
  })

  it('refuses anything else, and never throws', () => {
    for (const text of [
      '',
      'd',
      '0d',
      '-1d',
      '1.5d',
      '1 d',
      '1D',
      '1d2h',
      '90',
      '01d',
      '1000000d',
    ]) {
      expect(parseDuration(text)).toBeUndefined()
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        const seconds = parseDuration(text)
        if (seconds !== undefined) {
          expect(text).toMatch(/^[1-9][0-9]{0,5}[smhdwy]$/)
          expect(Number.isSafeInteger(seconds) && seconds > 0).toBe(true)
        }
      }),
      { numRuns: 500 }
    )
  })
})

describe('chooseTokenSecret', () => {
  const localFile = 'authority/.dev.vars'
  const readLocal = () => 'the-local-secret'

  it('with --remote, takes the environment only and says so when it is missing', () => {
    expect(() =>
      chooseTokenSecret({ remote: true, fromEnvironment: undefined, readLocal, localFile })
    ).toThrow(/with --remote, set AUTHORITY_SECRET in the environment.*not used/)
    expect(() =>
      chooseTokenSecret({ remote: true, fromEnvironment: '', readLocal, localFile })
    ).toThrow(CliError)
    expect(
      chooseTokenSecret({ remote: true, fromEnvironment: 'deployed', readLocal, localFile })
    ).toEqual({ secret: 'deployed', note: 'signed with AUTHORITY_SECRET from the environment' })
  })

  it('without --remote, prefers the environment, else the local file, saying which', () => {
    expect(
      chooseTokenSecret({ remote: false, fromEnvironment: 'env', readLocal, localFile }).secret
    ).toBe('env')
    const local = chooseTokenSecret({ remote: false, fromEnvironment: '', readLocal, localFile })
    expect(local.secret).toBe('the-local-secret')
    expect(local.note).toContain('local authority only')
    expect(local.note).toContain(localFile)
  })

  it('refuses a missing or placeholder local secret', () => {
    for (const value of [undefined, '', 'replace-with-32+-random-bytes-base64url']) {
      expect(() =>
        chooseTokenSecret({
          remote: false,
          fromEnvironment: undefined,
          readLocal: () => value,
          localFile,
        })
      ).toThrow(/no AUTHORITY_SECRET in the environment or authority\/.dev.vars/)
    }
  })
})

describe('describeToken', () => {
  it('names the gate, the realms and the expiry date', () => {
    const now = 1_800_000_000
    const claims = { serverId: 'gate-prod', realms: ['a', 'b'], expiresAt: now + 90 * 86_400 }
    expect(describeToken(claims, now, false)).toBe(
      'token for gate-prod, realms a, b; expires 2027-04-15T08:00:00.000Z (in 90 days)'
    )
    expect(describeToken({ ...claims, realms: ['a'] }, now, true)).toContain(
      'realm a; expires 2027-04-15T08:00:00.000Z (in 90 days, the default: --expires to choose)'
    )
  })
})
