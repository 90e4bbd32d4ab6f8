#!/usr/bin/env bash
# System packages the tests need beyond pip: Debian's Chromium for the docs-site and JupyterLab browser tests.
# tools/test.sh runs it first. As root on a machine with apt it installs the package (about 30 s); anywhere else it
# says in one line what to do and exits 0: the browser tests then fail, each with the same line. Installing packages
# is set-up, so no test does it.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then echo "chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"; exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium: $CHROMIUM is missing and this script can install it only as root with apt: run \`sudo apt-get install chromium\` (Debian's package), or put a Chromium at $CHROMIUM; until then the browser tests fail"
  exit 0
fi
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
  echo "chromium: apt-get could not install Debian's chromium package (its error is above); until it can, the browser tests fail"
  exit 0
fi
echo "chromium: $("$CHROMIUM" --version 2>/dev/null)"
