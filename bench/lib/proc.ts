/**
 * Processes from /proc (Linux): a process's stat fields, and a process tree. Elsewhere (no /proc)
 * the answers are undefined.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Fields of /proc/<pid>/stat after the command name: state(0) ppid(1) … utime(11) stime(12). */
export function statFields(pid: number | string): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces: fields start after its closing parenthesis.
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** `root` and every process below it; undefined without /proc or once `root` ended. */
export function processTree(root: number): number[] | undefined {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return undefined
  }
  const parent = new Map<number, number>()
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const f = statFields(entry)
    if (f) parent.set(Number(entry), Number(f[1]))
  }
  if (!parent.has(root)) return undefined
  const tree: number[] = []
  for (const pid of parent.keys()) {
    let p: number | undefined = pid
    while (p !== undefined && p !== root && p > 1) p = parent.get(p)
    if (p === root) tree.push(pid)
  }
  return tree
}
