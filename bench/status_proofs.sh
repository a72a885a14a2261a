#!/usr/bin/env bash
# Status proofs (issue 17), in one command, on PostgreSQL: imports STATUS_ROWS listings
# into a fresh database, starts the release server on it and times how fast its
# registry-log appender logs them with their status map; then, side by side on one
# server, the latency of a `check` without and with `statusProof`, the proofs' sizes,
# and the cost of verifying a receipt offline without and with its status proof.
# Loopback only; bounded by STATUS_ROWS and STATUS_REQUESTS.
#
#   bench/status_proofs.sh                      # 100,000 listings, 400 checks each way
#   STATUS_ROWS=20000 bench/status_proofs.sh    # quicker
#   BIN=/tmp/cr-before LABEL=before STATUS_BUILD=0 bench/status_proofs.sh   # another build
#
# Every run appends a row to $OUT/status-proofs/history.tsv, labelled LABEL (default: the
# commit), and writes a "Status proofs" section into $REPORT (BENCHMARKS.md) from that
# history, replacing the one there, so that two builds run one after the other compare side
# by side. bench/run.sh calls it after bench/bulk.sh (STATUS_PROOFS=0 skips it there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source bench/lib.sh

STATUS_ROWS=${STATUS_ROWS:-100000}
STATUS_REQUESTS=${STATUS_REQUESTS:-400}
STATUS_BUILD=${STATUS_BUILD:-1}           # 0: use the release binaries already built
SEED=${SEED:-42}
PORT=${STATUS_PORT:-18097}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}   # no database part
OUT=${OUT:-bench/out}
REPORT=${REPORT:-BENCHMARKS.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$CARGO_TARGET_DIR/release/credit-registry}   # another build to compare: BIN=… LABEL=…
LABEL=${LABEL:-$(git rev-parse --short HEAD)}
WORK=$OUT/status-proofs
DB=bench_status_proofs
mkdir -p "$WORK"
COMMANDS=$WORK/commands.txt
: >"$COMMANDS"

require_tools psql curl python3 hyperfine jq bc
require_loopback "$PG_SERVER"
[[ $STATUS_BUILD == 1 ]] && build_release_binaries

FILE=$WORK/listings-$STATUS_ROWS.csv
listings_file "$STATUS_ROWS" "$FILE"
fresh_database "$DB"
export DATABASE_URL=$PG_SERVER/$DB RUST_LOG=warn
DATA=$WORK/data
rm -rf "$DATA"
export REGISTRY_DATA_DIR=$DATA REGISTRY_BIND=127.0.0.1:$PORT
export REGISTRY_LIMITS__RATE_PER_SECOND=100000 REGISTRY_LIMITS__RATE_BURST=100000
"$BIN" migrate >/dev/null
log "import of $STATUS_ROWS listings"
shown DATABASE_URL="$DATABASE_URL" "$BIN" import listings "$FILE"
"$BIN" import listings "$FILE" >&2

SERVER_PID=
stop() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; true; }
trap stop EXIT
log "the appender logs the imported listings with their status map"
shown DATABASE_URL="$DATABASE_URL" REGISTRY_BIND=127.0.0.1:$PORT "$BIN" serve
START=$(date +%s.%N)
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
BASE=http://127.0.0.1:$PORT
wait_serving "$BASE"
EVENTS=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM listing_revisions")
wait_registry_logged "$BASE" "$EVENTS" ||
    { echo "the registry log reached $(registry_log_size "$BASE") of $EVENTS entries" >&2; exit 1; }
END=$(date +%s.%N)
APPEND_S=$(echo "$END - $START" | bc -l)
LEAF_ROWS=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM status_map_leaves")
NODE_ROWS=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM status_map_nodes")
MAP_BYTES=$(psql "$DATABASE_URL" -qAtc "SELECT pg_total_relation_size('status_map_leaves') + pg_total_relation_size('status_map_nodes')")
LOG_BYTES=$(psql "$DATABASE_URL" -qAtc "SELECT pg_total_relation_size('tlog_entries') + pg_total_relation_size('tlog_hashes')")

log "checks without and with statusProof, side by side"
ADMIN=$("$BIN" token --role admin --sub bench-admin)
PARTNER=$("$BIN" token --role partner --sub bench-partner --domains PROCUREMENT --ttl 1h)
register_bench_partner "$BASE" "$ADMIN"
LISTED=$(sed -n 2p "$FILE" | cut -d, -f1)
UNLISTED=91110000101623741K
python3 - "$BASE" "$PARTNER" "$LISTED" "$UNLISTED" "$STATUS_REQUESTS" "$WORK" <<'EOF' >"$WORK/latency.tsv"
import http.client, json, statistics, sys, time
base, token, listed, unlisted, n, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
host = base.split("//")[1]
conn = http.client.HTTPConnection(host)
def ask(code, fields):
    body = json.dumps({"query": "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { %s } }" % fields, "variables": {"u": code}})
    t = time.perf_counter()
    conn.request("POST", "/graphql", body, {"authorization": "Bearer " + token, "content-type": "application/json"})
    resp = json.loads(conn.getresponse().read())
    return time.perf_counter() - t, resp["data"]["check"]
