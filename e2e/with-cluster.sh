#!/usr/bin/env bash
# Runs a command with the local control plane up. Starts it when it is not running
# and then stops it afterwards (whatever the command's outcome); a control plane that
# was already running is left running.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
started=0
if ! "$here/cluster.sh" status >/dev/null 2>&1; then
  "$here/cluster.sh" up || { "$here/cluster.sh" down; exit 1; }
  started=1
fi
eval "$("$here/cluster.sh" env)"
"$@"
rc=$?
[ $started = 1 ] && "$here/cluster.sh" down
exit $rc
