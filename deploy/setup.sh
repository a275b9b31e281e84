#!/usr/bin/env bash
# Brings a machine to the point where SIUI Access can run and be tested: installs what
# is missing, gets PostgreSQL and RabbitMQ listening on 127.0.0.1 (using ones already
# there), creates the database and its role, the .venv, and the dev PKI.
#
# Idempotent and quick when everything is in place (`make up` and `make test` run it
# every time). Works on this kind of dev machine and on a fresh Debian 12 / Ubuntu
# as root or with sudo, with or without systemd.
#
# Usage: deploy/setup.sh [--bench]     --bench also installs wrk (benchmarks only)
#
# Environment (defaults as printed at the end):
#   SIUI_DATABASE_URL  default postgresql://siui:siui@127.0.0.1:5432/siui. A role with a
#                      password works both where 127.0.0.1 is "trust" (password ignored)
#                      and on a fresh Debian/Ubuntu cluster (scram-sha-256 on 127.0.0.1).
#                      Role and database are created when the DSN points at 127.0.0.1:5432.
#                      The services connect as this role, which may not alter the schemas
#                      nor change the audit trail.
#   SIUI_DATABASE_OWNER_URL  default postgresql://siui_owner:siui_owner@127.0.0.1:5432/siui:
#                      the role that owns the database and its schemas and runs the
#                      migrations (created alongside; a database and schemas the service
#                      role owned from before are handed over to it).
#   SIUI_AMQP_URL      default amqp://127.0.0.1:5672/ (no user: each service logs in as
#                      its own, siui-<service>, with the password made here). On
#                      127.0.0.1:5672 the users, their permissions and the topology of
#                      SIUI_EVENTS_EXCHANGE (default siui.events) are set with rabbitmqctl;
#                      SIUI_AMQP_USER_PREFIX (siui-) and SIUI_AMQP_EXCHANGE_PREFIX (siui.)
#                      name the users and the exchanges their permissions cover.
#   SIUI_DATA_DIR      default .siui (relative to the repository).
set -euo pipefail

DEFAULT_DATABASE_URL="postgresql://siui:siui@127.0.0.1:5432/siui"
DEFAULT_DATABASE_OWNER_URL="postgresql://siui_owner:siui_owner@127.0.0.1:5432/siui"
DEFAULT_AMQP_URL="amqp://127.0.0.1:5672/"
PG_DEADLINE=60
RABBIT_DEADLINE=120

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export SIUI_DATABASE_URL="${SIUI_DATABASE_URL:-$DEFAULT_DATABASE_URL}"
export SIUI_DATABASE_OWNER_URL="${SIUI_DATABASE_OWNER_URL:-$DEFAULT_DATABASE_OWNER_URL}"
export SIUI_AMQP_URL="${SIUI_AMQP_URL:-$DEFAULT_AMQP_URL}"
export SIUI_DATA_DIR="${SIUI_DATA_DIR:-.siui}"
# C.UTF-8 ships with glibc on Debian 12 and Ubuntu 22.04+, unlike a user's LANG: it
# keeps initdb (run by the postgresql package or by us) from failing on a bad locale.
export LC_ALL=C.UTF-8
# A normal user's PATH on Debian has no sbin directories, where rabbitmq-server (and
# other daemons' tools) live: `command -v` would not find what apt has just installed.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

BENCH=0
for arg in "$@"; do
    case "$arg" in
        --bench) BENCH=1 ;;
        -h | --help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

STARTED=$SECONDS
step() { printf '==> %s\n' "$*"; }
info() { printf '    %s\n' "$*"; }
warn() { printf 'setup: warning: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "needs root (or sudo) for: $*"
    fi
}

# True when something accepts TCP connections on host $1, port $2.
listening() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Polls "$@" once a second until it succeeds or $1 seconds have passed.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# The first python >= 3.11 on PATH.
find_python() {
    local candidate path
    for candidate in python3 python3.13 python3.12 python3.11; do
        path="$(command -v "$candidate" 2>/dev/null)" || continue
        if "$path" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$path"
            return 0
        fi
    done
    return 1
}

