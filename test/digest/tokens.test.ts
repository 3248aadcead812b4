/** Nonce, opaque, context handles and their base64url encoding, inside workerd. */
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { decodeBase64Url, encodeBase64Url } from '../../src/digest/base64url.ts'
import {
  createTokenMinter,
  isContextHandle,
  MAX_FUTURE_SKEW_SECONDS,
  newContextHandle,
  readNonceFields,
  type TokenMinter,
} from '../../src/digest/tokens.ts'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const K1 = { id: 1, secret: 'first secret, 32 bytes or longer!' }
const K2 = { id: 2, secret: 'second secret, 32 bytes or longer' }
const K3 = { id: 3, secret: 'third secret, 32 bytes or longer!' }
const NOW = 1_800_000_000
const SERVER = 'gate-1'
const EXPECT = { serverId: SERVER, now: NOW, lifetimeSeconds: 300 }

describe('base64url', () => {
  it('property: round trip, and agrees with Buffer base64url', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = encodeBase64Url(bytes)
        expect(text).toBe(Buffer.from(bytes).toString('base64url'))
        expect(text).toMatch(/^[A-Za-z0-9_-]*$/)
        expect(decodeBase64Url(text)).toEqual(bytes)
      })
    )
  })

  it('refuses padding, other alphabets, impossible lengths, non-canonical tails', () => {
    for (const bad of [
      'QQ==',
      'QQ=',
      'a+b/',
      'ab cd',
      'abcde',
      'Q',
      'QR',
      'QUF',
      'é',
      'ab\u0000d',
    ]) {
      expect(decodeBase64Url(bad), bad).toBeUndefined()
    }
    expect(decodeBase64Url('QQ')).toEqual(new Uint8Array([0x41]))
    expect(decodeBase64Url('QUE')).toEqual(new Uint8Array([0x41, 0x41]))
    expect(decodeBase64Url('')).toEqual(new Uint8Array(0))
  })

  it('property: every byte string has exactly one accepted text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...ALPHABET), maxLength: 40 }), (text) => {
        const bytes = decodeBase64Url(text)
        if (bytes !== undefined) expect(encodeBase64Url(bytes)).toBe(text)
      })
    )
  })
})

describe('context handles', () => {
  it('are 22 base64url chars of 16 random bytes, all different', () => {
    const handles = new Set(Array.from({ length: 1000 }, newContextHandle))
    expect(handles.size).toBe(1000)
    for (const h of handles) {
      expect(h).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(isContextHandle(h)).toBe(true)
    }
    expect(isContextHandle('')).toBe(false)
    expect(isContextHandle('A'.repeat(21))).toBe(false)
    expect(isContextHandle('A'.repeat(23))).toBe(false)
    expect(isContextHandle(`${'A'.repeat(21)}B`)).toBe(false) // non-canonical tail
  })
})

