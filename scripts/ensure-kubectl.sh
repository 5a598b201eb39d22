#!/usr/bin/env bash
# Makes sure a kubectl whose built-in kustomize can render deploy/kustomize is on PATH, and prints which
# one on its last line as `kubectl=<path> <client version> kustomize=<version>`.
#
# The machine's kubectl is used when it works offline (`kubectl kustomize` needs no cluster). On these
# machines that is Google Cloud SDK's "kubectl dispatcher" (client version v1.32.4-dispatcher): a wrapper
# that, given a cluster, runs the kubectl.1.NN binary matching the server's minor version from its own
# directory, and with no cluster to ask runs its built-in kubectl (1.32, kustomize v5.5.0).
# Otherwise Debian's kubernetes-client is installed with apt-get.
#
# Usable means: renders a kustomization that uses a Component (kustomize v3.7 and later). Debian
# bookworm's kubernetes-client is kubectl 1.20 with kustomize v2.0.3, which cannot; the script then says so
# and fails rather than let a test pass on a partial render.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

# No cluster is involved: keep a kubeconfig on the machine from steering the dispatcher towards a server.
export KUBECONFIG=/nonexistent/trousseau-kubeconfig

probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
mkdir -p "$probe_dir/base" "$probe_dir/component"
cat >"$probe_dir/base/kustomization.yaml" <<'YAML'
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - cm.yaml
components:
  - ../component
YAML
cat >"$probe_dir/base/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: probe
data:
  from: base
YAML
cat >"$probe_dir/component/kustomization.yaml" <<'YAML'
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - cm.yaml
YAML
cat >"$probe_dir/component/cm.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: probe-component
data:
  from: component
YAML

usable() {
  command -v kubectl >/dev/null 2>&1 || return 1
  local out
  out="$(kubectl kustomize "$probe_dir/base" 2>/dev/null)" || return 1
  grep -q 'name: probe-component' <<<"$out"
}

describe() {
  local path version kustomize
  path="$(command -v kubectl)"
  version="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1)"
  kustomize="$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"kustomizeVersion": *"\([^"]*\)".*/\1/p' | head -n1)"
  echo "kubectl=${path} ${version:-unknown} kustomize=${kustomize:-unknown}"
}

if usable; then
  describe
  exit 0
fi

if command -v kubectl >/dev/null 2>&1; then
  echo "ensure-kubectl: $(command -v kubectl) cannot render a kustomization with components; installing Debian's kubernetes-client" >&2
else
  echo "ensure-kubectl: no kubectl on PATH; installing Debian's kubernetes-client" >&2
fi
apt_install ensure-kubectl kubernetes-client

if usable; then
  describe
  exit 0
fi
echo "ensure-kubectl: $(describe) is installed but its kustomize is too old for components (needs kubectl 1.21+)" >&2
exit 1