venv_ok() {
    [ -x .venv/bin/python ] \
        && .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

# Splits a URL into lines: host, port, user, password, path (without the "/").
split_url() {
    "$PYTHON" - "$1" "$2" <<'PY'
import sys
from urllib.parse import unquote, urlsplit
u = urlsplit(sys.argv[1])
for value in (u.hostname or "127.0.0.1", u.port or sys.argv[2], unquote(u.username or ""),
              unquote(u.password or ""), unquote(u.path.lstrip("/"))):
    print(value)
PY
}

is_local() { case "$1" in 127.0.0.1 | localhost | ::1) return 0 ;; *) return 1 ;; esac; }

APT_UPDATED=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: $*"
    local policy_added=0
    if [ "$APT_UPDATED" -eq 0 ]; then
        info "apt-get update"
        as_root apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
        APT_UPDATED=1
    fi
    # Keep the packages' maintainer scripts from starting postgresql/rabbitmq through
    # init scripts (a failed start there fails the whole install); we start them below.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
        trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    info "apt-get install $*"
    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 \
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "$@" || rc=$?
    if [ "$policy_added" -eq 1 ]; then
        as_root rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    return "$rc"
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || printf '%s\n' "$pkg"
    done
}

# Appends line $2 to config file $1 (as root) unless a line matching regex $3 is there.
config_default() {
    local file="$1" line="$2" present="$3"
    grep -qsE "$present" "$file" && return 0
    info "$file: $line"
    as_root install -d -m 0755 "$(dirname "$file")"
    printf '%s\n' "$line" | as_root tee -a "$file" >/dev/null
}

rabbitmq_loopback_only() {
    # The node's name must be on loopback too: the default rabbit@<hostname> resolves to
    # 127.0.1.1 on Debian (or to nothing in some containers), where an epmd bound to
    # 127.0.0.1 cannot be reached ("epmd error for host ...: address"), and the node
    # does not start. Server and CLI tools read the name from rabbitmq-env.conf.
    if ! grep -qsE '^[[:space:]]*(RABBITMQ_)?NODENAME=' /etc/rabbitmq/rabbitmq-env.conf \
        && as_root sh -c 'ls -d /var/lib/rabbitmq/mnesia/rabbit@* 2>/dev/null' | grep -qv '@localhost$'; then
        warn "RabbitMQ has data of a node with another name; rabbit@localhost starts empty"
    fi
    config_default /etc/rabbitmq/rabbitmq-env.conf 'NODENAME=rabbit@localhost' \
        '^[[:space:]]*(RABBITMQ_)?NODENAME='
    config_default /etc/rabbitmq/rabbitmq.conf 'listeners.tcp.default = 127.0.0.1:5672' \
        '^[[:space:]]*listeners\.tcp\.'
    # rabbitmq-env.conf is sourced by the server's and the CLI's start scripts: ERL_EPMD_ADDRESS
    # is exported to epmd; the *_ERL_ARGS reach erl (server, and CLI tools, which listen too).
    config_default /etc/rabbitmq/rabbitmq-env.conf 'ERL_EPMD_ADDRESS=127.0.0.1' \
        '^[[:space:]]*(export[[:space:]]+)?ERL_EPMD_ADDRESS='
    config_default /etc/rabbitmq/rabbitmq-env.conf \
        'SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"' \
        '^[[:space:]]*(RABBITMQ_)?SERVER_ADDITIONAL_ERL_ARGS=|^[^#]*ERL_FLAGS=.*inet_dist_use_interface'
    config_default /etc/rabbitmq/rabbitmq-env.conf \
        'CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"' \
        '^[[:space:]]*(RABBITMQ_)?CTL_ERL_ARGS=|^[^#]*ERL_FLAGS=.*inet_dist_use_interface'
}