describe('nonce', () => {
  let minter: TokenMinter

  beforeAll(async () => {
    minter = await createTokenMinter({ current: K1 })
  })

  it('round trip: fields, age, expiry boundary', async () => {
    const handle = newContextHandle()
    const nonce = await minter.mintNonce({ serverId: SERVER, handle, now: NOW })
    expect(nonce).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(nonce.length).toBe(Math.ceil(((47 + SERVER.length) * 4) / 3))
    expect(await minter.verifyNonce(nonce, EXPECT)).toEqual({
      kind: 'valid',
      expired: false,
      ageSeconds: 0,
      serverId: SERVER,
      issuedAt: NOW,
      handle,
      keyId: 1,
      fresh: false,
    })
    const at = (now: number) => minter.verifyNonce(nonce, { ...EXPECT, now })
    expect(await at(NOW + 300)).toMatchObject({ kind: 'valid', expired: false, ageSeconds: 300 })
    expect(await at(NOW + 301)).toMatchObject({ kind: 'valid', expired: true, ageSeconds: 301 })
    expect(await at(NOW + 86_400)).toMatchObject({ kind: 'valid', expired: true })
    // Slightly in the future (another isolate's clock): fine, age 0.
    expect(await at(NOW - MAX_FUTURE_SKEW_SECONDS)).toMatchObject({ kind: 'valid', ageSeconds: 0 })
    expect(await at(NOW - MAX_FUTURE_SKEW_SECONDS - 1)).toEqual({
      kind: 'invalid',
      reason: 'future',
    })
  })

  it('property: the fresh flag survives the round trip, in the top bit of random, MAC-covered', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 16 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        async (serverId, now, fresh) => {
          const handle = newContextHandle()
          const nonce = await minter.mintNonce({ serverId, handle, now, fresh })
          const expect_ = { serverId, now, lifetimeSeconds: 300 }
          expect(await minter.verifyNonce(nonce, expect_)).toMatchObject({
            kind: 'valid',
            handle,
            issuedAt: now,
            fresh,
          })
          // The layout and what the authority reads stay as they were.
          expect(readNonceFields(nonce)).toEqual({ serverId, issuedAt: now, handle, keyId: 1 })
          const bytes = decodeBase64Url(nonce) as Uint8Array
          const randomAt = 7 + new TextEncoder().encode(serverId).length + 16
          expect(((bytes[randomAt] as number) & 0x80) !== 0).toBe(fresh)
          // Flipping the flag (a stranger promoting or demoting a nonce) breaks the MAC.
          bytes[randomAt] = (bytes[randomAt] as number) ^ 0x80
          expect(await minter.verifyNonce(encodeBase64Url(bytes), expect_)).toEqual({
            kind: 'invalid',
            reason: 'bad_mac',
          })
        }
      ),
      { numRuns: 200 }
    )
  })

  it('fresh or not, the other 63 bits of random stay random', async () => {
    const handle = newContextHandle()
    for (const fresh of [true, false]) {
      const seen = new Set<string>()
      let low = 0
      for (let i = 0; i < 64; i++) {
        const nonce = await minter.mintNonce({ serverId: SERVER, handle, now: NOW, fresh })
        const bytes = decodeBase64Url(nonce) as Uint8Array
        const random = bytes.subarray(7 + SERVER.length + 16, 7 + SERVER.length + 24)
        seen.add(encodeBase64Url(random))
        low |= (random[0] as number) & 0x7f
      }
      expect(seen.size).toBe(64)
      // Each of the 7 low bits of the flag byte was set in some nonce: they are not fixed.
      expect(low).toBe(0x7f)
    }
  })

  it('two nonces for one handle at one second differ', async () => {
    const handle = newContextHandle()
    const a = await minter.mintNonce({ serverId: SERVER, handle, now: NOW })
    const b = await minter.mintNonce({ serverId: SERVER, handle, now: NOW })
    expect(a).not.toBe(b)
  })

  it('names its server: another server id is refused after the MAC check', async () => {
    const nonce = await minter.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    expect(await minter.verifyNonce(nonce, { ...EXPECT, serverId: 'gate-2' })).toEqual({
      kind: 'invalid',
      reason: 'wrong_server',
    })
    expect(readNonceFields(nonce)?.serverId).toBe(SERVER)
  })

  it('server ids: 1..64 bytes of UTF-8, multi-byte included', async () => {
    const handle = newContextHandle()
    for (const serverId of ['g', 'é'.repeat(32), '网关-東京', 'a'.repeat(64)]) {
      const nonce = await minter.mintNonce({ serverId, handle, now: NOW })
      expect(await minter.verifyNonce(nonce, { ...EXPECT, serverId })).toMatchObject({
        kind: 'valid',
        serverId,
        handle,
      })
      expect(readNonceFields(nonce)).toEqual({ serverId, issuedAt: NOW, handle, keyId: 1 })
    }
    for (const serverId of ['', 'a'.repeat(65), 'é'.repeat(33), '\ud800']) {
      await expect(minter.mintNonce({ serverId, handle, now: NOW })).rejects.toBeInstanceOf(
        RangeError
      )
    }
  })

  it('refuses a bad handle or a time in milliseconds when minting', async () => {
    const handle = newContextHandle()
    await expect(minter.mintNonce({ serverId: SERVER, handle: 'x', now: NOW })).rejects.toThrow(
      TypeError
    )
    const ms = { serverId: SERVER, handle, now: Date.now() }
    await expect(minter.mintNonce(ms)).rejects.toThrow(RangeError)
    await expect(minter.mintNonce({ ...ms, now: -1 })).rejects.toThrow(RangeError)
    await expect(minter.mintNonce({ ...ms, now: Number.NaN })).rejects.toThrow(RangeError)
  })

  it('rejects every single-bit change of its bytes', async () => {
    const nonce = await minter.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    const bytes = decodeBase64Url(nonce) as Uint8Array
    for (let i = 0; i < bytes.length * 8; i++) {
      const flipped = bytes.slice()
      flipped[i >> 3] = (flipped[i >> 3] as number) ^ (1 << (i & 7))
      const check = await minter.verifyNonce(encodeBase64Url(flipped), EXPECT)
      expect(check.kind, `bit ${i}`).toBe('invalid')
    }
  })

  it('rejects every single-character change of its text', async () => {
    const nonce = await minter.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    for (let i = 0; i < nonce.length; i++) {
      for (const c of `${ALPHABET}=+/. "`) {
        if (c === nonce[i]) continue
        const changed = nonce.slice(0, i) + c + nonce.slice(i + 1)
        expect((await minter.verifyNonce(changed, EXPECT)).kind, changed).toBe('invalid')
      }
    }
  })

  it('property: bit flips on random server ids, handles and times are all rejected', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 16 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.nat(),
        async (serverId, now, bitSeed) => {
          const nonce = await minter.mintNonce({ serverId, handle: newContextHandle(), now })
          const bytes = decodeBase64Url(nonce) as Uint8Array
          const i = bitSeed % (bytes.length * 8)
          bytes[i >> 3] = (bytes[i >> 3] as number) ^ (1 << (i & 7))
          const check = await minter.verifyNonce(encodeBase64Url(bytes), {
            serverId,
            now,
            lifetimeSeconds: 300,
          })
          expect(check.kind).toBe('invalid')
        }
      ),
      { numRuns: 200 }
    )
  })

  it('tells expired from forged', async () => {
    const old = await minter.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    const later = { ...EXPECT, now: NOW + 10_000 }
    expect(await minter.verifyNonce(old, later)).toMatchObject({ kind: 'valid', expired: true })
    // A forgery: a well-formed nonce with a fresh time but a made-up MAC.
    const bytes = decodeBase64Url(old) as Uint8Array
    new DataView(bytes.buffer).setUint32(2, NOW + 10_000)
    expect(await minter.verifyNonce(encodeBase64Url(bytes), later)).toEqual({
      kind: 'invalid',
      reason: 'bad_mac',
    })
    // The same with a MAC from another key that claims our key id.
    const other = await createTokenMinter({ current: { id: 1, secret: 'attacker' } })
    const forged = await other.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    expect(await minter.verifyNonce(forged, EXPECT)).toEqual({ kind: 'invalid', reason: 'bad_mac' })
  })

  it('property: arbitrary text is refused without throwing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: fc.constantFrom(...ALPHABET) })),
        async (text) => {
          const check = await minter.verifyNonce(text, EXPECT)
          expect(check.kind).toBe('invalid')
          expect(() => readNonceFields(text)).not.toThrow()
        }
      ),
      { numRuns: 300 }
    )
    expect(await minter.verifyNonce('A'.repeat(100_000), EXPECT)).toEqual({
      kind: 'invalid',
      reason: 'malformed',
    })
  })

  it('malformed layouts', async () => {
    const nonce = await minter.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    const bytes = decodeBase64Url(nonce) as Uint8Array
    const variants = [
      bytes.subarray(0, bytes.length - 1), // truncated
      new Uint8Array([...bytes, 0]), // extended
      Uint8Array.of(2, ...bytes.subarray(1)), // unknown version
      Uint8Array.of(...bytes.subarray(0, 6), 0, ...bytes.subarray(7)), // serverIdLen 0
      Uint8Array.of(...bytes.subarray(0, 6), 65, ...bytes.subarray(7)), // serverIdLen 65
    ]
    for (const v of variants) {
      expect(await minter.verifyNonce(encodeBase64Url(v), EXPECT)).toEqual({
        kind: 'invalid',
        reason: 'malformed',
      })
      expect(readNonceFields(encodeBase64Url(v))).toBeUndefined()
    }
    // Invalid UTF-8 in the server id.
    const bad = bytes.slice()
    bad[7] = 0xff
    expect(readNonceFields(encodeBase64Url(bad))).toBeUndefined()
  })
})

