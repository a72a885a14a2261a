# Shared by the benchmark scripts that write a section of their own into a report
# (bench/bulk.sh, bench/status_proofs.sh, bench/import_checks.sh). Source it; it defines
# functions only. Some read the caller's settings: ROOT (the checkout), COMMANDS (the
# file of exact commands), PG_SERVER (no database part), CARGO_TARGET_DIR, SEED.

# A step of the run, on standard error.
log() { printf '\n== %s\n' "$*" >&2; }

# Records a command as it is run, paths relative to the checkout, for the report's
# "Exact commands".
shown() { local s="$*"; printf '%s\n' "${s//$ROOT\//}" >>"$COMMANDS"; }

# Exits naming the first of the tools that is not on PATH.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
    done
}

# SQL on the server's `postgres` database.
psql_admin() { psql "$PG_SERVER/postgres" -v ON_ERROR_STOP=1 -qAtc "$1"; }

# fresh_database DB: drops DB (whoever is connected) and creates it empty.
fresh_database() {
    shown psql "$PG_SERVER/postgres" -qc "'DROP DATABASE IF EXISTS $1 WITH (FORCE)'"
    psql_admin "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
    shown psql "$PG_SERVER/postgres" -qc "'CREATE DATABASE $1'"
    psql_admin "CREATE DATABASE $1"
}

# The release binaries the scripts run: the registry and bench-seed's generators.
build_release_binaries() {
    log "building release binaries"
    shown cargo build --release -p api -p bench-seed
    cargo build --release -p api -p bench-seed
}

# listings_file ROWS FILE: a listings import file of ROWS rows (bench-seed's
# `listings-csv`, seeded by SEED), written unless FILE already holds one.
listings_file() {
    local rows=$1 file=$2 generate=$CARGO_TARGET_DIR/release/listings-csv
    [[ -s $file ]] && return 0
    log "generating $rows listings"
    shown "$generate" --rows "$rows" --seed "$SEED" --out "$file"
    "$generate" --rows "$rows" --seed "$SEED" --out "$file"
}

# wait_serving BASE: waits (up to 20 s) until the server at BASE answers /healthz.
wait_serving() {
    local _
    for _ in $(seq 1 100); do
        curl -sf "$1/healthz" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
}

# The size of the registry log's checkpoint served at BASE (0 when none is served).
registry_log_size() { curl -sf "$1/logs/registry/checkpoint" | sed -n 2p || echo 0; }

# wait_registry_logged BASE N: waits (up to an hour) until the registry log at BASE holds
# N entries; fails when it does not.
wait_registry_logged() {
    local deadline=$(( $(date +%s) + 3600 ))
    while (( $(date +%s) < deadline )); do
        (( $(registry_log_size "$1") >= $2 )) && return 0
        sleep 0.2
    done
    return 1
}

# register_bench_partner BASE ADMIN_TOKEN: registers the partner `bench-partner`
# (PROCUREMENT) whose tokens the scripts mint.
register_bench_partner() {
    curl -sf -H "authorization: Bearer $2" -H 'content-type: application/json' "$1/graphql" \
        -d '{"query":"mutation { registerPartner(input: {subject: \"bench-partner\", name: \"bench\", domains: [PROCUREMENT]}) { subject } }"}' >/dev/null
}

# Exits unless the PostgreSQL server URL (no database part) is on the loopback
# interface: load and bulk runs never leave the machine.
require_loopback() {
    case $1 in
        *://*@127.0.0.1:*|*://*@localhost:*|*://127.0.0.1:*|*://localhost:*) ;;
        *) echo "PG_SERVER must be on the loopback interface: $1" >&2; exit 1 ;;
    esac
}

# replace_report_section HEADING SECTION_FILE REPORT: puts SECTION_FILE in REPORT in
# place of the section whose heading line starts with "## HEADING" (up to the next
# "## "), or appends it when REPORT has none.
replace_report_section() {
    local heading=$1 section=$2 report=$3
    if [[ -f $report ]] && grep -q "^## $heading" "$report"; then
        awk -v section="$section" -v heading="^## $heading" '
            $0 ~ heading { while ((getline line < section) > 0) print line; skip = 1; next }
            skip && /^## / { skip = 0; print ""; }
            !skip { print }
        ' "$report" >"$report.tmp" && mv "$report.tmp" "$report"
    else
        { echo; cat "$section"; } >>"$report"
    fi
}
