#!/usr/bin/env bash
# Installs Debian's Chromium when the machine has none, so that `make test` runs the console's
# browser tests (controlplane/console drives it through the DevTools protocol). Outside CI those
# tests skip without Chromium; in CI (CI set) they fail, so make test installs it first.
set -euo pipefail
for b in chromium chromium-browser google-chrome; do
  command -v "$b" >/dev/null 2>&1 && exit 0
done
echo "installing Debian's package: chromium (the console's browser tests)" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "run as root or install sudo (or: apt-get install chromium)" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "chromium installed but not found on PATH" >&2; exit 1; }