# -- 1. packages ----------------------------------------------------------------------
step "System packages"
PYTHON="$(find_python || true)"
PG_LISTENING=0; listening 127.0.0.1 5432 && PG_LISTENING=1
RABBIT_LISTENING=0; listening 127.0.0.1 5672 && RABBIT_LISTENING=1
if command -v dpkg >/dev/null 2>&1; then
    # chromium: the e2e tests' browser (Debian's; Playwright downloads none). libatomic1:
    # Playwright's driver (a node binary) links libatomic.so.1, which a minimal Debian lacks.
    # curl: the README's walk (and its test) use it; a minimal Debian has none.
    # prometheus: promtool and the monitoring e2e test. xvfb, xdotool, imagemagick: the
    # desktop window's e2e test (a display, real input events, screenshots); python3-tk
    # when the chosen python has no tkinter (Debian's). nginx: the TLS proxy's e2e test
    # runs deploy/nginx/ as a child process (the system's nginx service is never started).
    # softhsm2: the OCSP responder key's PKCS#11 tests and `make up-hsm` (deploy/hsm.py
    # keeps its token in the data directory; the package's /var/lib/softhsm is unused).
    # systemd: its systemd-analyze verify checks deploy/systemd/ (reads the unit files; no
    # systemd need run, and none is started: a minimal Debian container has none).
    # haproxy: the load balancer's e2e test runs deploy/haproxy/ in front of two stacks as
    # a child process (the system's haproxy service is never started).
    want=(openssl poppler-utils libnss3-tools fonts-dejavu-core tmux postgresql-client
        chromium libatomic1 curl prometheus xvfb xdotool imagemagick nginx softhsm2 systemd haproxy)
    { [ -n "$PYTHON" ] && "$PYTHON" -c 'import tkinter' 2>/dev/null; } || want+=(python3-tk)
    [ "$PG_LISTENING" -eq 1 ] || want+=(postgresql)
    [ "$RABBIT_LISTENING" -eq 1 ] || want+=(rabbitmq-server)
    [ -n "$PYTHON" ] || want+=(python3 python3-venv)
    # Debian's python3 leaves venv's pip bootstrap to python3-venv.
    if [ -n "$PYTHON" ] && ! venv_ok && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        want+=(python3-venv "python$version-venv")
    fi
    [ "$BENCH" -eq 0 ] || want+=(wrk)
    mapfile -t missing < <(missing_packages "${want[@]}")
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
    if [ -z "$PYTHON" ]; then
        # Ubuntu 22.04's python3 is 3.10; its archive also has python3.11.
        PYTHON="$(find_python || true)"
        if [ -z "$PYTHON" ]; then
            apt_install python3.11 python3.11-venv && PYTHON="$(find_python || true)"
        fi
    fi
    [ "${#missing[@]}" -gt 0 ] || info "all present"
else
    warn "not a Debian/Ubuntu system: installing nothing; expecting the tools to be there"
fi
[ -n "$PYTHON" ] || die "no python >= 3.11 found"
info "python: $PYTHON"

mapfile -t DB < <(split_url "$SIUI_DATABASE_URL" 5432)
DB_HOST="${DB[0]}" DB_PORT="${DB[1]}" DB_USER="${DB[2]:-$(id -un)}" DB_PASS="${DB[3]}"
DB_NAME="${DB[4]:-siui}"
mapfile -t OWNER < <(split_url "$SIUI_DATABASE_OWNER_URL" 5432)
OWNER_HOST="${OWNER[0]}" OWNER_PORT="${OWNER[1]}" OWNER_USER="${OWNER[2]:-siui_owner}" OWNER_PASS="${OWNER[3]}"
OWNER_NAME="${OWNER[4]:-siui}"

# -- 2. PostgreSQL ----------------------------------------------------------------------
step "PostgreSQL on 127.0.0.1:5432"
if listening 127.0.0.1 5432; then
    info "already listening"
else
    command -v pg_lsclusters >/dev/null 2>&1 || die "postgresql is not installed"
    # /var/run is a tmpfs on many machines: the socket directory may be gone, and
    # pg_createcluster puts the socket in /tmp when it cannot write there.
    as_root install -d -m 2775 -o postgres -g postgres /var/run/postgresql
    # The cluster on port 5432: "version name status", or nothing.
    read -r PG_VERSION PG_CLUSTER PG_STATUS \
        < <(pg_lsclusters -h | awk '$3 == 5432 { print $1, $2, $4; exit }') || true
    if [ -z "${PG_VERSION:-}" ]; then
        PG_VERSION="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' \
            | sort -V | tail -n 1)"
        PG_CLUSTER=main
        if [ -d "/etc/postgresql/$PG_VERSION/main" ]; then
            PG_CLUSTER=siui  # "main" exists on another port: leave it alone
        fi
        info "creating cluster $PG_VERSION/$PG_CLUSTER"
        as_root pg_createcluster --port 5432 "$PG_VERSION" "$PG_CLUSTER" >/dev/null
        PG_STATUS=down
    fi
    case "$PG_STATUS" in
        online*) info "cluster $PG_VERSION/$PG_CLUSTER runs but not on 127.0.0.1:5432 yet" ;;
        *)
            info "starting cluster $PG_VERSION/$PG_CLUSTER"
            as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start
            ;;
    esac
