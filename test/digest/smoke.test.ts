import { describe, expect, it } from 'vitest'

describe('workerd', () => {
  it('has MD5 in crypto.subtle', async () => {
    const d = await crypto.subtle.digest('MD5', new TextEncoder().encode('abc'))
    expect(Buffer.from(d).toString('hex')).toBe('900150983cd24fb0d6963f7d28e17f72')
  })
})
