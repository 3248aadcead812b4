/**
 * Resident memory of a process tree from /proc (Linux): VmRSS of a process and of every process
 * below it, in bytes. Elsewhere it is undefined.
 */
import { readdirSync, readFileSync } from 'node:fs'

function parentOf(pid: string): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces: fields start after its closing parenthesis.
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

function rssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
    return kib ? Number(kib[1]) * 1024 : 0
  } catch {
    return 0
  }
}

/** Sum of VmRSS over `root` and its descendants; undefined without /proc or once `root` ended. */
export function treeRss(root: number): number | undefined {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return undefined
  }
  const parent = new Map<number, number>()
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const p = parentOf(entry)
    if (p !== undefined) parent.set(Number(entry), p)
  }
  if (!parent.has(root)) return undefined
  let total = 0
  for (const pid of parent.keys()) {
    let p: number | undefined = pid
    while (p !== undefined && p !== root && p > 1) p = parent.get(p)
    if (p === root) total += rssBytes(pid)
  }
  return total
}

export const MIB = 1024 * 1024

/** Open file descriptors of `pid` (a Durable Object's SQLite database holds some while open). */
export function openFiles(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return undefined
  }
}
