#!/usr/bin/env bash
# Makes sure Go and grpc-go's sources are on this machine, to build the grpc-go client the tests use to
# call Trousseau exactly as kube-apiserver does (packages/server/test/fixtures/grpc-go-caller). Both come
# from Debian (golang-go, golang-google-grpc-dev: grpc-go 1.33 in bookworm, the generation kube-apiserver
# 1.20-1.22 was built with), installed with apt-get when missing: nothing is downloaded from elsewhere.
# Prints `go=<version> gopath=<dir>` on its last line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

GOPATH_DEBIAN=/usr/share/gocode
have() {
  command -v go >/dev/null 2>&1 && [ -d "$GOPATH_DEBIAN/src/google.golang.org/grpc" ]
}

if ! have; then
  echo "ensure-go-grpc: installing Debian's golang-go and golang-google-grpc-dev" >&2
  apt_install ensure-go-grpc golang-go golang-google-grpc-dev
fi
have || {
  echo "ensure-go-grpc: go or grpc-go is still missing after the install" >&2
  exit 1
}
echo "go=$(go env GOVERSION) gopath=$GOPATH_DEBIAN"
