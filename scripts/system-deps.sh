#!/usr/bin/env bash
# Debian packages some tests drive for real: Chromium (the dashboard page, via Playwright),
# redis-server (the shared cache of Ray Serve replicas), iproute2 (a loopback-only network namespace
# for Ray). Installed when missing and we are root; without them those tests skip, saying why.
set -uo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "not installed (tests that need them will skip): ${missing[*]}" >&2
  fi
fi
exit 0
