/**
 * Just enough of Source Map v3 to name the original file and line of a position in a bundle
 * (bench/profile.ts maps the CPU profile's functions back to src/ and node_modules/).
 */
import { readFileSync } from 'node:fs'

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

interface Segment {
  column: number
  source: number
  line: number
}

export interface OriginalPosition {
  source: string
  /** 1-based. */
  line: number
}

function decodeVlq(text: string): number[] {
  const out: number[] = []
  let value = 0
  let shift = 0
  for (const ch of text) {
    const digit = BASE64.indexOf(ch)
    value += (digit & 31) << shift
    if (digit & 32) {
      shift += 5
      continue
    }
    out.push(value & 1 ? -(value >>> 1) : value >>> 1)
    value = 0
    shift = 0
  }
  return out
}

export class SourceMap {
  private readonly lines: Segment[][]
  private readonly sources: string[]

  constructor(json: { sources: string[]; mappings: string }) {
    this.sources = json.sources
    this.lines = []
    let source = 0
    let line = 0
    for (const generatedLine of json.mappings.split(';')) {
      const segments: Segment[] = []
      let column = 0
      for (const raw of generatedLine.split(',')) {
        if (raw === '') continue
        const v = decodeVlq(raw)
        column += v[0] ?? 0
        if (v.length >= 4) {
          source += v[1] ?? 0
          line += v[2] ?? 0
          segments.push({ column, source, line })
        }
      }
      this.lines.push(segments)
    }
  }

  static read(file: string): SourceMap {
    return new SourceMap(JSON.parse(readFileSync(file, 'utf8')))
  }

  /** Original position of 0-based (line, column) in the bundle, when mapped. */
  lookup(line: number, column: number): OriginalPosition | undefined {
    const segments = this.lines[line]
    if (!segments || segments.length === 0) return undefined
    let best: Segment | undefined
    for (const s of segments) {
      if (s.column > column) break
      best = s
    }
    best ??= segments[0]
    if (!best) return undefined
    return { source: this.sources[best.source] ?? '?', line: best.line + 1 }
  }
}
