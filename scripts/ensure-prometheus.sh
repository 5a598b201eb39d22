#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` are on PATH, for the tests of the alert rules and the dashboard in
# deploy/monitoring, and prints which ones on its last line as
# `prometheus=<path> <version> promtool=<path> <version>`.
#
# The machine's binaries are used when both run. Otherwise Debian's `prometheus` package, which ships both,
# is installed with apt-get (as root, or through sudo), without its recommended node exporter.
#
# The tests start their own Prometheus on 127.0.0.1 with a temporary data directory; they need only the
# binaries. On a machine run by systemd the package also enables and starts a system Prometheus listening
# on every interface (:9090): when this script installed the package, it stops and disables that service
# again, so the tests leave nothing listening behind. (Where services cannot start, as in most containers,
# there is nothing to stop.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

usable() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || return 1
  prometheus --version >/dev/null 2>&1 && promtool --version >/dev/null 2>&1
}

describe() {
  local prometheus_version promtool_version
  prometheus_version="$(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p' | head -n1)"
  promtool_version="$(promtool --version 2>&1 | sed -n 's/^promtool, version \([^ ]*\).*/\1/p' | head -n1)"
  echo "prometheus=$(command -v prometheus) ${prometheus_version:-unknown} promtool=$(command -v promtool) ${promtool_version:-unknown}"
}

if usable; then
  describe
  exit 0
fi

# Test files run in parallel and each may call this script: one installs while the others wait for it.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/trousseau-ensure-prometheus.lock"
  flock 9
  if usable; then
    describe
    exit 0
  fi
fi

echo "ensure-prometheus: prometheus or promtool is missing; installing Debian's prometheus package" >&2
apt_install ensure-prometheus --no-install-recommends prometheus
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

if [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then
  echo "ensure-prometheus: stopping and disabling the system Prometheus service the package started (the tests run their own)" >&2
  "${sudo_cmd[@]}" systemctl disable --now prometheus >&2
fi

if usable; then
  describe
  exit 0
fi
echo "ensure-prometheus: the prometheus package is installed but prometheus or promtool does not run" >&2
exit 1
