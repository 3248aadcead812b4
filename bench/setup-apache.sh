#!/usr/bin/env bash
# Installs Debian's Apache httpd for the bench's row (e): mod_auth_digest + mod_proxy_http.
# Idempotent: does nothing when apache2 is there already. Needs root and the Debian archive.
# bench/run.ts calls it; set BENCH_APACHE=0 to skip the Apache rows instead.
set -euo pipefail
if [ -x /usr/sbin/apache2 ] && [ -f /usr/lib/apache2/modules/mod_auth_digest.so ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup-apache: apache2 is not installed and this is not root: skipping" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends apache2 apache2-utils >/dev/null
