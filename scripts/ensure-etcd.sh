#!/usr/bin/env bash
# Makes sure an etcd server binary is on this machine, for the tests of `trousseau etcd-report`, which
# start a real etcd on 127.0.0.1 with a temporary data directory and free ports. Uses the machine's `etcd`
# when it runs, otherwise installs Debian's etcd-server (etcd 3.4 in bookworm) with apt-get. Nothing is
# downloaded from elsewhere, and no etcd service is left running: the tests start their own.
# Prints `etcd=<path> <version>` on its last line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

usable() {
  command -v etcd >/dev/null 2>&1 && etcd --version >/dev/null 2>&1
}

describe() {
  local version
  version="$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: *//p' | head -n1)"
  echo "etcd=$(command -v etcd) ${version:-unknown}"
}

if usable; then
  describe
  exit 0
fi

echo "ensure-etcd: no etcd on PATH; installing Debian's etcd-server" >&2
# The package's own service is not wanted (the tests start etcd themselves): policy-rc.d 101 keeps
# invoke-rc.d from starting it where there is an init system, for the length of this install only.
policy=/usr/sbin/policy-rc.d
created_policy=0
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then "${sudo_cmd[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT
apt_install ensure-etcd --no-install-recommends etcd-server

if usable; then
  describe
  exit 0
fi
echo "ensure-etcd: etcd-server is installed but \`etcd --version\` fails" >&2
exit 1