describe('opaque', () => {
  it('round trip, and every single-bit and single-character change is rejected', async () => {
    const minter = await createTokenMinter({ current: K1 })
    const handle = newContextHandle()
    const opaque = await minter.mintOpaque(handle)
    expect(opaque).toMatch(/^[A-Za-z0-9_-]{46}$/)
    expect(await minter.verifyOpaque(opaque)).toEqual({ kind: 'valid', handle, keyId: 1 })
    const bytes = decodeBase64Url(opaque) as Uint8Array
    for (let i = 0; i < bytes.length * 8; i++) {
      const flipped = bytes.slice()
      flipped[i >> 3] = (flipped[i >> 3] as number) ^ (1 << (i & 7))
      expect((await minter.verifyOpaque(encodeBase64Url(flipped))).kind, `bit ${i}`).toBe('invalid')
    }
    for (let i = 0; i < opaque.length; i++) {
      for (const c of ALPHABET) {
        if (c === opaque[i]) continue
        const changed = opaque.slice(0, i) + c + opaque.slice(i + 1)
        expect((await minter.verifyOpaque(changed)).kind, changed).toBe('invalid')
      }
    }
  })

  it('refuses random handles, other lengths and nonces', async () => {
    const minter = await createTokenMinter({ current: K1 })
    expect(await minter.verifyOpaque(newContextHandle())).toEqual({
      kind: 'invalid',
      reason: 'malformed',
    })
    expect(await minter.verifyOpaque('')).toEqual({ kind: 'invalid', reason: 'malformed' })
    const random = encodeBase64Url(
      Uint8Array.of(1, 1, ...crypto.getRandomValues(new Uint8Array(32)))
    )
    expect(await minter.verifyOpaque(random)).toEqual({ kind: 'invalid', reason: 'bad_mac' })
    const nonce = await minter.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    expect((await minter.verifyOpaque(nonce)).kind).toBe('invalid')
    await expect(minter.mintOpaque('not a handle')).rejects.toBeInstanceOf(TypeError)
  })

  it('an opaque is not a nonce', async () => {
    const minter = await createTokenMinter({ current: K1 })
    const opaque = await minter.mintOpaque(newContextHandle())
    expect(await minter.verifyNonce(opaque, EXPECT)).toEqual({
      kind: 'invalid',
      reason: 'malformed',
    })
    expect(readNonceFields(opaque)).toBeUndefined()
  })
})

