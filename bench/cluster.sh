#!/usr/bin/env bash
# Check throughput of the cluster of deploy/cluster.sh, side by side in one run: direct to
# one instance, then through HAProxy with 1, 2 and 3 instances in rotation (the latency
# HAProxy adds, and the cost of coordination: the instances share this machine's cores,
# so this is not a scaling figure), then 3 instances with the standby asynchronous (what
# synchronous replication costs a check, whose record is committed before it answers).
# Writes bench/out/cluster.md, a fragment for BENCHMARKS.md, and the raw results beside it.
#
#   bench/cluster.sh                          # 10 thousand operators, 15 s per figure
#   OPERATORS=100000 DURATION=30 bench/cluster.sh
#
# Settings (environment): OPERATORS, LISTINGS (default OPERATORS/10), SEED, DURATION,
# WARMUP (seconds), CONNECTIONS (default 16), DOMAIN, OUT (default bench/out),
# CLUSTER_DIR (default $OUT/cluster, rebuilt every run), CLUSTER_BASE_PORT (default 56400),
# CLUSTER_WORKERS (HTTP workers per instance, default 2), BUILD=0 to measure the release
# binaries already built, PROFILE_DIR (default release; `debug` for a quick trial of the
# script itself, whose figures mean nothing).
# Loopback only; every measurement is bounded (WARMUP + DURATION seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OPERATORS=${OPERATORS:-10000}
LISTINGS=${LISTINGS:-$((OPERATORS / 10))}
SEED=${SEED:-42}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONNECTIONS=${CONNECTIONS:-16}
DOMAIN=${DOMAIN:-PROCUREMENT}
OUT=${OUT:-bench/out}
PROFILE_DIR=${PROFILE_DIR:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/$PROFILE_DIR/credit-registry
LOADGEN=$CARGO_TARGET_DIR/$PROFILE_DIR/loadgen
SEED_BENCH=$CARGO_TARGET_DIR/$PROFILE_DIR/seed-bench

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export CLUSTER_DIR=${CLUSTER_DIR:-$OUT/cluster}
export CLUSTER_BASE_PORT=${CLUSTER_BASE_PORT:-56400}
export CLUSTER_WORKERS=${CLUSTER_WORKERS:-2}
export CREDIT_REGISTRY_BIN=$BIN
# The load generator reads the schema by introspection, which production turns off; the
# keys are still made once by cluster.sh and shared.
export CLUSTER_PROFILE=development
export RUST_LOG=${RUST_LOG:-warn}
# One partner token drives the load: the per-subject limit would measure the limiter.
export REGISTRY_LIMITS__RATE_PER_SECOND=${REGISTRY_LIMITS__RATE_PER_SECOND:-10000000}
export REGISTRY_LIMITS__RATE_BURST=${REGISTRY_LIMITS__RATE_BURST:-10000000}

RESULTS=$OUT/cluster-results.jsonl
COMMANDS=$OUT/cluster-commands.txt
MANIFEST=$OUT/cluster.manifest.json
FRAGMENT=$OUT/cluster.md
: >"$RESULTS"
: >"$COMMANDS"

log() { printf '\n== %s\n' "$*" >&2; }
run() {
    printf '%s\n' "$*" | sed -e "s#$ROOT/##g" -e 's/--token [^ ]*/--token "$PARTNER_TOKEN"/' \
        -e 's/--admin-token [^ ]*/--admin-token "$ADMIN_TOKEN"/' >>"$COMMANDS"
    "$@"
}

cluster() { "$ROOT/deploy/cluster.sh" "$@"; }
trap 'cluster stop >/dev/null 2>&1 || true' EXIT

if [[ ${BUILD:-1} == 1 ]]; then
    log "building release binaries"
    run cargo build --release -p api -p bench-seed -p loadgen
fi
for tool in "$BIN" "$LOADGEN" "$SEED_BENCH"; do
    [[ -x $tool ]] || { echo "missing $tool (build it, or BUILD=1)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is missing (apt-get install jq)" >&2; exit 1; }

log "a fresh cluster in $CLUSTER_DIR (ports from $CLUSTER_BASE_PORT)"
cluster stop >/dev/null 2>&1 || true
rm -rf "$CLUSTER_DIR"
mkdir -p "$CLUSTER_DIR"
# Under root PostgreSQL runs as `postgres`, which must reach the directory.
chmod a+rx "$CLUSTER_DIR"
run cluster start-database
eval "$(cluster env)"

log "seeding: $OPERATORS operators, $LISTINGS listings (through HAProxy, onto the primary)"
DATABASE_URL=$DATABASE_URL run "$SEED_BENCH" --operators "$OPERATORS" --listings "$LISTINGS" \
    --seed "$SEED" --manifest "$MANIFEST" >&2

run cluster start >/dev/null
token() {
    REGISTRY_AUTH__SIGNING_KEY_FILE=$SIGNING_KEY_FILE REGISTRY_DATA_DIR=$CLUSTER_DIR \
        "$BIN" token "$@"
}
ADMIN_TOKEN=$(token --role admin --sub bench-admin --ttl 2h)
PARTNER_TOKEN=$(token --role partner --sub bench-loadgen --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS --ttl 2h)
run "$LOADGEN" register-partner --url "$SERVICE_URL/graphql" --admin-token "$ADMIN_TOKEN" \
    --subject bench-loadgen --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS >/dev/null

measure() {  # label url
    log "$1: single checks, $CONNECTIONS connections, $2"
    run "$LOADGEN" http --scenario single --connections "$CONNECTIONS" --label "$1" \
        --url "$2" --token "$PARTNER_TOKEN" --admin-token "$ADMIN_TOKEN" --domain "$DOMAIN" \
        --manifest "$MANIFEST" --scale cluster --out "$RESULTS" --duration "$DURATION" \
        --warmup "$WARMUP" --seed "$SEED" >/dev/null
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
cluster instances 3
measure "direct, instance a" "$INSTANCE_A/graphql"
for n in 1 2 3; do
    cluster instances "$n"
    measure "HAProxy, $n instance(s)" "$SERVICE_URL/graphql"
done
# The same three instances with the standby asynchronous: commits (check records
# included) stop waiting for the standby's flush.
log "standby asynchronous: synchronous_standby_names = ''"
psql "$PRIMARY_URL" -qAtc "ALTER SYSTEM SET synchronous_standby_names = ''" -c "SELECT pg_reload_conf()" >/dev/null
measure "HAProxy, 3 instances, asynchronous standby" "$SERVICE_URL/graphql"
psql "$PRIMARY_URL" -qAtc "ALTER SYSTEM RESET synchronous_standby_names" -c "SELECT pg_reload_conf()" >/dev/null
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

log "writing $FRAGMENT"
direct_p50=$(jq -rs 'map(select(.scenario == "direct, instance a"))[0].p50_ms // empty' "$RESULTS")
{
    echo "### Several instances behind HAProxy (\`bench/cluster.sh\`)"
    echo
    echo "Single checks (\`check(uscc:, domain: $DOMAIN)\`, random existing codes, $OPERATORS operators)"
    echo "at $CONNECTIONS connections for ${DURATION} s after ${WARMUP} s of warm-up, on the cluster of"
    echo "\`deploy/cluster.sh\` (PostgreSQL primary with a synchronous standby, HAProxy, instances"
    echo "of $CLUSTER_WORKERS HTTP workers each), all on this machine's $(nproc) cores: the instances,"
    echo "PostgreSQL, HAProxy and the load generator share them, so more instances show the"
    echo "cost of coordination, not scaling. Every check commits its record before it answers,"
    echo "so with the synchronous standby each answer also waits for the standby's flush."
    echo "Load average $LOADAVG_START at the start, $LOADAVG_END at the end."
    echo
    echo "| route | checks/s | p50 ms | p90 ms | p99 ms | errors | p50 vs direct |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    jq -rs --arg d "${direct_p50:-0}" '.[] | "| \(.scenario) | \(.rps | floor) | \(.p50_ms) | \(.p90_ms) | \(.p99_ms) | \(.errors) | \(if ($d | tonumber) > 0 and .p50_ms != null then "+\(((.p50_ms - ($d | tonumber)) * 100 | round) / 100) ms" else "-" end) |"' "$RESULTS"
    echo
    echo "Commands: \`$(basename "$COMMANDS")\` beside this file in \`bench/out/\`."
} >"$FRAGMENT"
cat "$FRAGMENT"
