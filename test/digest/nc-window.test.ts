/** Replay and sequence detection on nc. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  checkNc,
  deserializeNcState,
  emptyNcState,
  MAX_NC,
  type NcState,
  type NcVerdict,
  type ReplayMode,
  recordNc,
  serializeNcState,
  usedUpTo,
} from '../../src/digest/nc-window.ts'

/** check, then record when fresh: what the security-context object does per request. */
function accept(state: NcState, nc: number, mode: ReplayMode): [NcVerdict, NcState] {
  const verdict = checkNc(state, nc, mode)
  return [verdict, verdict === 'fresh' ? recordNc(state, nc, mode) : state]
}

/** Reference model of window mode: a set of everything seen plus the highest. */
function modelVerdict(seen: Set<number>, highest: number, nc: number, size: number): NcVerdict {
  if (nc < 1) return 'too_old'
  if (nc > highest) return 'fresh'
  if (highest - nc >= size) return 'too_old'
  return seen.has(nc) ? 'replay' : 'fresh'
}

const SIZES = [64, 128, 256]

describe('emptyNcState', () => {
  it('sizes: multiples of 8, at least 64', () => {
    expect(emptyNcState(64).seen.length).toBe(8)
    expect(emptyNcState(1024).seen.length).toBe(128)
    for (const bad of [0, 32, 63, 65, 100.5, Number.NaN]) {
      expect(() => emptyNcState(bad)).toThrow(RangeError)
    }
  })
})

describe('invalid nc values', () => {
  it('nc 0, negatives, fractions and values over 2^32-1 are never valid, in any mode', () => {
    for (const mode of ['window', 'strict', 'off'] as ReplayMode[]) {
      const state = emptyNcState(64)
      for (const nc of [0, -1, 1.5, MAX_NC + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(checkNc(state, nc, mode), `${mode} ${nc}`).toBe('too_old')
        expect(recordNc(state, nc, mode)).toBe(state)
      }
      expect(checkNc(state, MAX_NC, mode)).toBe('fresh')
    }
  })
})

describe('window mode', () => {
  it('accepts out of order within the window, refuses repeats and the too old', () => {
    let s = emptyNcState(64)
    let v: NcVerdict
    ;[v, s] = accept(s, 5, 'window')
    expect(v).toBe('fresh')
    ;[v, s] = accept(s, 3, 'window')
    expect(v).toBe('fresh')
    ;[v, s] = accept(s, 5, 'window')
    expect(v).toBe('replay')
    ;[v, s] = accept(s, 3, 'window')
    expect(v).toBe('replay')
    ;[v, s] = accept(s, 100, 'window')
    expect(v).toBe('fresh')
    expect(checkNc(s, 37, 'window')).toBe('fresh') // 100 - 37 = 63: the window's last slot
    expect(checkNc(s, 36, 'window')).toBe('too_old')
    expect(checkNc(s, 5, 'window')).toBe('too_old')
    ;[v, s] = accept(s, 37, 'window')
    expect(v).toBe('fresh')
    expect(checkNc(s, 37, 'window')).toBe('replay')
  })

  it('nc need not start at 1, and a huge jump clears the window', () => {
    let s = emptyNcState(64)
    ;[, s] = accept(s, 9, 'window')
    ;[, s] = accept(s, 1_000_000, 'window')
    expect(checkNc(s, 1_000_000, 'window')).toBe('replay')
    expect(checkNc(s, 999_999, 'window')).toBe('fresh')
    expect(checkNc(s, 9, 'window')).toBe('too_old')
  })

  it('check never mutates; record returns a new state', () => {
    const s = emptyNcState(64)
    const before = serializeNcState(s)
    checkNc(s, 3, 'window')
    const next = recordNc(s, 3, 'window')
    expect(serializeNcState(s)).toEqual(before)
    expect(next).not.toBe(s)
    expect(next.highest).toBe(3)
  })

  it('property: each nc of a shuffled block of `size` values is accepted exactly once', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SIZES),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.infiniteStream(fc.nat()),
        (size, base, randoms) => {
          const block = Array.from({ length: size }, (_, i) => base + i)
          // Fisher-Yates with fast-check's randomness, so failures shrink and replay.
          const it = randoms[Symbol.iterator]()
          for (let i = block.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1)
            ;[block[i], block[j]] = [block[j] as number, block[i] as number]
          }
          let s = emptyNcState(size)
          for (const nc of block) {
            let v: NcVerdict
            ;[v, s] = accept(s, nc, 'window')
            expect(v).toBe('fresh')
          }
          for (const nc of block) expect(checkNc(s, nc, 'window')).toBe('replay')
          expect(checkNc(s, base - 1, 'window')).toBe('too_old')
          expect(checkNc(s, base + size, 'window')).toBe('fresh')
        }
      ),
      { numRuns: 100 }
    )
  })

  it('property: agrees with a set-based model on random sequences', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SIZES),
        fc.array(
          fc.oneof(
            fc.integer({ min: 0, max: 400 }),
            fc.integer({ min: 0, max: 70 }), // many repeats
            fc.integer({ min: 1, max: MAX_NC })
          ),
          { maxLength: 300 }
        ),
        (size, sequence) => {
          let s = emptyNcState(size)
          const seen = new Set<number>()
          let highest = 0
          for (const nc of sequence) {
            const expected = modelVerdict(seen, highest, nc, size)
            let v: NcVerdict
            ;[v, s] = accept(s, nc, 'window')
            expect(v, `nc ${nc}`).toBe(expected)
            if (v === 'fresh') {
              seen.add(nc)
              highest = Math.max(highest, nc)
            }
            expect(s.highest).toBe(highest)
          }
        }
      )
    )
  })
})

