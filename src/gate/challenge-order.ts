/**
 * The order of the Digest challenges for one client. workerd sends a 401's WWW-Authenticate values
 * as one comma-joined line, and each client reads that line its own way: curl, Chromium,
 * python-requests and Python's urllib take the last `algorithm`, wget and the npm clients the
 * first, Firefox the strongest it knows (docs/clients.md). One fixed order therefore puts most of
 * them on the weakest algorithm. Recognising the client from its User-Agent, the strongest
 * algorithm it supports goes where it reads; anyone else gets the configured order, whose
 * default ends in MD5, which every client can answer. Only the order changes: the set offered
 * and the one nonce they share stay the same. A client that borrows another's User-Agent is
 * served as that one.
 */
import { hashOf } from '../digest/algorithms.ts'
import type { AlgorithmName, HashName } from '../digest/types.ts'

/** Which challenge of a folded line a client answers. */
type Reads = 'first' | 'last' | 'strongest'

interface ClientProfile {
  reads: Reads
  supports: ReadonlySet<AlgorithmName>
}

const MD5_ONLY: ReadonlySet<AlgorithmName> = new Set(['MD5'])
const MD5_FAMILY: ReadonlySet<AlgorithmName> = new Set(['MD5', 'MD5-sess'])
const MD5_SHA256_FAMILIES: ReadonlySet<AlgorithmName> = new Set([
  'MD5',
  'MD5-sess',
  'SHA-256',
  'SHA-256-sess',
])
const REQUESTS_ALGORITHMS: ReadonlySet<AlgorithmName> = new Set(['MD5', 'MD5-sess', 'SHA-256'])
const ALL_ALGORITHMS: ReadonlySet<AlgorithmName> = new Set([
  ...MD5_SHA256_FAMILIES,
  'SHA-512-256',
  'SHA-512-256-sess',
])

/** Larger is stronger; the two forms of one hash are equal (the configured order decides). */
const HASH_STRENGTH: Record<HashName, number> = { MD5: 0, 'SHA-256': 1, 'SHA-512-256': 2 }

/** Only the start of a User-Agent is read: every token recognised here comes early. */
const USER_AGENT_PREFIX = 512

interface Rule {
  pattern: RegExp
  /** undefined: a version whose behaviour is not known (treated as an unknown client). */
  profile: (version: readonly number[]) => ClientProfile | undefined
}

const versionAtLeast = (version: readonly number[], major: number, minor = 0): boolean => {
  const [have = 0, haveMinor = 0] = version
  return have > major || (have === major && haveMinor >= minor)
}

/** First match wins; the browser rules come last because their tokens sit mid-string. */
const RULES: readonly Rule[] = [
  {
    // Parameters of a folded line merge, the last `algorithm` wins. SHA-256 from 7.57;
    // SHA-512-256 is hashed with SHA-256 before 8.7.
    pattern: /^curl\/(\d+)\.(\d+)/i,
    profile: (v) => ({
      reads: 'last',
      supports: versionAtLeast(v, 8, 7)
        ? ALL_ALGORITHMS
        : versionAtLeast(v, 7, 57)
          ? MD5_SHA256_FAMILIES
          : MD5_FAMILY,
    }),
  },
  {
    // All challenges merge into one dict: the last wins. An algorithm it lacks means no
    // Authorization at all. HTTPie sends through requests.
    pattern: /^(?:python-requests|HTTPie)\/(\d+)/i,
    profile: () => ({ reads: 'last', supports: REQUESTS_ALGORITHMS }),
  },
  {
    // urllib.request: the last `algorithm` of the line; anything but MD5 (or SHA-1) raises.
    pattern: /^Python-urllib\/(\d+)/i,
    profile: () => ({ reads: 'last', supports: MD5_ONLY }),
  },
  {
    // Stops parsing at the second challenge of a folded line; computes MD5 whatever is offered.
    pattern: /^Wget\/(\d+)/i,
    profile: () => ({ reads: 'first', supports: MD5_FAMILY }),
  },
  {
    // npm urllib, axios-digest-auth: the first challenge, MD5 only.
    pattern: /^(?:node-urllib|axios)\/(\d+)/i,
    profile: () => ({ reads: 'first', supports: MD5_ONLY }),
  },
  {
    // Chrome, Chromium, headless, Edge, Opera, Brave, Android WebView: the last `algorithm` of a
    // folded line. SHA-256 from 117. (It refuses the whole line if any `algorithm` is one it does
    // not know, such as SHA-512-256: no order helps there.)
    pattern: /Chrom(?:e|ium)\/(\d+)/,
    profile: (v) => ({
      reads: 'last',
      supports: versionAtLeast(v, 117) ? MD5_SHA256_FAMILIES : MD5_FAMILY,
    }),
  },
  {
    // From 93 (SHA-256): the strongest algorithm it knows, wherever it stands.
    pattern: /Firefox\/(\d+)/,
    profile: (v) =>
      versionAtLeast(v, 93) ? { reads: 'strongest', supports: MD5_SHA256_FAMILIES } : undefined,
  },
]

function profileOf(userAgent: string): ClientProfile | undefined {
  const head = userAgent.slice(0, USER_AGENT_PREFIX)
  for (const rule of RULES) {
    const match = rule.pattern.exec(head)
    if (match) return rule.profile(match.slice(1).map((part) => Number.parseInt(part, 10)))
  }
  return undefined
}

/**
 * The configured algorithms in the order to offer them to the client that sent `userAgent`:
 * always a permutation of `configured`. For a recognised client the strongest configured
 * algorithm it supports moves to where it reads (first or last), the others keep their order;
 * an unknown client, or one that supports none of them, gets `configured` as it is.
 */
export function arrangeAlgorithms(
  configured: readonly AlgorithmName[],
  userAgent: string | undefined
): AlgorithmName[] {
  const profile = userAgent === undefined ? undefined : profileOf(userAgent)
  if (!profile) return [...configured]
  let best = -1
  configured.forEach((algorithm, i) => {
    if (!profile.supports.has(algorithm)) return
    const current = configured[best]
    if (current === undefined || HASH_STRENGTH[hashOf(algorithm)] > HASH_STRENGTH[hashOf(current)])
      best = i
  })
  const strongest = configured[best]
  if (strongest === undefined) return [...configured]
  const rest = configured.filter((_, i) => i !== best)
  return profile.reads === 'first' ? [strongest, ...rest] : [...rest, strongest]
}
