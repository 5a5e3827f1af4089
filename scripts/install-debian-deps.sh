#!/usr/bin/env bash
# Debian packages the interop tests and benches need (root only). Skips apt when all are present.
set -euo pipefail
PKGS=(strongswan-swanctl charon-systemd libcharon-extra-plugins libcharon-extauth-plugins
      libstrongswan-extra-plugins libstrongswan-standard-plugins strongswan-pki
      tshark iputils-ping iproute2 strace)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
