#!/usr/bin/env bash
# Builds the real control-plane components from Go modules into a cache directory
# outside the repository, once; later runs reuse what is there.
#   etcd 3.6, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (one
#   Kubernetes release), kwok, helm.
# Cache: $GPUPOOL_CACHE (default ~/.cache/gpupool). Binaries land in $GPUPOOL_CACHE/bin.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
KWOK_VERSION=${KWOK_VERSION:-v0.7.0}
HELM_VERSION=${HELM_VERSION:-v3.19.5}

CACHE=${GPUPOOL_CACHE:-$HOME/.cache/gpupool}
BIN="$CACHE/bin"
SRC="$CACHE/src"
mkdir -p "$BIN" "$SRC"
export GOFLAGS="-trimpath"
export CGO_ENABLED=0

log() { printf '[build-tools] %s\n' "$*" >&2; }

stamp_ok() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

# A throwaway module per tool: upstream go.mod files carry replace directives that
# `go install pkg@version` refuses, so we restate them against published versions.
build_module() { # name version gomod-body ldflags packages...
  local name=$1 version=$2 body=$3 ldflags=$4; shift 4
  local dir="$SRC/$name-$version"
  mkdir -p "$dir"
  printf '%s\n' "$body" > "$dir/go.mod"
  printf 'package tools\n\nimport (\n' > "$dir/tools.go"
  for pkg in "$@"; do printf '\t_ "%s"\n' "$pkg" >> "$dir/tools.go"; done
  printf ')\n' >> "$dir/tools.go"
  sed -i '1i //go:build tools\n' "$dir/tools.go"
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go mod tidy -e >/dev/null 2>&1 || true)
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go mod download)
  for pkg in "$@"; do
    local out; out=$(basename "$pkg")
    log "go build $pkg ($version)"
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "-s -w $ldflags" -o "$BIN/$out.tmp" "$pkg")
    mv "$BIN/$out.tmp" "$BIN/$out"
  done
}

k8s_tools=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
need=0; for t in "${k8s_tools[@]}"; do stamp_ok "$t" "$K8S_VERSION" || need=1; done
if [ $need = 1 ]; then
  staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
    cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
    cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms
    kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
    mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller)
  minor=${K8S_VERSION#v1.}
  body="module gpupool.local/k8stools
go 1.24.0
require k8s.io/kubernetes $K8S_VERSION"
  for s in "${staging[@]}"; do body+=$'\n'"replace k8s.io/$s => k8s.io/$s v0.$minor"; done
  ver="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  dir="$SRC/k8s-$K8S_VERSION"; mkdir -p "$dir"; printf '%s\n' "$body" > "$dir/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > "$dir/tools.go"
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go mod tidy -e >/dev/null 2>&1 || true)
  for t in "${k8s_tools[@]}"; do
    stamp_ok "$t" "$K8S_VERSION" && continue
    log "go build k8s.io/kubernetes/cmd/$t ($K8S_VERSION)"
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "-s -w $ver" -o "$BIN/$t.tmp" "k8s.io/kubernetes/cmd/$t")
    mv "$BIN/$t.tmp" "$BIN/$t"; stamp "$t" "$K8S_VERSION"
  done
fi

if ! stamp_ok etcd "$ETCD_VERSION"; then
  body="module gpupool.local/etcdtools
go 1.24.0
require go.etcd.io/etcd/server/v3 $ETCD_VERSION
replace go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
replace go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
replace go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
replace go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION"
  build_module etcd "$ETCD_VERSION" "$body" "" go.etcd.io/etcd/server/v3
  mv "$BIN/v3" "$BIN/etcd"; stamp etcd "$ETCD_VERSION"
fi

if ! stamp_ok kwok "$KWOK_VERSION"; then
  body="module gpupool.local/kwoktools
go 1.24.0
require sigs.k8s.io/kwok $KWOK_VERSION"
  build_module kwok "$KWOK_VERSION" "$body" "" sigs.k8s.io/kwok/cmd/kwok
  stamp kwok "$KWOK_VERSION"
fi

# helm's own version, and the Kubernetes version it assumes when rendering offline.
k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for p in pkg/chartutil pkg/lint/rules; do
  helm_ldflags+=" -X helm.sh/helm/v3/$p.k8sVersionMajor=1 -X helm.sh/helm/v3/$p.k8sVersionMinor=$k8s_minor"
done
if ! stamp_ok helm "$HELM_VERSION+k8s1.$k8s_minor"; then
  body="module gpupool.local/helmtools
go 1.24.0
require helm.sh/helm/v3 $HELM_VERSION"
  build_module helm "$HELM_VERSION" "$body" "$helm_ldflags" helm.sh/helm/v3/cmd/helm
  stamp helm "$HELM_VERSION+k8s1.$k8s_minor"
fi

log "tools ready in $BIN"
ls "$BIN" >&2
