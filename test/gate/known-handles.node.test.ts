/** The bounded set of handles an isolate has seen verified: least recently seen forgotten first. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KnownHandles, MAX_KNOWN_HANDLES } from '../../src/gate/known-handles.ts'

describe('KnownHandles', () => {
  it('holds at most its limit, forgetting the least recently seen', () => {
    const known = new KnownHandles(3)
    for (const h of ['a', 'b', 'c']) known.add(h)
    known.add('a') // seen again: now the most recent
    known.add('d')
    expect(known.size).toBe(3)
    expect(known.has('b')).toBe(false)
    for (const h of ['a', 'c', 'd']) expect(known.has(h)).toBe(true)
  })

  it(`is bounded by default at ${MAX_KNOWN_HANDLES}`, () => {
    const known = new KnownHandles()
    for (let i = 0; i < MAX_KNOWN_HANDLES + 500; i++) known.add(`h${i}`)
    expect(known.size).toBe(MAX_KNOWN_HANDLES)
    expect(known.has('h0')).toBe(false)
    expect(known.has(`h${MAX_KNOWN_HANDLES + 499}`)).toBe(true)
  })

  it('property: agrees with a plain list kept in order of last sight', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'), {
          maxLength: 60,
        }),
        (limit, seen) => {
          const known = new KnownHandles(limit)
          let model: string[] = []
          for (const h of seen) {
            known.add(h)
            model = [...model.filter((m) => m !== h), h].slice(-limit)
          }
          expect(known.size).toBe(model.length)
          for (const h of 'abcdefghij') expect(known.has(h)).toBe(model.includes(h))
        }
      )
    )
  })

  it('refuses a limit below 1', () => {
    expect(() => new KnownHandles(0)).toThrow(RangeError)
    expect(() => new KnownHandles(Number.NaN)).toThrow(RangeError)
  })
})
