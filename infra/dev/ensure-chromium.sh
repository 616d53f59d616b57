#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests (tests/browser), installing it
# with apt-get when missing (Debian/Ubuntu, as root). Playwright drives it; `playwright install` is not used.
set -euo pipefail

if [ -x /usr/bin/chromium ] || [ -n "${PLAYGROUND_TEST_CHROMIUM:-}" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium with apt-get" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "error: /usr/bin/chromium is missing; install Debian's chromium or set PLAYGROUND_TEST_CHROMIUM" >&2
  exit 1
fi