describe('key rotation', () => {
  it('the previous key still verifies; a retired key id is unknown', async () => {
    const before = await createTokenMinter({ current: K1 })
    const during = await createTokenMinter({ current: K2, previous: K1 })
    const after = await createTokenMinter({ current: K3, previous: K2 })
    const handle = newContextHandle()
    const oldNonce = await before.mintNonce({ serverId: SERVER, handle, now: NOW })
    const oldOpaque = await before.mintOpaque(handle)

    expect(await during.verifyNonce(oldNonce, EXPECT)).toMatchObject({ kind: 'valid', keyId: 1 })
    expect(await during.verifyOpaque(oldOpaque)).toEqual({ kind: 'valid', handle, keyId: 1 })
    const newNonce = await during.mintNonce({ serverId: SERVER, handle, now: NOW })
    expect(readNonceFields(newNonce)?.keyId).toBe(2)
    expect(await during.verifyNonce(newNonce, EXPECT)).toMatchObject({ kind: 'valid', keyId: 2 })
    expect(await before.verifyNonce(newNonce, EXPECT)).toEqual({
      kind: 'invalid',
      reason: 'unknown_key',
    })

    expect(await after.verifyNonce(oldNonce, EXPECT)).toEqual({
      kind: 'invalid',
      reason: 'unknown_key',
    })
    expect(await after.verifyOpaque(oldOpaque)).toEqual({ kind: 'invalid', reason: 'unknown_key' })
    expect(await after.verifyNonce(newNonce, EXPECT)).toMatchObject({ kind: 'valid', keyId: 2 })
  })

  it('the same key id with another secret is a bad MAC', async () => {
    const a = await createTokenMinter({ current: K1 })
    const b = await createTokenMinter({ current: { id: K1.id, secret: K2.secret } })
    const nonce = await a.mintNonce({ serverId: SERVER, handle: newContextHandle(), now: NOW })
    expect(await b.verifyNonce(nonce, EXPECT)).toEqual({ kind: 'invalid', reason: 'bad_mac' })
  })

  it('refuses bad key configurations', async () => {
    await expect(createTokenMinter({ current: { id: 256, secret: 's' } })).rejects.toThrow(
      RangeError
    )
    await expect(createTokenMinter({ current: { id: 1.5, secret: 's' } })).rejects.toThrow(
      RangeError
    )
    await expect(createTokenMinter({ current: { id: 0, secret: '' } })).rejects.toThrow(RangeError)
  })

  it('remembers a verified MAC only: age, server and expiry are judged again each time', async () => {
    const minter = await createTokenMinter({ current: K1 })
    const handle = newContextHandle()
    const nonce = await minter.mintNonce({ serverId: 'gate', handle, now: 1000 })
    const check = (now: number, serverId = 'gate') =>
      minter.verifyNonce(nonce, { serverId, now, lifetimeSeconds: 300 })
    expect(await check(1010)).toMatchObject({ kind: 'valid', expired: false, ageSeconds: 10 })
    expect(await check(1301)).toMatchObject({ kind: 'valid', expired: true, ageSeconds: 301 })
    expect(await check(1010, 'other')).toEqual({ kind: 'invalid', reason: 'wrong_server' })
    expect(await check(900)).toEqual({ kind: 'invalid', reason: 'future' })
    // Another minter (another key) remembers nothing of this one.
    const other = await createTokenMinter({ current: { ...K2, id: K1.id } })
    expect(
      await other.verifyNonce(nonce, { serverId: 'gate', now: 1010, lifetimeSeconds: 300 })
    ).toEqual({ kind: 'invalid', reason: 'bad_mac' })
    const opaque = await minter.mintOpaque(handle)
    expect(await minter.verifyOpaque(opaque)).toMatchObject({ kind: 'valid', handle })
    expect(await minter.verifyOpaque(opaque)).toMatchObject({ kind: 'valid', handle })
    expect((await other.verifyOpaque(opaque)).kind).toBe('invalid')
  })

  it('keeps tokens of both keys valid when their ids collide', async () => {
    const previous = { ...K2, id: K1.id }
    const before = await createTokenMinter({ current: previous })
    const during = await createTokenMinter({ current: K1, previous })
    const handle = newContextHandle()
    const old = await before.mintNonce({ serverId: 'gate', handle, now: 1000 })
    const fresh = await during.mintNonce({ serverId: 'gate', handle, now: 1000 })
    const expect1 = { serverId: 'gate', now: 1000, lifetimeSeconds: 300 }
    expect((await during.verifyNonce(old, expect1)).kind).toBe('valid')
    expect((await during.verifyNonce(fresh, expect1)).kind).toBe('valid')
    expect((await during.verifyOpaque(await before.mintOpaque(handle))).kind).toBe('valid')
    // A third key sharing the id is still refused.
    const stranger = await createTokenMinter({ current: { ...K3, id: K1.id } })
    const forged = await stranger.mintNonce({ serverId: 'gate', handle, now: 1000 })
    expect(await during.verifyNonce(forged, expect1)).toEqual({
      kind: 'invalid',
      reason: 'bad_mac',
    })
  })
})
