# Sourced by the scripts/ensure-*.sh: installs Debian packages with apt-get, one install at a time.
#
# Test files run in parallel and several of them may need a tool on a fresh machine at once (etcd, Go,
# kubectl, Prometheus). apt-get refuses to run while another apt-get holds its locks ("Could not get lock
# /var/lib/dpkg/lock-frontend"), so the installs take turns on one lock file of our own, and apt-get also
# waits for dpkg's lock (held by something else on the machine) instead of failing at once.
#
# Usage: apt_install <tool name for messages> [apt-get install option...] <package>...
# (as root, or through sudo)

apt_install() {
  local who="$1"
  shift
  if ! command -v apt-get >/dev/null 2>&1; then
    local packages=()
    for arg in "$@"; do [[ "$arg" == -* ]] || packages+=("$arg"); done
    echo "$who: apt-get is not available: install ${packages[*]} by hand" >&2
    return 1
  fi
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  (
    if command -v flock >/dev/null 2>&1; then
      exec 8>"${TMPDIR:-/tmp}/trousseau-apt.lock"
      flock 8
    fi
    "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" >&2
  )
  hash -r
}