describe('strict mode', () => {
  it('nc must strictly increase; gaps are fine', () => {
    let s = emptyNcState(64)
    let v: NcVerdict
    ;[v, s] = accept(s, 1, 'strict')
    expect(v).toBe('fresh')
    ;[v, s] = accept(s, 4, 'strict')
    expect(v).toBe('fresh')
    expect(checkNc(s, 4, 'strict')).toBe('replay')
    expect(checkNc(s, 3, 'strict')).toBe('too_old')
    expect(recordNc(s, 3, 'strict')).toBe(s)
    expect(checkNc(s, 5, 'strict')).toBe('fresh')
  })

  it('property: accepts exactly the new maxima', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 100 }), (sequence) => {
        let s = emptyNcState(64)
        let max = 0
        for (const nc of sequence) {
          let v: NcVerdict
          ;[v, s] = accept(s, nc, 'strict')
          expect(v === 'fresh').toBe(nc > max)
          max = Math.max(max, nc)
        }
      })
    )
  })
})

describe('off mode', () => {
  it('everything valid is fresh and no state changes', () => {
    const s = emptyNcState(64)
    for (const nc of [1, 1, 5, 2, 5, MAX_NC]) {
      expect(checkNc(s, nc, 'off')).toBe('fresh')
      expect(recordNc(s, nc, 'off')).toBe(s)
    }
  })
})

describe('serialization', () => {
  it('is u32 highest + bitmap', () => {
    let s = emptyNcState(64)
    ;[, s] = accept(s, 0x01020304, 'window')
    ;[, s] = accept(s, 0x01020302, 'window')
    expect([...serializeNcState(s)]).toEqual([1, 2, 3, 4, 0b101, 0, 0, 0, 0, 0, 0, 0])
  })

  it('property: round trip preserves every verdict', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SIZES),
        fc.array(fc.integer({ min: 1, max: 1000 }), { maxLength: 200 }),
        (size, sequence) => {
          let s = emptyNcState(size)
          for (const nc of sequence) [, s] = accept(s, nc, 'window')
          const bytes = serializeNcState(s)
          expect(bytes.length).toBe(4 + size / 8)
          const back = deserializeNcState(bytes, size)
          expect(back).toEqual(s)
          for (let nc = 1; nc <= 1001; nc++) {
            expect(checkNc(back, nc, 'window')).toBe(checkNc(s, nc, 'window'))
          }
        }
      ),
      { numRuns: 50 }
    )
  })

  it('reads bytes at an offset inside a larger buffer', () => {
    let s = emptyNcState(64)
    ;[, s] = accept(s, 77, 'window')
    const padded = new Uint8Array(20)
    padded.set(serializeNcState(s), 3)
    expect(deserializeNcState(padded.subarray(3, 15), 64)).toEqual(s)
  })

  it('a grown window marks the unknown slots as seen; a shrunk one cuts', () => {
    let s = emptyNcState(64)
    ;[, s] = accept(s, 200, 'window')
    ;[, s] = accept(s, 150, 'window')
    const grown = deserializeNcState(serializeNcState(s), 128)
    expect(checkNc(grown, 150, 'window')).toBe('replay')
    expect(checkNc(grown, 199, 'window')).toBe('fresh')
    expect(checkNc(grown, 100, 'window')).toBe('replay') // unknown: refused
    let big = emptyNcState(128)
    ;[, big] = accept(big, 200, 'window')
    ;[, big] = accept(big, 150, 'window')
    ;[, big] = accept(big, 100, 'window')
    const shrunk = deserializeNcState(serializeNcState(big), 64)
    expect(checkNc(shrunk, 150, 'window')).toBe('replay')
    expect(checkNc(shrunk, 100, 'window')).toBe('too_old')
  })

  it('refuses bytes too short to be a state', () => {
    expect(() => deserializeNcState(new Uint8Array(11), 64)).toThrow(RangeError)
    expect(() => deserializeNcState(new Uint8Array(0), 64)).toThrow(RangeError)
  })
})

describe('usedUpTo (restart below a reservation mark)', () => {
  it('refuses every nc up to the mark and accepts every one above it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 200_000 }),
        (mark, nc) => {
          for (const mode of ['window', 'strict'] as const) {
            const verdict = checkNc(usedUpTo(mark, 128), nc, mode)
            expect(verdict === 'fresh').toBe(nc > mark)
          }
        }
      )
    )
  })

  it('is the empty state at mark 0', () => {
    expect(usedUpTo(0, 64)).toEqual(emptyNcState(64))
  })
})
