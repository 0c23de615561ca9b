#!/usr/bin/env bash
# Builds kube-apiserver, kubectl (v1.34.4) and etcd (v3.6.16) from the Go
# module proxy into bin/, through the pinned wrapper modules in hack/tools.
# A binary that already reports the pinned version is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin}
K8S_VERSION=v1.34.4
ETCD_VERSION=3.6.16
mkdir -p "$BIN"
export GOFLAGS=${GOFLAGS:--buildvcs=false}

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 \
-X k8s.io/component-base/version.gitTreeState=clean"


build_k8s() { # build_k8s <name>
  local name=$1
  if [ -x "$BIN/$name" ] && "$BIN/$name" --version 2>/dev/null | grep -q "$K8S_VERSION"; then
    echo "bin/$name $K8S_VERSION: cached"; return
  fi
  if [ "$name" = kubectl ] && [ -x "$BIN/kubectl" ] && "$BIN/kubectl" version --client 2>/dev/null | grep -q "$K8S_VERSION"; then
    echo "bin/kubectl $K8S_VERSION: cached"; return
  fi
  echo "building bin/$name $K8S_VERSION (several minutes on a cold cache)"
  (cd hack/tools/kube-apiserver && go build -trimpath -ldflags "$ldflags" -o "$BIN/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$BIN/$name.tmp" "$BIN/$name"
}

build_etcd() {
  if [ -x "$BIN/etcd" ] && "$BIN/etcd" --version 2>/dev/null | grep -q "etcd Version: $ETCD_VERSION"; then
    echo "bin/etcd $ETCD_VERSION: cached"; return
  fi
  echo "building bin/etcd $ETCD_VERSION"
  (cd hack/tools/etcd && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" .)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

targets=${*:-kube-apiserver etcd kubectl}
for t in $targets; do
  case $t in
    kube-apiserver|kubectl) build_k8s "$t" ;;
    etcd) build_etcd ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done
