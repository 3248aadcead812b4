import { createHash } from 'node:crypto'
import { expect, it } from 'vitest'

it('node', () => {
  expect(createHash('md5').update('abc').digest('hex')).toBe('900150983cd24fb0d6963f7d28e17f72')
})
