#!/usr/bin/env bash
# Installs the Debian packages the network lab needs (and any extra
# packages given as arguments) when they are missing, without starting their
# system services: the lab runs its own daemons in network namespaces.
# Idempotent; a no-op when everything is installed. Used by `make lab` and
# .ci/run. Needs root to install.
set -euo pipefail
pkgs="iproute2 iputils-ping iputils-arping ndisc6 frr bird2 keepalived procps $*"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "lab: missing Debian packages:$missing (run as root to install them)" >&2
  exit 1
fi
echo "lab: installing$missing"
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
for svc in frr bird keepalived; do
  systemctl stop "$svc" >/dev/null 2>&1 || true
  systemctl disable "$svc" >/dev/null 2>&1 || true
done