fi
wait_for "$PG_DEADLINE" pg_isready -h 127.0.0.1 -p 5432 -t 2 \
    || die "PostgreSQL not ready on 127.0.0.1:5432 after ${PG_DEADLINE}s (see /var/log/postgresql)"
info "ready"

# -- 3. RabbitMQ ------------------------------------------------------------------------
step "RabbitMQ on 127.0.0.1:5672"
if listening 127.0.0.1 5672; then
    info "already listening"
else
    command -v rabbitmq-server >/dev/null 2>&1 || die "rabbitmq-server is not installed"
    # Started by us, so configured by us: the AMQP listener, the distribution port
    # (25672, and the CLI tools' 35672-35682) and epmd (4369) all listen on 127.0.0.1
    # only. Debian's defaults are every interface, which on a fresh machine puts an
    # Erlang node (with a cookie guarding it) on the network. A setting the machine's
    # owner already made is kept.
    rabbitmq_loopback_only
    # The Debian wrapper runs the server as user rabbitmq, HOME /var/lib/rabbitmq, where
    # its Erlang cookie is created; -detached also starts epmd.
    info "starting rabbitmq-server -detached"
    # A node already booting (or a name clash) fails here; the port decides below.
    as_root rabbitmq-server -detached || warn "rabbitmq-server -detached exited with $?"
    wait_for "$RABBIT_DEADLINE" listening 127.0.0.1 5672 \
        || die "RabbitMQ not on 127.0.0.1:5672 after ${RABBIT_DEADLINE}s (see /var/log/rabbitmq)"
fi
info "ready"

# -- 4. database and role ---------------------------------------------------------------
step "Database $DB_NAME (roles $DB_USER, $OWNER_USER)"
if is_local "$DB_HOST" && [ "$DB_PORT" = 5432 ]; then
    # A superuser connection: trust on 127.0.0.1 where there is one, else peer
    # authentication as the postgres OS user over the Unix socket (fresh Debian).
    for admin in "psql -h 127.0.0.1" \
        "as_root runuser -u postgres -- psql -h /var/run/postgresql" \
        "as_root runuser -u postgres -- psql -h /tmp"; do
        read -r -a PG_ADMIN <<<"$admin -p 5432 -U postgres"
        (cd / && PGCONNECT_TIMEOUT=5 "${PG_ADMIN[@]}" -d postgres -wXAtqc 'select 1') \
            >/dev/null 2>&1 && break
        PG_ADMIN=()
    done
    [ "${#PG_ADMIN[@]}" -gt 0 ] \
        || die "cannot connect to PostgreSQL as superuser postgres (neither TCP trust nor peer)"
    [ "$OWNER_NAME" = "$DB_NAME" ] && [ "$OWNER_HOST:$OWNER_PORT" = "$DB_HOST:$DB_PORT" ] \
        || die "SIUI_DATABASE_OWNER_URL must name the database of SIUI_DATABASE_URL"
    [ "$OWNER_USER" != "$DB_USER" ] \
        || die "SIUI_DATABASE_OWNER_URL must name another role than SIUI_DATABASE_URL ($DB_USER)"
    # Both files run as the superuser, from / (the postgres user may not read the checkout).
    (cd / && "${PG_ADMIN[@]}" -d postgres -wXq -v ON_ERROR_STOP=1 -v s="$DB_USER" -v sp="$DB_PASS" \
        -v o="$OWNER_USER" -v op="$OWNER_PASS" -v d="$DB_NAME") <deploy/postgres/roles.sql
    (cd / && "${PG_ADMIN[@]}" -d "$DB_NAME" -wXq -v ON_ERROR_STOP=1 -v s="$DB_USER" -v o="$OWNER_USER" \
        2>&1) <deploy/postgres/ownership.sql | sed 's/^.*NOTICE: */    /'
