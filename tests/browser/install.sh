#!/usr/bin/env bash
# Install Chromium and its WebDriver (chromedriver) for the web console's browser test
# (crates/cli/tests/console_browser.rs), from the system's packages: Debian's `chromium` and
# `chromium-driver` (Ubuntu names the driver `chromium-chromedriver`). Idempotent. Runs apt-get
# directly as root, through `sudo -n` otherwise; says so and exits 1 when it cannot install
# (the browser test then fails and says how to install them).
set -euo pipefail
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if command -v chromedriver >/dev/null 2>&1 && [ -n "$browser" ]; then
  echo "chromium ($browser) and chromedriver already installed"
  exit 0
fi
cannot() {
  echo "error: cannot install Chromium and chromedriver for the console's browser test: $1" >&2
  echo "       install them yourself (Debian: apt-get install chromium chromium-driver)," >&2
  echo "       or set SLUICE_SKIP_BROWSER_TESTS=1 to skip that test on this machine." >&2
  exit 1
}
command -v apt-get >/dev/null 2>&1 || cannot "this system has no apt-get"
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  cannot "installing packages needs root (run as root, or with password-less sudo)"
fi
driver=chromium-driver
if ! apt-cache show "$driver" >/dev/null 2>&1; then
  "${as_root[@]}" apt-get update -qq || cannot "apt-get update failed"
  apt-cache show "$driver" >/dev/null 2>&1 || driver=chromium-chromedriver
fi
install() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium "$driver"
}
# A fresh machine may have no package lists yet: update once and try again.
install || { "${as_root[@]}" apt-get update -qq && install; } || cannot "apt-get install chromium $driver failed"
command -v chromedriver >/dev/null 2>&1 || cannot "chromedriver is still not on PATH after installing $driver"
echo "installed chromium and $driver ($(chromedriver --version 2>/dev/null | head -1))"
