#!/usr/bin/env bash
# System packages the tests need beyond pip: Debian's Chromium for the docs-site browser tests.
# Run once as root on a fresh machine (.ci/run calls it). Installing packages is set-up, so no test does it.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"; exit 0; fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