else
    info "$DB_HOST:$DB_PORT is not this machine's 127.0.0.1:5432: not managed here"
fi
PGCONNECT_TIMEOUT=5 psql "$SIUI_DATABASE_URL" -wXAtqc 'select 1' >/dev/null \
    || die "cannot connect with SIUI_DATABASE_URL (check the password and pg_hba.conf)"
PGCONNECT_TIMEOUT=5 psql "$SIUI_DATABASE_OWNER_URL" -wXAtqc 'select 1' >/dev/null \
    || die "cannot connect with SIUI_DATABASE_OWNER_URL (check the password and pg_hba.conf)"
info "connected as $DB_USER (services) and $OWNER_USER (owner, migrations)"

# -- 5. Python environment --------------------------------------------------------------
step "Python environment (.venv)"
if ! venv_ok; then
    info "creating .venv with $PYTHON"
    "$PYTHON" -m venv --clear .venv
fi
if [ -f pyproject.toml ]; then
    STAMP=".venv/.installed-$(sha256sum pyproject.toml | cut -d' ' -f1)"
    # The editable install maps the top-level packages that existed when it ran, so
    # the stamp also records them: a new package (say clients/) means reinstalling.
    PACKAGES="$(printf '%s\n' */__init__.py)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PACKAGES" ]; then
        info "up to date ($(basename "$STAMP" | cut -c1-22)...)"
    else
        info "pip install -e '.[test]'"
        if ! .venv/bin/python -m pip install -q -e '.[test]'; then
            # Every pinned dependency has wheels for CPython 3.11+ on x86_64/aarch64;
            # a compiler is needed only where one does not.
            warn "pip install failed; retrying with a C toolchain"
            command -v dpkg >/dev/null 2>&1 && apt_install build-essential python3-dev
            .venv/bin/python -m pip install -q -e '.[test]'
        fi
        rm -f .venv/.installed-*
        printf '%s\n' "$PACKAGES" >"$STAMP"
    fi
else
    warn "no pyproject.toml yet: skipping pip install"
fi

# -- 6. dev PKI -------------------------------------------------------------------------
step "Dev PKI in $SIUI_DATA_DIR"
PKI_OUT="$(.venv/bin/python -m deploy.devpki --data-dir "$SIUI_DATA_DIR")" \
    || die "python -m deploy.devpki failed"
info "$(grep -c = <<<"$PKI_OUT") paths ready (python -m deploy.devpki lists them)"

# -- 7. RabbitMQ users, permissions, topology --------------------------------------------
# One broker user per service (siui-keygen, ...; SIUI_AMQP_USER_PREFIX) with a random
# password in $SIUI_DATA_DIR/secrets/amqp-<service> (0600, kept once made), the
# least-privilege permissions of deploy/broker.py, and the topology of
# SIUI_EVENTS_EXCHANGE, which services may not declare themselves. deploy.broker reads
# what the broker has and prints only the steps left: none on a second run. Passwords
# go to rabbitmqctl on stdin, never on a command line.
step "RabbitMQ users and topology"
# A cluster's nodes (several URLs, by commas or spaces): users, permissions and topology
# are the cluster's, so the set-up speaks to the first node only.
mapfile -t AMQP < <(split_url "${SIUI_AMQP_URL%%[, ]*}" 5672)
AMQP_HOST="${AMQP[0]}" AMQP_PORT="${AMQP[1]}" AMQP_USER="${AMQP[2]}"
if [ -n "$AMQP_USER" ]; then
    warn "SIUI_AMQP_URL names the user '$AMQP_USER': every service will log in as it" \
        "(and refuse to start unless it is siui-<service>); leave it out to use one user per service"
