import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseHtdigest } from '../../scripts/users/htdigest.ts'

const md5 = (text: string) => createHash('md5').update(text).digest('hex')

describe('parseHtdigest', () => {
  it('reads the lines htdigest(1) writes', () => {
    const text = `# comment\n\nMufasa:testrealm@host.com:${md5('Mufasa:testrealm@host.com:Circle Of Life')}\r\nJäsøn Doe:api@example.org:4670CBC33DE1735AC79D285048F448A8\n`
    expect(parseHtdigest(text)).toEqual({
      kind: 'parsed',
      users: [
        {
          name: 'Mufasa',
          realm: 'testrealm@host.com',
          md5: '939e7578ed9e3c518a452acee763bce9',
          line: 3,
        },
        {
          name: 'Jäsøn Doe',
          realm: 'api@example.org',
          md5: '4670cbc33de1735ac79d285048f448a8',
          line: 4,
        },
      ],
    })
  })

  it('reports every bad line with its number', () => {
    const result = parseHtdigest(
      `a:r:${'0'.repeat(32)}\nb:r\n:r:${'0'.repeat(32)}\nc:r:xyz\na:r:${'1'.repeat(32)}`
    )
    expect(result.kind).toBe('invalid')
    if (result.kind === 'invalid') expect(result.problems.map((p) => p.line)).toEqual([2, 3, 4, 5])
  })

  it('never throws, and every user it returns is well-formed', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        const result = parseHtdigest(text)
        if (result.kind === 'parsed') {
          for (const user of result.users) expect(user.md5).toMatch(/^[0-9a-f]{32}$/)
        } else expect(result.problems.length).toBeGreaterThan(0)
      }),
      { numRuns: 500 }
    )
  })

  it('round-trips generated files', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9 ._@-]{1,20}$/)
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(name, name, fc.stringMatching(/^[0-9a-f]{32}$/)), {
          selector: ([n, r]) => `${r}:${n}`,
          maxLength: 10,
        }),
        (rows) => {
          const result = parseHtdigest(rows.map((row) => row.join(':')).join('\n'))
          expect(result).toEqual({
            kind: 'parsed',
            users: rows.map(([n, r, h], i) => ({ name: n, realm: r, md5: h, line: i + 1 })),
          })
        }
      )
    )
  })
})
