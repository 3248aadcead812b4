/**
 * Reads a password: from an interactive prompt without echo, or from stdin when it is not a TTY
 * (first line). Never from the command line, where it would land in shell history and `ps`.
 */
import { CliError } from './errors.ts'

const MAX_PASSWORD = 1024

function readStdinLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    process.stdin.setEncoding('utf8')
    process.stdin.on('data', (chunk: string) => {
      text += chunk
    })
    process.stdin.on('end', () => resolve(text.split(/\r?\n/)[0] ?? ''))
    process.stdin.on('error', reject)
  })
}

/** Keystrokes typed ahead of a prompt (a paste of two lines answers both prompts). */
let typedAhead = ''

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin
    let value = ''
    const finish = (rest: string, error?: CliError) => {
      typedAhead = rest
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
      if (error) reject(error)
      else resolve(value)
    }
    const onData = (chunk: string) => {
      const chars = Array.from(chunk)
      for (let i = 0; i < chars.length; i++) {
        const char = chars[i] as string
        const rest = () => chars.slice(i + 1).join('')
        if (char === '\r' || char === '\n') return finish(rest().replace(/^\n/, ''))
        if (char === '\u0003') return finish('', new CliError('cancelled', 130))
        if (char === '\u0004') {
          return value === '' ? finish('', new CliError('cancelled', 130)) : finish(rest())
        }
        if (char === '\u007f' || char === '\b') value = Array.from(value).slice(0, -1).join('')
        else if (char >= ' ') value += char
      }
    }
    process.stderr.write(question)
    stdin.setEncoding('utf8')
    stdin.setRawMode(true)
    stdin.resume()
    stdin.on('data', onData)
    if (typedAhead !== '') onData(typedAhead)
  })
}

function checked(password: string): string {
  if (password.length === 0) throw new CliError('the password must not be empty')
  if (password.length > MAX_PASSWORD) {
    throw new CliError(`the password must be at most ${MAX_PASSWORD} characters`)
  }
  return password
}

/** Asks twice on a terminal; reads one line from a pipe. */
export async function readNewPassword(name: string): Promise<string> {
  if (!process.stdin.isTTY) return checked(await readStdinLine())
  const first = checked(await promptHidden(`Password for ${name}: `))
  const again = await promptHidden('Again: ')
  if (again !== first) throw new CliError('the two passwords differ; nothing changed')
  return first
}