elif is_local "$AMQP_HOST" && [ "$AMQP_PORT" = 5672 ]; then
    command -v rabbitmqctl >/dev/null 2>&1 || die "rabbitmqctl not found (package rabbitmq-server)"
    rabbitmqctl_() { as_root rabbitmqctl -q "$@" >/dev/null; }
    no_input() { "$@" </dev/null; }
    TOPOLOGY_FILE="$(mktemp)"
    # A queue of an earlier release, with other arguments (a lower delivery limit): its
    # arguments cannot change, so it is deleted and imported anew, but only while it is
    # empty and no service is connected (nothing could be routed to it in between, and
    # quorum queues have no delete-if-empty). Otherwise it keeps working as it was, and
    # the next set-up with the services stopped finishes the change.
    replace_queue() {
        local vhost="$1" queue="$2" messages
        if as_root rabbitmqctl -q list_connections -p "$vhost" user 2>/dev/null \
                | grep -q "^${SIUI_AMQP_USER_PREFIX:-siui-}"; then
            warn "queue $queue keeps its old arguments: services are connected; stop them and run setup again"
            return 1
        fi
        messages="$(as_root rabbitmqctl -q list_queues -p "$vhost" name messages \
            | awk -F'\t' -v q="$queue" '$1 == q { print $2 }')"
        if [ "$messages" != 0 ]; then
            warn "queue $queue keeps its old arguments: it holds ${messages:-?} messages; let its consumer" \
                "empty it, stop the services and run setup again"
            return 1
        fi
        rabbitmqctl_ delete_queue -p "$vhost" "$queue"
    }
    # Checkouts of this repository (git worktrees) share this broker: a password it already
    # has is taken from their data directory (.siui) instead of being replaced, which would
    # lock their services and tests out. deploy.broker skips SIUI_DATA_DIR itself.
    ADOPT=()
    while IFS= read -r checkout; do
        ADOPT+=(--adopt-from "$checkout/.siui")
    done < <(git -C "$REPO" worktree list --porcelain 2>/dev/null | sed -n 's/^worktree //p')
    BROKER_STEPS="$(as_root rabbitmqctl -q export_definitions - \
        | .venv/bin/python -m deploy.broker plan --topology-file "$TOPOLOGY_FILE" "${ADOPT[@]}")" \
        || { rm -f "$TOPOLOGY_FILE"; die "could not read or plan the broker's users (see above)"; }
    # Never an empty field (tabs would merge): a step and at most five arguments. Read
    # from fd 3: rabbitmqctl reads its stdin (a password), which must not be the steps.
    while IFS=$'\t' read -r -u 3 action a b c d e; do
        case "$action" in
            "") continue ;;
            add_vhost) no_input rabbitmqctl_ add_vhost "$a" ;;
            add_user) rabbitmqctl_ add_user "$a" <"$SIUI_DATA_DIR/secrets/amqp-$b" ;;
            change_password) rabbitmqctl_ change_password "$a" <"$SIUI_DATA_DIR/secrets/amqp-$b" ;;
            clear_user_tags) no_input rabbitmqctl_ set_user_tags "$a" ;;
            set_permissions) no_input rabbitmqctl_ set_permissions -p "$a" "$b" "$c" "$d" "$e" ;;
            set_topic_permissions) no_input rabbitmqctl_ set_topic_permissions -p "$a" "$b" "$c" "$d" "$e" ;;
            replace_queue) no_input replace_queue "$a" "$b" || continue ;;
            import_topology) no_input rabbitmqctl_ import_definitions "$TOPOLOGY_FILE" ;;
            *) rm -f "$TOPOLOGY_FILE"; die "deploy.broker: unknown step $action" ;;
        esac || { rm -f "$TOPOLOGY_FILE"; die "rabbitmqctl $action ${a:-} failed"; }
        info "$action ${a:-} ${b:-}"
    done 3<<<"$BROKER_STEPS"
    rm -f "$TOPOLOGY_FILE"
    [ -n "$BROKER_STEPS" ] || info "all in place"
else
    info "$AMQP_HOST:$AMQP_PORT is not this machine's broker: load the users and topology there from" \
        "'python -m deploy.broker definitions --with-users --out FILE' (rabbitmqctl import_definitions FILE)"
fi

step "Ready in $((SECONDS - STARTED))s"
info "SIUI_DATABASE_URL=$SIUI_DATABASE_URL"
info "SIUI_DATABASE_OWNER_URL=$SIUI_DATABASE_OWNER_URL"
info "SIUI_AMQP_URL=$SIUI_AMQP_URL"
info "SIUI_DATA_DIR=$SIUI_DATA_DIR"
