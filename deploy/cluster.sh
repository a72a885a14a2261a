#!/usr/bin/env bash
# The registry as a cluster on one machine, loopback only, from Debian packages
# (postgresql, haproxy) and the built `credit-registry` binary:
#
#   PostgreSQL primary  ──streaming, synchronous──▶  PostgreSQL standby (hot, read-only)
#          ▲  (HAProxy `pg`: the fixed database address; primary, standby as backup)
#          │
#   instances a, b, c  (credit-registry serve; same keys, same DATABASE_URL; the standby
#          ▲            directly as database.replica_url for heavy reads)
#          │  (HAProxy `registry`: the service address; health checks on /readyz)
#       clients
#
# Usage:
#   deploy/cluster.sh start            initdb + base backup (first time), start everything
#   deploy/cluster.sh start-database   only PostgreSQL, the standby and HAProxy (e.g. to load
#                                      data before the instances start; `start` then adds them)
#   deploy/cluster.sh stop             stop everything this directory started
#   deploy/cluster.sh status           what runs, replication state, HAProxy's view
#   deploy/cluster.sh failover         stop the primary (immediately), promote the standby
#   deploy/cluster.sh instances N      route to the first N instances only (1–3; benchmarks)
#   deploy/cluster.sh env              print the addresses (shell assignments)
#
# Settings (environment):
#   CLUSTER_DIR        where everything lives: data, logs, keys, pids (default ./cluster)
#   CLUSTER_BASE_PORT  first of the ports used (default 55400): +0 the database address
#                      (HAProxy), +1 primary, +2 standby, +3 the service address (HAProxy),
#                      +4 HAProxy's stats, +10.. the instances
#   CLUSTER_SYNC       on (default): a commit is acknowledged only once the standby has
#                      it (synchronous_standby_names + synchronous_commit = on); off:
#                      asynchronous streaming (faster, may lose the last commits on failover)
#   CLUSTER_INSTANCES  how many instances to run (default 3, at most 3)
#   CLUSTER_WORKERS    HTTP workers per instance (default 2)
#   CLUSTER_PROFILE    the instances' profile (default production: configured keys only)
#   CLUSTER_MIGRATE_FIRST  1: run `credit-registry migrate` once before the instances
#                      start (default 0: they start at once and agree among themselves)
#   CLUSTER_FAILOVER_STOP  how `failover` stops the primary: immediate (default, like a
#                      crash) or fast
#   CREDIT_REGISTRY_BIN  the binary (default: target/release, then target/debug, then PATH)
#   PG_BIN             PostgreSQL's server binaries (default: the newest /usr/lib/postgresql/*/bin)
#   REGISTRY_*         passed on to every instance (e.g. REGISTRY_LIMITS__RATE_PER_SECOND)
#
# When run as root, PostgreSQL runs as the `postgres` user (initdb refuses root): the
# directory must then be reachable by that user.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
CLUSTER_DIR=${CLUSTER_DIR:-$PWD/cluster}
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
BASE=${CLUSTER_BASE_PORT:-55400}
SYNC=${CLUSTER_SYNC:-on}
COUNT=${CLUSTER_INSTANCES:-3}
WORKERS=${CLUSTER_WORKERS:-2}
PROFILE=${CLUSTER_PROFILE:-production}
NAMES=(a b c)

RUN=$CLUSTER_DIR/run
LOGS=$CLUSTER_DIR/log
KEYS=$CLUSTER_DIR/keys
PRIMARY=$CLUSTER_DIR/pg/primary
STANDBY=$CLUSTER_DIR/pg/standby
DB_NAME=registry

export CLUSTER_RUN=$RUN
export CLUSTER_PG_PORT=$BASE
export CLUSTER_PG_PRIMARY_PORT=$((BASE + 1))
export CLUSTER_PG_STANDBY_PORT=$((BASE + 2))
export CLUSTER_HTTP_PORT=$((BASE + 3))
export CLUSTER_STATS_PORT=$((BASE + 4))
export CLUSTER_INSTANCE_A_PORT=$((BASE + 10))
export CLUSTER_INSTANCE_B_PORT=$((BASE + 11))
export CLUSTER_INSTANCE_C_PORT=$((BASE + 12))

# Messages go to the script's own standard error (fd 3), also from inside commands whose
# output wait_until discards.
exec 3>&2
say() { printf 'cluster: %s\n' "$*" >&3; }
die() { say "$*"; exit 1; }

instance_port() { echo $((BASE + 10 + $1)); }

pg_bin() {
    if [[ -n ${PG_BIN:-} ]]; then echo "$PG_BIN"; return; fi
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -x $bin/initdb ]] || die "no PostgreSQL server binaries (install the Debian package postgresql)"
    echo "$bin"
}

