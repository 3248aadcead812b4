/**
 * Resident memory of a process tree from /proc (Linux): VmRSS of a process and of every process
 * below it, in bytes. Elsewhere it is undefined.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { processTree } from './proc.ts'

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
  const tree = processTree(root)
  if (tree === undefined) return undefined
  let total = 0
  for (const pid of tree) total += rssBytes(pid)
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
