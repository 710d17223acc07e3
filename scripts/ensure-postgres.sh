#!/usr/bin/env bash
# Installs Debian's PostgreSQL server binaries when the machine has none, so that `make run` and
# `make test` work on a fresh machine. erpctl looks in `pg_config --bindir`,
# /usr/lib/postgresql/*/bin and PATH, in that order; so does this check.
set -euo pipefail
have() {
  local d
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null || true)
    [[ -n $d && -x $d/initdb && -x $d/postgres ]] && return 0
  fi
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/initdb && -x $d/postgres ]] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1
}
have_pgbouncer() { command -v pgbouncer >/dev/null 2>&1 || [[ -x /usr/sbin/pgbouncer ]]; }
pkgs=()
have || pkgs+=(postgresql)
# The tests also run the control plane through PgBouncer in transaction-pooling mode.
have_pgbouncer || pkgs+=(pgbouncer)
[[ ${#pkgs[@]} -eq 0 ]] && exit 0
echo "installing Debian's packages: ${pkgs[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "run as root or install sudo (or: apt-get install postgresql)" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
have_pgbouncer || { echo "pgbouncer installed but not found on PATH or in /usr/sbin" >&2; exit 1; }
have || { echo "postgresql installed but its server binaries were not found" >&2; exit 1; }
