#!/usr/bin/env bash
# make run: start (or reuse) the embedded PostgreSQL, make sure a `demo` tenant exists, print a
# token and a curl line to try and the console's one-time login link, then run the daemon with
# the data API and the console in the foreground.
set -euo pipefail
erpctl=bin/erpctl
listen=${LISTEN:-127.0.0.1:8080}
console=${CONSOLE_LISTEN:-127.0.0.1:8081}
"$erpctl" db url >/dev/null
if ! "$erpctl" tenant show demo >/dev/null 2>&1; then
  "$erpctl" tenant create demo --name "Demo Inc"
fi
token=$("$erpctl" token create demo --name demo -o json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')
login=$("$erpctl" operator token create make-run --console-url "http://$console" -o json | sed -n 's/.*"login_url": *"\([^"]*\)".*/\1/p')
modules="the built-ins; set ERPCTL_MODULES_DIR for your own"
[ -n "${ERPCTL_MODULES_DIR:-}" ] && modules="the built-ins and $ERPCTL_MODULES_DIR"
cat <<MSG

  The daemon is starting on http://$listen (Ctrl-C stops it). Try:

    curl -H 'Authorization: Bearer $token' http://$listen/api/demo/
    curl -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
         -d '{"name":"Tools"}' http://$listen/api/demo/product/categories/

  The console (fleet, tenants, rollouts, generations) is at http://$console; open this
  one-time login link to sign in (it works once, within 24 hours; erpctl operator token create
  NAME makes more):

    $login

  psql: psql "\$($erpctl db url)"

  For development the daemon runs with --publish-modules: whenever the module files
  change ($modules), it publishes them as a new module generation and rolls it out at once.
  Without that flag a daemon never publishes: erpctl module publish does.

MSG
exec "$erpctl" daemon --listen "$listen" --console-listen "$console" --publish-modules
