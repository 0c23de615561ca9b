#!/usr/bin/env bash
# Builds opm (operator-registry's CLI) into bin/ from the module of
# hack/bundlecheck, which pins operator-registry v1.60.0 (`go install
# ...@v1.60.0` does not work from the module proxy; see
# ../shared/reference/olm.md §8). A bin/opm that reports the pinned version
# is not rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin}
OPM_VERSION=v1.60.0
export GOFLAGS=${GOFLAGS:--buildvcs=false}
mkdir -p "$BIN"

if ! grep -q "github.com/operator-framework/operator-registry $OPM_VERSION" hack/bundlecheck/go.mod; then
  echo "hack/bundlecheck/go.mod does not pin operator-registry $OPM_VERSION" >&2
  exit 1
fi
if [ -x "$BIN/opm" ] && "$BIN/opm" version 2>/dev/null | grep -q "OpmVersion:\"$OPM_VERSION\""; then
  echo "bin/opm $OPM_VERSION: cached"
  exit 0
fi
echo "building bin/opm $OPM_VERSION (2-3 minutes on a cold cache)"
(cd hack/bundlecheck && go build -tags json1,containers_image_openpgp \
  -ldflags "-s -w -X github.com/operator-framework/operator-registry/cmd/opm/version.opmVersion=$OPM_VERSION" \
  -o "$BIN/opm.tmp" github.com/operator-framework/operator-registry/cmd/opm)
mv "$BIN/opm.tmp" "$BIN/opm"
