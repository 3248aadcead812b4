#!/usr/bin/env bash
# `npm run e2e:deps`: what the end-to-end tests and benchmarks need beyond node_modules, installed
# only where missing (idempotent). Debian packages: the real Digest clients under test (curl, wget,
# python3-requests for Debian's /usr/bin/python3, chromium, firefox-esr) and apache2
# (mod_auth_digest, a peer for benchmarks). The npm clients and drivers (playwright-core,
# puppeteer-core, digest-fetch, urllib) are devDependencies: checked here, installed from the
# lockfile if absent. Neither driver downloads a browser: the tests drive Debian's /usr/bin/chromium
# and /usr/bin/firefox-esr.
set -euo pipefail
cd "$(dirname "$0")/../.."

APT_PACKAGES=(curl wget python3-requests chromium firefox-esr apache2)
NPM_PACKAGES=(playwright-core puppeteer-core digest-fetch urllib)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "e2e:deps: installing from apt: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  # Keep apt from starting services (apache2 would take port 80): a policy-rc.d for the duration.
  policy=/usr/sbin/policy-rc.d
  added_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    added_policy=true
  fi
  trap 'if [[ $added_policy == true ]]; then "${sudo[@]}" rm -f "$policy"; fi' EXIT
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  echo "e2e:deps: apt packages present: ${APT_PACKAGES[*]}"
fi

npm_missing=()
for pkg in "${NPM_PACKAGES[@]}"; do
  [[ -f node_modules/$pkg/package.json ]] || npm_missing+=("$pkg")
done
if ((${#npm_missing[@]} > 0)); then
  echo "e2e:deps: npm devDependencies missing (${npm_missing[*]}): npm ci"
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund
fi

# What the tests will use, with versions (goes into docs/interop.md through the test run).
/usr/bin/curl --version | head -1
/usr/bin/wget --version | head -1
/usr/bin/python3 -c 'import requests, sys; print("python3-requests", requests.__version__, "python", sys.version.split()[0])'
/usr/bin/chromium --version 2>/dev/null || echo "chromium: not runnable"
/usr/bin/firefox-esr --version 2>/dev/null || echo "firefox-esr: not runnable"
