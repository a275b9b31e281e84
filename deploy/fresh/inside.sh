#!/usr/bin/env bash
# PID 1 of the fresh root (see deploy/fresh/__main__.py): runs the README's `make test`
# as the new user, in a login shell as that user would (Debian's user PATH, no sbin),
# then says how it ended and waits. Waiting keeps the root's PostgreSQL and RabbitMQ
# running so the runner can look at what listens where; the runner ends this process,
# and with it everything in the root's PID namespace.
#
# Usage (as root in the chroot): inside.sh USER REPOSITORY
set -euo pipefail

user="$1"
repo="$2"

. /etc/os-release
echo "siui-fresh: inside $PRETTY_NAME, host $(cat /etc/hostname), as $user in $repo"

rc=0
# runuser -l: a login shell with the environment a new session of that user gets.
runuser -l "$user" -c "cd '$repo' && echo \"siui-fresh: user PATH=\$PATH\" && make test" </dev/null || rc=$?
echo "siui-fresh: make-test-exit=$rc"

# Until the runner is done looking; as PID 1 only its SIGKILL from outside ends it.
exec sleep infinity
