#!/usr/bin/env bash
# Debian packages the test suite drives for real: a PostgreSQL 15 server,
# Chromium, wrk (the load generator of bench/), Node's npm (it installs the
# pinned axe-core of the accessibility test), Redis (shared throttle counters) and
# nginx (the load balancer in front of the cluster test's replicas), Prometheus (the
# cluster test's scraper; its promtool checks deploy/prometheus/). Installed when
# missing (as root); otherwise a loud failure.
set -euo pipefail

missing=()
{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v wrk >/dev/null || missing+=(wrk)
command -v npm >/dev/null || missing+=(nodejs npm)
command -v redis-server >/dev/null || missing+=(redis-server)
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing+=(nginx-light)
command -v promtool >/dev/null || missing+=(prometheus)
getent passwd postgres >/dev/null || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} -- install them: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages such as prometheus start their daemon on install (prometheus on :9090);
# the tests start their own on free ports, so no service may start: policy-rc.d
# answering 101 forbids it, for this install only when none was there.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ -x /usr/bin/chromium ] || { echo "chromium did not install" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk did not install" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm did not install" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server did not install" >&2; exit 1; }
[ -x /usr/sbin/nginx ] || { echo "nginx did not install" >&2; exit 1; }
command -v promtool >/dev/null || { echo "prometheus (promtool) did not install" >&2; exit 1; }