registry_bin() {
    if [[ -n ${CREDIT_REGISTRY_BIN:-} ]]; then echo "$CREDIT_REGISTRY_BIN"; return; fi
    local target=${CARGO_TARGET_DIR:-$ROOT/target} candidate
    for candidate in "$target/release/credit-registry" "$target/debug/credit-registry"; do
        if [[ -x $candidate ]]; then echo "$candidate"; return; fi
    done
    command -v credit-registry || die "no credit-registry binary (cargo build -p api, or set CREDIT_REGISTRY_BIN)"
}

# Runs a shell command as the owner of the PostgreSQL clusters.
as_pg() {
    if [[ $(id -u) == 0 ]]; then
        su postgres -s /bin/sh -c "$1" 3>&-
    else
        sh -c "$1" 3>&-
    fi
}

pg_url() { echo "postgres://postgres@127.0.0.1:$1/${2:-$DB_NAME}"; }

psql_at() { psql "$(pg_url "$1" "${3:-postgres}")" -v ON_ERROR_STOP=1 -qAtc "$2"; }

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

haproxy_cmd() { echo "$1" | socat stdio "unix-connect:$RUN/haproxy.sock"; }

wait_until() {  # seconds, description, command...
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what"
        sleep 0.2
    done
}

need() {
    command -v haproxy >/dev/null || die "haproxy is not installed (install the Debian package haproxy)"
    command -v socat >/dev/null || die "socat is not installed (install the Debian package socat)"
    command -v psql >/dev/null || die "psql is not installed (install the Debian package postgresql-client)"
    command -v curl >/dev/null || die "curl is not installed (install the Debian package curl)"
    ((COUNT >= 1 && COUNT <= 3)) || die "CLUSTER_INSTANCES must be 1, 2 or 3"
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

init_primary() {
    local bin=$1
    [[ -f $PRIMARY/PG_VERSION ]] && return
    say "initdb $PRIMARY"
    mkdir -p "$CLUSTER_DIR/pg"
    if [[ $(id -u) == 0 ]]; then
        chown postgres: "$CLUSTER_DIR/pg" "$RUN" "$LOGS"
        as_pg "test -w '$CLUSTER_DIR/pg'" ||
            die "the postgres user cannot write $CLUSTER_DIR/pg (make its parent directories reachable: chmod a+x)"
    fi
    as_pg "'$bin/initdb' -D '$PRIMARY' -U postgres -A trust -E UTF8 --locale=C.UTF-8 >'$LOGS/initdb.log' 2>&1" ||
        die "initdb failed: $(tail -n 5 "$LOGS/initdb.log")"
    local sync_names="''"
    [[ $SYNC == on ]] && sync_names="'FIRST 1 (standby)'"
    # Appended last, so these win over initdb's defaults. The standby copies this file
    # and overrides its own lines (below).
    cat >>"$PRIMARY/postgresql.conf" <<EOF

# --- deploy/cluster.sh ---
listen_addresses = '127.0.0.1'
port = $CLUSTER_PG_PRIMARY_PORT
unix_socket_directories = '$RUN'
max_connections = 300
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
hot_standby = on
# Queries on the standby are not cancelled by the primary's vacuum (reports, exports).
hot_standby_feedback = on
# Acknowledged means on the standby too: a commit returns once the standby named
# "standby" has flushed its WAL (synchronous_commit = on; remote_apply would also wait
# for it to be visible there). If that standby is down, commits wait for it.
synchronous_standby_names = $sync_names
synchronous_commit = on
EOF
}

start_primary() {
    local bin=$1
    if as_pg "'$bin/pg_ctl' -D '$PRIMARY' status" >/dev/null 2>&1; then return; fi
    [[ -f $PRIMARY/standby.signal ]] && die "$PRIMARY is a standby now"
    if [[ -f $CLUSTER_DIR/failed-over ]]; then
        say "not starting the old primary: the standby was promoted (see README: rebuild it as a standby)"
        return
    fi
    say "starting the primary on 127.0.0.1:$CLUSTER_PG_PRIMARY_PORT"
    as_pg "'$bin/pg_ctl' -D '$PRIMARY' -l '$LOGS/primary.log' -w -t 60 start >/dev/null"
}

init_standby() {
    local bin=$1
    [[ -f $STANDBY/PG_VERSION ]] && return
    say "base backup of the primary into $STANDBY (pg_basebackup -R, slot standby)"
    as_pg "'$bin/pg_basebackup' -h 127.0.0.1 -p $CLUSTER_PG_PRIMARY_PORT -U postgres -D '$STANDBY' -R -X stream -C -S standby >'$LOGS/basebackup.log' 2>&1" ||
        die "pg_basebackup failed: $(tail -n 5 "$LOGS/basebackup.log")"
    cat >>"$STANDBY/postgresql.conf" <<EOF

# --- deploy/cluster.sh: the standby ---
port = $CLUSTER_PG_STANDBY_PORT
# Once promoted it has no standby of its own: it must accept commits alone (until a new
# standby is built, an acknowledged commit is on one machine only).
synchronous_standby_names = ''
EOF
    # -R wrote primary_conninfo; the primary knows this standby by its application_name.
    cat >>"$STANDBY/postgresql.auto.conf" <<EOF
primary_conninfo = 'host=127.0.0.1 port=$CLUSTER_PG_PRIMARY_PORT user=postgres application_name=standby'
primary_slot_name = 'standby'
EOF
}

start_standby() {
    local bin=$1
    if as_pg "'$bin/pg_ctl' -D '$STANDBY' status" >/dev/null 2>&1; then return; fi
    say "starting the standby on 127.0.0.1:$CLUSTER_PG_STANDBY_PORT"
    as_pg "'$bin/pg_ctl' -D '$STANDBY' -l '$LOGS/standby.log' -w -t 60 start >/dev/null"
}

wait_for_sync() {
    [[ $SYNC == on ]] || return 0
    [[ -f $CLUSTER_DIR/failed-over ]] && return 0
    wait_until 60 "the standby to stream synchronously" \
        sh -c "[ \"\$(psql '$(pg_url "$CLUSTER_PG_PRIMARY_PORT" postgres)' -qAtc \"SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'\")\" = sync ]"
}

create_database() {
    local port=$CLUSTER_PG_PRIMARY_PORT
    [[ -f $CLUSTER_DIR/failed-over ]] && port=$CLUSTER_PG_STANDBY_PORT
    if [[ $(psql_at "$port" "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") != 1 ]]; then
        say "creating database $DB_NAME"
        psql_at "$port" "CREATE DATABASE $DB_NAME"
    fi
}

# ---------------------------------------------------------------------------------------
# HAProxy

start_haproxy() {
    if pid_alive "$RUN/haproxy.pid"; then return; fi
    say "starting HAProxy: database 127.0.0.1:$CLUSTER_PG_PORT, service 127.0.0.1:$CLUSTER_HTTP_PORT, stats 127.0.0.1:$CLUSTER_STATS_PORT/stats"
    haproxy -c -q -f "$HERE/haproxy.cfg" || die "deploy/haproxy.cfg is not valid"
    haproxy -D -f "$HERE/haproxy.cfg" -p "$RUN/haproxy.pid" >>"$LOGS/haproxy.log" 2>&1 3>&-
    wait_until 10 "HAProxy" test -S "$RUN/haproxy.sock"
    # After a failover the old primary stays out (it is not in recovery: it would pass
    # the check as a second primary if it were started again).
    if [[ -f $CLUSTER_DIR/failed-over ]]; then
        haproxy_cmd "set server pg/primary state maint" >/dev/null
    fi
    wait_until 20 "HAProxy to see a primary" \
        psql "postgres://postgres@127.0.0.1:$CLUSTER_PG_PORT/postgres?connect_timeout=2" -qAtc "SELECT 1"
}

# ---------------------------------------------------------------------------------------
# The instances

make_keys() {
    local bin=$1
    mkdir -p "$KEYS"
    # One set of keys for every instance, made before any starts (in the production
    # profile an instance never makes its own).
    [[ -f $KEYS/token-signing-key.pem ]] || "$bin" keygen --out "$KEYS/token-signing-key.pem" >/dev/null
    [[ -f $KEYS/log-keys/registry.pem ]] || "$bin" keygen --out "$KEYS/log-keys/registry.pem" >/dev/null
    [[ -f $KEYS/log-keys/answers.pem ]] || "$bin" keygen --out "$KEYS/log-keys/answers.pem" >/dev/null
    if ! compgen -G "$KEYS/receipt-keys/*.pem" >/dev/null; then
        instance_env a 0 "$bin" rotate-receipt-key >/dev/null
    fi
}

# Runs a command with one instance's environment (exec_instance: in place of the shell).
instance_env() { (exec_instance "$@"); }
exec_instance() {
    local name=$1 port=$2
    shift 2
    exec env REGISTRY_PROFILE="$PROFILE" \
        DATABASE_URL="$(pg_url "$CLUSTER_PG_PORT")" \
        REGISTRY_DATABASE__REPLICA_URL="${REGISTRY_DATABASE__REPLICA_URL-$(pg_url "$CLUSTER_PG_STANDBY_PORT")}" \
        REGISTRY_BIND="127.0.0.1:$port" \
        REGISTRY_WORKERS="$WORKERS" \
        REGISTRY_DATA_DIR="$CLUSTER_DIR/instances/$name" \
        REGISTRY_AUTH__SIGNING_KEY_FILE="$KEYS/token-signing-key.pem" \
        REGISTRY_RECEIPTS__KEY_DIR="$KEYS/receipt-keys" \
        REGISTRY_LOGS__KEY_DIR="$KEYS/log-keys" \
        REGISTRY_LIMITS__TRUSTED_PROXIES="${REGISTRY_LIMITS__TRUSTED_PROXIES:-[\"127.0.0.1/32\"]}" \
        REGISTRY_LOG_FORMAT="${REGISTRY_LOG_FORMAT:-json}" \
        RUST_LOG="${RUST_LOG:-info,sqlx=warn}" \
        "$@"
}

# Ready, or stop waiting at once when the instance has exited.
instance_ready() {
    pid_alive "$RUN/instance-$1.pid" ||
        die "instance $1 exited: $(tail -n 3 "$LOGS/instance-$1.log" | tr '\n' ' ')"
    curl -fsS -o /dev/null "http://127.0.0.1:$2/readyz"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_instances() {
    local bin=$1 i name port
    if [[ ${CLUSTER_MIGRATE_FIRST:-0} == 1 ]]; then
        say "migrating before the instances start (CLUSTER_MIGRATE_FIRST=1)"
        instance_env a 0 "$bin" migrate >>"$LOGS/migrate.log" 2>&1 ||
            die "migration failed (see $LOGS/migrate.log)"
    fi
    # All at once, on purpose: on an empty database exactly one migrates and the others
    # wait for it.
    for ((i = 0; i < COUNT; i++)); do
        name=${NAMES[$i]}
        port=$(instance_port "$i")
        pid_alive "$RUN/instance-$name.pid" && continue
        mkdir -p "$CLUSTER_DIR/instances/$name"
        say "starting instance $name on 127.0.0.1:$port"
        port_free "$port" || die "127.0.0.1:$port is in use: cannot start instance $name"
        # `exec`: the pid recorded is the server's own, not a subshell's.
        # fd 3 closed: a server must not hold the caller's standard error open.
        (exec_instance "$name" "$port" "$bin" serve >>"$LOGS/instance-$name.log" 2>&1 </dev/null 3>&-) &
        echo $! >"$RUN/instance-$name.pid"
    done
    for ((i = 0; i < COUNT; i++)); do
        name=${NAMES[$i]}
        port=$(instance_port "$i")
        wait_until 120 "instance $name to be ready (see $LOGS/instance-$name.log)" \
            instance_ready "$name" "$port"
    done
    # Instances not running are kept out of rotation (CLUSTER_INSTANCES < 3).
    for ((i = COUNT; i < 3; i++)); do
        haproxy_cmd "set server instances/${NAMES[$i]} state maint" >/dev/null
    done
    wait_until 30 "HAProxy to route to $COUNT instance(s)" haproxy_sees_up "$COUNT"
}

# Succeeds once HAProxy has at least $1 instances UP.
haproxy_sees_up() {
    local up
    up=$(haproxy_cmd "show stat" | awk -F, '$1 == "instances" && $2 != "BACKEND" && $18 == "UP"' | wc -l)
    ((up >= $1))
}

stop_pidfile() {  # pidfile, what
    local file=$1 what=$2 pid
    [[ -f $file ]] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $what ($pid)"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 35))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

# ---------------------------------------------------------------------------------------
# Commands

cmd_start_database() {
    need
    local bin
    bin=$(pg_bin)
    mkdir -p "$RUN" "$LOGS" "$CLUSTER_DIR/instances"
    init_primary "$bin"
    start_primary "$bin"
    init_standby "$bin"
    start_standby "$bin"
    wait_for_sync
    create_database
    start_haproxy
}

cmd_start() {
    local reg
    reg=$(registry_bin)
    cmd_start_database
    make_keys "$reg"
    start_instances "$reg"
    cmd_env
    say "ready: the service at http://127.0.0.1:$CLUSTER_HTTP_PORT"
}

cmd_stop() {
    local bin name
    bin=$(pg_bin)
    for name in "${NAMES[@]}"; do
        stop_pidfile "$RUN/instance-$name.pid" "instance $name"
    done
    stop_pidfile "$RUN/haproxy.pid" "HAProxy"
    local dir
    for dir in "$STANDBY" "$PRIMARY"; do
        if [[ -f $dir/postmaster.pid ]] && as_pg "'$bin/pg_ctl' -D '$dir' status" >/dev/null 2>&1; then
            say "stopping PostgreSQL in $dir"
            as_pg "'$bin/pg_ctl' -D '$dir' -m fast -w -t 60 stop >/dev/null" || true
        fi
    done
}

cmd_status() {
    local bin name i port state
    bin=$(pg_bin)
    for dir in "$PRIMARY" "$STANDBY"; do
        if [[ -f $dir/PG_VERSION ]] && as_pg "'$bin/pg_ctl' -D '$dir' status" >/dev/null 2>&1; then
            echo "postgresql $(basename "$dir"): running"
        else
            echo "postgresql $(basename "$dir"): stopped"
        fi
    done
    if state=$(psql_at "$CLUSTER_PG_PRIMARY_PORT" "SELECT application_name || ' ' || state || ' ' || sync_state FROM pg_stat_replication" 2>/dev/null); then
        echo "replication: ${state:-no standby connected}"
    fi
    if pid_alive "$RUN/haproxy.pid"; then
        echo "haproxy: running"
        haproxy_cmd "show stat" | awk -F, '$1 == "pg" || $1 == "instances" { if ($2 != "FRONTEND" && $2 != "BACKEND") print "  " $1 "/" $2 ": " $18 }'
    else
        echo "haproxy: stopped"
    fi
    for ((i = 0; i < 3; i++)); do
        name=${NAMES[$i]}
        port=$(instance_port "$i")
        if pid_alive "$RUN/instance-$name.pid"; then
            echo "instance $name (127.0.0.1:$port): running, /readyz $(curl -s -m 2 "http://127.0.0.1:$port/readyz" || echo unanswered)"
        else
            echo "instance $name: stopped"
        fi
    done
}

cmd_failover() {
    local bin started=$SECONDS
    bin=$(pg_bin)
    [[ -f $CLUSTER_DIR/failed-over ]] && die "already failed over"
    local mode=${CLUSTER_FAILOVER_STOP:-immediate}
    say "stopping the primary (-m $mode)"
    as_pg "'$bin/pg_ctl' -D '$PRIMARY' -m $mode -w stop >/dev/null"
    touch "$CLUSTER_DIR/failed-over"
    # Out of rotation for good: it is no longer the primary.
    haproxy_cmd "set server pg/primary state maint" >/dev/null
    say "promoting the standby"
    as_pg "'$bin/pg_ctl' -D '$STANDBY' -w -t 60 promote >/dev/null"
    wait_until 20 "HAProxy to route to the promoted standby" sh -c \
        "[ \"\$(psql 'postgres://postgres@127.0.0.1:$CLUSTER_PG_PORT/postgres?connect_timeout=2' -qAtc 'SELECT pg_is_in_recovery()')\" = f ]"
    say "failed over in $((SECONDS - started)) s: the database address now reaches the promoted standby"
}

cmd_instances() {
    local n=${1:-} i
    [[ $n =~ ^[1-3]$ ]] || die "usage: cluster.sh instances 1|2|3"
    for ((i = 0; i < 3; i++)); do
        if ((i < n)); then
            haproxy_cmd "set server instances/${NAMES[$i]} state ready" >/dev/null
        else
            haproxy_cmd "set server instances/${NAMES[$i]} state maint" >/dev/null
        fi
    done
    say "routing to ${NAMES[*]:0:$n}"
}

cmd_env() {
    cat <<EOF
CLUSTER_DIR=$CLUSTER_DIR
SERVICE_URL=http://127.0.0.1:$CLUSTER_HTTP_PORT
DATABASE_URL=$(pg_url "$CLUSTER_PG_PORT")
PRIMARY_URL=$(pg_url "$CLUSTER_PG_PRIMARY_PORT")
STANDBY_URL=$(pg_url "$CLUSTER_PG_STANDBY_PORT")
HAPROXY_STATS=http://127.0.0.1:$CLUSTER_STATS_PORT/stats
INSTANCE_A=http://127.0.0.1:$CLUSTER_INSTANCE_A_PORT
INSTANCE_B=http://127.0.0.1:$CLUSTER_INSTANCE_B_PORT
INSTANCE_C=http://127.0.0.1:$CLUSTER_INSTANCE_C_PORT
SIGNING_KEY_FILE=$KEYS/token-signing-key.pem
EOF
}

case ${1:-} in
    start) cmd_start ;;
    start-database) cmd_start_database ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    failover) cmd_failover ;;
    instances) cmd_instances "${2:-}" ;;
    env) cmd_env ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