for code, name in ((listed, "listed"), (unlisted, "unlisted")):
    _, got = ask(code, "decision receipt statusProof")
    open(f"{work}/{name}.receipt", "w").write(got["receipt"])
    open(f"{work}/{name}.proof", "w").write(got["statusProof"])
    print(f"size\t{name}\t{got['decision']}\t{len(got['receipt'])}\t{len(got['statusProof'])}")
for code, name in ((listed, "listed"), (unlisted, "unlisted")):
    plain, proved = [], []
    for _ in range(20):  # warm-up
        ask(code, "decision receipt"); ask(code, "decision receipt statusProof")
    for _ in range(n):  # interleaved, so both see the same machine
        plain.append(ask(code, "decision receipt")[0])
        proved.append(ask(code, "decision receipt statusProof")[0])
    p50 = lambda xs: statistics.median(xs) * 1000
    print(f"latency\t{name}\t{p50(plain):.3f}\t{p50(proved):.3f}")
EOF
cat "$WORK/latency.tsv" >&2
curl -sf "$BASE/logs/registry/vkey" >"$WORK/registry.vkey"
curl -sf "$BASE/logs/answers/vkey" >"$WORK/answers.vkey"
stop
SERVER_PID=

log "offline verification without and with the status proof"
V="$BIN verify-receipt --vkey $WORK/answers.vkey"
shown hyperfine -N --runs 200 "'$V @$WORK/listed.receipt'" "'$V --registry-vkey $WORK/registry.vkey --status-proof $WORK/listed.proof @$WORK/listed.receipt'"
hyperfine -N --warmup 10 --runs 200 --export-json "$WORK/verify.json" \
    "$V @$WORK/listed.receipt" \
    "$V --registry-vkey $WORK/registry.vkey --status-proof $WORK/listed.proof @$WORK/listed.receipt" \
    "$V --registry-vkey $WORK/registry.vkey --status-proof $WORK/unlisted.proof @$WORK/unlisted.receipt" >&2
unset DATABASE_URL
psql_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)"

# One row of the history per run: the label, then the figures in the order of HEADER.
HEADER="build	rows	entries	append s	entries/s	leaf rows	node rows	node rows / entry	map MiB	log MiB	receipt listed	proof listed	receipt unlisted	proof unlisted	p50 listed	p50 listed + proof	p50 unlisted	p50 unlisted + proof	verify	verify + proof listed	verify + proof unlisted"
ms() { jq -r ".results[$1].$2 * 1000 | . * 100 | round / 100" "$WORK/verify.json"; }
field() { awk -F'\t' -v k="$1" -v n="$2" -v c="$3" '$1 == k && $2 == n { print $c }' "$WORK/latency.tsv"; }
HISTORY=$WORK/history.tsv
[[ -s $HISTORY && $(head -1 "$HISTORY") == "$HEADER" ]] || echo "$HEADER" >"$HISTORY"
printf '%s\t%s\t%s\t%.1f\t%.0f\t%s\t%s\t%.2f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$LABEL" "$STATUS_ROWS" "$EVENTS" "$APPEND_S" "$(echo "$EVENTS / $APPEND_S" | bc -l)" \
    "$LEAF_ROWS" "$NODE_ROWS" "$(echo "$NODE_ROWS / $EVENTS" | bc -l)" \
    "$(echo "$MAP_BYTES / 1048576" | bc -l)" "$(echo "$LOG_BYTES / 1048576" | bc -l)" \
    "$(field size listed 4)" "$(field size listed 5)" "$(field size unlisted 4)" "$(field size unlisted 5)" \
    "$(field latency listed 3)" "$(field latency listed 4)" "$(field latency unlisted 3)" "$(field latency unlisted 4)" \
    "$(ms 0 median)" "$(ms 1 median)" "$(ms 2 median)" >>"$HISTORY"

SECTION=$WORK/section.md
{
    echo "## Status proofs (\`bench/status_proofs.sh\`)"
    echo
    echo "Generated by \`bench/status_proofs.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ): each run imports $STATUS_ROWS listings into a fresh PostgreSQL database ($(psql_admin 'SHOW server_version' | cut -d' ' -f1)), starts the release server on it and times, from the server's start, until its registry log holds every imported change with its status map; then \`check\` without and with \`statusProof\` ($STATUS_REQUESTS each, interleaved, one connection), for a listed (RESTRICTED) and an unlisted (CLEAR) code, and \`verify-receipt\` (one process, median of 200 runs) of a receipt alone and with each status proof. $(nproc) cores shared by the server, PostgreSQL and the client. Its own database and server, not part of the run the rest of this file reports: compare its rows with each other. Every run of this script on this machine is a row (\`$HISTORY\`), labelled by the build it ran."
    echo
    echo "Sizes in bytes, times in ms unless marked."
    echo
    n=0
    while IFS=$'\t' read -r -a cells; do
        printf '|'; printf ' %s |' "${cells[@]}"; echo
        if ((n++ == 0)); then
            printf '|---|'; for ((i = 1; i < ${#cells[@]}; i++)); do printf -- '---:|'; done; echo
        fi
    done <"$HISTORY"
    echo
    echo "Exact commands (of the last run):"
    echo
    echo '```'
    cat "$COMMANDS"
    echo '```'
} >"$SECTION"

replace_report_section "Status proofs" "$SECTION" "$REPORT"
log "figures written to $REPORT ($SECTION)"
cat "$SECTION"
