#!/usr/bin/env bash
# Debian packages the test suite runs for real: redis-server (queue and fleet-guard tests), chromium and
# chromium-driver (the service's web page, driven by Selenium). Installs only what is missing, so a warm
# machine pays nothing; `apt-get update` runs once, before the first install.
set -euo pipefail
PACKAGES=(redis-server chromium chromium-driver)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
echo "system-packages: installing ${missing[*]}"
sudo=()
((EUID == 0)) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
