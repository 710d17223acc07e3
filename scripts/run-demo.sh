#!/usr/bin/env bash
# make run: start (or reuse) the embedded PostgreSQL, make sure a `demo` tenant exists, print a
# token and a curl line to try, then run the daemon with the data API in the foreground.
set -euo pipefail
erpctl=bin/erpctl
listen=${LISTEN:-127.0.0.1:8080}
"$erpctl" db url >/dev/null
if ! "$erpctl" tenant show demo >/dev/null 2>&1; then
  "$erpctl" tenant create demo --name "Demo Inc"
fi
token=$("$erpctl" token create demo --name demo -o json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
cat <<MSG

  The daemon is starting on http://$listen (Ctrl-C stops it). Try:

    curl -H 'Authorization: Bearer $token' http://$listen/api/demo/
    curl -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
         -d '{"name":"Tools"}' http://$listen/api/demo/product/categories/

  psql: psql "\$($erpctl db url)"

  For development the daemon runs with --publish-modules: it publishes the module files (the
  built-ins${ERPCTL_MODULES_DIR:+ and $ERPCTL_MODULES_DIR}) as a new module generation whenever they
  change, and rolls it out at once. Without that flag a daemon never publishes: erpctl module
  publish does.

MSG
exec "$erpctl" daemon --listen "$listen" --publish-modules
