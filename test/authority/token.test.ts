import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { mintGateToken, verifyGateToken } from '../../src/authority-protocol/token.ts'
import { decodeBase64Url, encodeBase64Url } from '../../src/digest/base64url.ts'

const SECRET = 'a-secret-of-the-authority'

describe('gate tokens', () => {
  it('have the documented layout and name their server', async () => {
    const token = await mintGateToken(SECRET, 'gate-local')
    const [prefix, id, mac] = token.split('.') as [string, string, string]
    expect(prefix).toBe('v1')
    expect(new TextDecoder().decode(decodeBase64Url(id))).toBe('gate-local')
    // HMAC-SHA-256(secret, "digest-gate token v1:" + serverId), computed independently.
    const key = await crypto.subtle.importKey(
      'raw',
      new TextEncoder().encode(SECRET),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign']
    )
    const expected = await crypto.subtle.sign(
      'HMAC',
      key,
      new TextEncoder().encode('digest-gate token v1:gate-local')
    )
    expect(mac).toBe(encodeBase64Url(new Uint8Array(expected)))
    expect(await verifyGateToken(SECRET, token)).toBe('gate-local')
  })

  it('round-trip any valid serverId', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 16 })
          .filter((id) => new TextEncoder().encode(id).length <= 64),
        async (serverId) => {
          const token = await mintGateToken(SECRET, serverId)
          expect(await verifyGateToken(SECRET, token)).toBe(serverId)
          expect(await verifyGateToken(`${SECRET}x`, token)).toBeUndefined()
        }
      ),
      { numRuns: 50 }
    )
  })

  it('refuse another secret, a swapped serverId, a truncated MAC', async () => {
    const token = await mintGateToken(SECRET, 'gate-a')
    const other = await mintGateToken(SECRET, 'gate-b')
    const [, idB] = other.split('.') as [string, string, string]
    const [, , macA] = token.split('.') as [string, string, string]
    expect(await verifyGateToken('another', token)).toBeUndefined()
    expect(await verifyGateToken(SECRET, `v1.${idB}.${macA}`)).toBeUndefined()
    expect(await verifyGateToken(SECRET, token.slice(0, -1))).toBeUndefined()
    expect(await verifyGateToken(SECRET, `${token}.x`)).toBeUndefined()
    expect(await verifyGateToken('', token)).toBeUndefined()
  })

  it('refuse invalid serverIds at minting', async () => {
    await expect(mintGateToken(SECRET, '')).rejects.toThrow(RangeError)
    await expect(mintGateToken(SECRET, 'x'.repeat(65))).rejects.toThrow(RangeError)
    await expect(mintGateToken(SECRET, '\ud800')).rejects.toThrow(RangeError)
    await expect(mintGateToken('', 'gate')).rejects.toThrow(RangeError)
  })

  it('verification never throws on arbitrary text', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (text) => {
        expect(await verifyGateToken(SECRET, text)).toBeUndefined()
        expect(await verifyGateToken(SECRET, `v1.${text}`)).toBeUndefined()
      }),
      { numRuns: 200 }
    )
  })
})
