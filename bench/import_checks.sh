#!/usr/bin/env bash
# Partners' checks while an authority imports its list, in one command, on PostgreSQL:
# starts the release server on a fresh database holding a first part of a listings file,
# then keeps CHECK_CLIENTS partner connections checking (each one request in flight,
# with its receipt) before, during and after `credit-registry import listings` of the
# whole file (IMPORT_ROWS rows) run beside it. Every check's latency is recorded; the
# figures are split by phase: idle, during the import, and until the registry log has
# caught up with it. A check must not wait for the import: its receipt names the
# registry log's head of the list it read, so it waits at most for the changes it saw
# to be logged, never for those committed after it.
# Loopback only; bounded by IMPORT_ROWS.
#
#   bench/import_checks.sh                        # 100,000 listings, 4 connections
#   IMPORT_ROWS=20000 bench/import_checks.sh      # quicker
#
# It writes a "Checks during an import" section into $REPORT (BENCHMARKS.md), replacing
# the one there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source bench/lib.sh

IMPORT_ROWS=${IMPORT_ROWS:-100000}
BASE_ROWS=${BASE_ROWS:-1000}
CHECK_CLIENTS=${CHECK_CLIENTS:-4}
IDLE_SECONDS=${IDLE_SECONDS:-5}
IMPORT_FLAGS=${IMPORT_FLAGS:-}            # more flags of the import, e.g. --chunk-rows 250
IMPORT_BUILD=${IMPORT_BUILD:-1}           # 0: use the release binaries already built
SEED=${SEED:-42}
PORT=${IMPORT_CHECKS_PORT:-18098}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}   # no database part
OUT=${OUT:-bench/out}
REPORT=${REPORT:-BENCHMARKS.md}
LABEL=${LABEL:-$(git rev-parse --short HEAD)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$CARGO_TARGET_DIR/release/credit-registry}   # another build to compare: BIN=… LABEL=…
WORK=$OUT/import-checks
DB=bench_import_checks
mkdir -p "$WORK"
COMMANDS=$WORK/commands.txt
: >"$COMMANDS"

require_tools psql curl python3
require_loopback "$PG_SERVER"
[[ $IMPORT_BUILD == 1 ]] && build_release_binaries

FILE=$WORK/listings-$IMPORT_ROWS.csv
listings_file "$IMPORT_ROWS" "$FILE"
# The first BASE_ROWS rows, imported before the server starts: the codes checked.
BASE_FILE=$WORK/listings-base.csv
head -n $((BASE_ROWS + 1)) "$FILE" >"$BASE_FILE"

fresh_database "$DB"
export DATABASE_URL=$PG_SERVER/$DB RUST_LOG=warn
export REGISTRY_DATA_DIR=$WORK/data REGISTRY_BIND=127.0.0.1:$PORT
rm -rf "$REGISTRY_DATA_DIR"
export REGISTRY_LIMITS__RATE_PER_SECOND=100000 REGISTRY_LIMITS__RATE_BURST=100000
"$BIN" migrate >/dev/null
"$BIN" import listings "$BASE_FILE" >/dev/null

SERVER_PID=
CHECKER_PID=
stop() {
    [[ -n $CHECKER_PID ]] && kill "$CHECKER_PID" 2>/dev/null
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    true
}
trap stop EXIT
shown DATABASE_URL="$DATABASE_URL" REGISTRY_BIND=127.0.0.1:$PORT "$BIN" serve
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
BASE=http://127.0.0.1:$PORT
wait_serving "$BASE"

# Until the registry log holds every change event in the database.
wait_logged() {
    local want
    want=$(psql "$DATABASE_URL" -qAtc "SELECT count(*) FROM listing_revisions")
    wait_registry_logged "$BASE" "$want" ||
        { echo "the registry log did not reach $want entries" >&2; exit 1; }
}
wait_logged

ADMIN=$("$BIN" token --role admin --sub bench-admin)
PARTNER=$("$BIN" token --role partner --sub bench-partner --domains PROCUREMENT --ttl 2h)
register_bench_partner "$BASE" "$ADMIN"
CODES=$WORK/codes.txt
# (sed, not head: with pipefail, head's early exit would fail the pipe)
sed -n 2,201p "$BASE_FILE" | cut -d, -f1 >"$CODES"
echo 91110000101623741K >>"$CODES"   # a code the registry does not know

# The checker: CHECK_CLIENTS threads, one connection each, until the stop file exists;
# one line per check: wall-clock start (s), latency (ms), decision (or the error).
STOP_FILE=$WORK/stop
rm -f "$STOP_FILE"
python3 - "$BASE" "$PARTNER" "$CODES" "$CHECK_CLIENTS" "$STOP_FILE" >"$WORK/checks.tsv" <<'EOF' &
import http.client, json, os, sys, threading, time
base, token, codes_file, clients, stop = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
host = base.split("//")[1]
codes = [c.strip() for c in open(codes_file) if c.strip()]
out, lock = [], threading.Lock()
def client(n):
    conn = http.client.HTTPConnection(host, timeout=600)
    i = n
    while not os.path.exists(stop):
        code = codes[i % len(codes)]
        i += clients
        body = json.dumps({"query": "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { decision receipt } }", "variables": {"u": code}})
        start, t = time.time(), time.perf_counter()
        conn.request("POST", "/graphql", body, {"authorization": "Bearer " + token, "content-type": "application/json"})
        resp = json.loads(conn.getresponse().read())
        ms = (time.perf_counter() - t) * 1000
        check = (resp.get("data") or {}).get("check")
        what = check["decision"] if check and check.get("receipt") else json.dumps(resp.get("errors"))
        with lock:
            out.append(f"{start:.6f}\t{ms:.3f}\t{what}")
threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print("\n".join(out))
EOF
CHECKER_PID=$!
sleep "$IDLE_SECONDS"

log "import of $IMPORT_ROWS listings beside $CHECK_CLIENTS checking connections"
shown DATABASE_URL="$DATABASE_URL" "$BIN" import listings $IMPORT_FLAGS "$FILE"
IMPORT_START=$(date +%s.%N)
# shellcheck disable=SC2086 # IMPORT_FLAGS is a list of flags
"$BIN" import listings $IMPORT_FLAGS "$FILE" >"$WORK/import.log" 2>&1
IMPORT_END=$(date +%s.%N)
wait_logged
LOGGED=$(date +%s.%N)
touch "$STOP_FILE"
wait "$CHECKER_PID"
CHECKER_PID=
stop
SERVER_PID=
unset DATABASE_URL
psql_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)"

python3 - "$WORK/checks.tsv" "$IMPORT_START" "$IMPORT_END" "$LOGGED" "$LABEL" >"$WORK/phases.tsv" <<'EOF'
import sys
path, start, end, logged, label = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
phases = {"idle": [], "import": [], "catch-up": []}
errors = {k: 0 for k in phases}
for line in open(path):
    t, ms, what = line.rstrip("\n").split("\t", 2)
    t, ms = float(t), float(ms)
    phase = "idle" if t < start else "import" if t < end else "catch-up" if t < logged else None
    if phase is None:
        continue
    phases[phase].append(ms)
    if what not in ("CLEAR", "RESTRICTED"):
        errors[phase] += 1
def q(xs, p):
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")
seconds = {"idle": None, "import": end - start, "catch-up": logged - end}
for name, xs in phases.items():
    xs.sort()
    span = seconds[name]
    print("\t".join([label, name, str(len(xs)), f"{q(xs, .5):.2f}", f"{q(xs, .99):.2f}",
                     f"{xs[-1] if xs else float('nan'):.2f}", str(sum(1 for x in xs if x > 1000)),
                     str(errors[name]), f"{span:.1f}" if span is not None else ""]))
EOF
cat "$WORK/phases.tsv" >&2
cat "$WORK/phases.tsv" >>"$WORK/history.tsv"

SECTION=$WORK/section.md
{
    echo "## Checks during an import (\`bench/import_checks.sh\`)"
    echo
    echo "Generated by \`bench/import_checks.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ): a fresh PostgreSQL database ($(psql_admin 'SHOW server_version' | cut -d' ' -f1)) holding $BASE_ROWS listings, the release server on it, $CHECK_CLIENTS partner connections checking (one request in flight each, receipts included) while \`credit-registry import listings\` imports a file of $IMPORT_ROWS listings beside them, $(nproc) cores shared by the server, the import, PostgreSQL and the client. Phases: idle (before the import), during the import, and from its end until the registry log holds every change. Every run of this script on this machine is a row (\`$WORK/history.tsv\`), labelled by the build it ran."
    echo
    printf '| build | phase | checks | p50 ms | p99 ms | max ms | over 1 s | errors | seconds |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n'
    while IFS=$'\t' read -r label phase n p50 p99 max slow errs span; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$phase" "$n" "$p50" "$p99" "$max" "$slow" "$errs" "$span"
    done <"$WORK/history.tsv"
    echo
    echo "Exact commands:"
    echo
    echo '```'
    cat "$COMMANDS"
    echo '```'
} >"$SECTION"

replace_report_section "Checks during an import" "$SECTION" "$REPORT"
log "figures written to $REPORT ($SECTION)"
cat "$SECTION"
