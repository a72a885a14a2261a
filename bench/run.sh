#!/usr/bin/env bash
# One command for the whole benchmark: build the release binaries, seed one PostgreSQL
# database per scale, start the server on a free loopback port, measure everything
# side by side, and write BENCHMARKS.md. Loopback only; every measurement is bounded.
#
#   bench/run.sh                                      # 10 thousand and 10 million operators
#   LARGE_OPERATORS=1000000 LARGE_LISTINGS=100000 bench/run.sh   # a quicker large scale
#
# Settings (environment): see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMALL_OPERATORS=${SMALL_OPERATORS:-10000}
SMALL_LISTINGS=${SMALL_LISTINGS:-$((SMALL_OPERATORS / 10))}
LARGE_OPERATORS=${LARGE_OPERATORS:-10000000}
LARGE_LISTINGS=${LARGE_LISTINGS:-$((LARGE_OPERATORS / 10))}
CHECK_RECORDS=${CHECK_RECORDS:-}          # default: one per listing
SEED=${SEED:-42}
DURATION=${DURATION:-15}                  # seconds per measurement
WARMUP=${WARMUP:-3}                       # seconds of warm-up before each
CONNECTIONS=${CONNECTIONS:-"16 64"}
MIXED_CONNECTIONS=${MIXED_CONNECTIONS:-16}
BATCH_SIZE=${BATCH_SIZE:-1000}
BATCH_CONNECTIONS=${BATCH_CONNECTIONS:-1}
WRITE_SHARE=${WRITE_SHARE:-0.05}
DOMAIN=${DOMAIN:-PROCUREMENT}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}   # no database part
REUSE=${REUSE:-1}                         # keep a bench database whose manifest matches
OUT=${OUT:-bench/out}
REPORT=${REPORT:-BENCHMARKS.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/credit-registry
LOADGEN=$CARGO_TARGET_DIR/release/loadgen
SEED_BENCH=$CARGO_TARGET_DIR/release/seed-bench

mkdir -p "$OUT/data"
RUN_PREFIX=${RUN_PREFIX:-}                # bench/abuse.sh: its own results beside the data sets
RESULTS=$OUT/${RUN_PREFIX}results.jsonl
COMMANDS=$OUT/${RUN_PREFIX}commands.txt
NOTES=$OUT/${RUN_PREFIX}notes.txt
: >"$RESULTS"
: >"$NOTES"
# The server and the token command share this directory: its token-signing key.
export REGISTRY_DATA_DIR=$OUT/data
# One partner token drives the whole load: the per-subject rate limit (2000/s by default)
# would measure the limiter, not the service. It is raised, not removed: every request
# still pays for the limiter's bookkeeping.
export REGISTRY_LIMITS__RATE_PER_SECOND=${REGISTRY_LIMITS__RATE_PER_SECOND:-10000000}
export REGISTRY_LIMITS__RATE_BURST=${REGISTRY_LIMITS__RATE_BURST:-10000000}
# The public search figures measure the search, not the anonymous per-address limit
# (20/s by default): it is raised for the main runs too, and restored for the abuse runs.
export REGISTRY_LIMITS__PUBLIC_RATE_PER_SECOND=${REGISTRY_LIMITS__PUBLIC_RATE_PER_SECOND:-10000000}
export REGISTRY_LIMITS__PUBLIC_RATE_BURST=${REGISTRY_LIMITS__PUBLIC_RATE_BURST:-10000000}
ABUSE=${ABUSE:-1}                         # 0: skip the abuse runs
ABUSE_CLIENTS=${ABUSE_CLIENTS:-3}
ABUSE_PARTNERS=${ABUSE_PARTNERS:-4}               # partner subjects sharing the checks beside the abusers
printf 'export REGISTRY_DATA_DIR=%s\n' "$REGISTRY_DATA_DIR" >"$COMMANDS"
printf 'export REGISTRY_LIMITS__RATE_PER_SECOND=%s REGISTRY_LIMITS__RATE_BURST=%s\n' \
    "$REGISTRY_LIMITS__RATE_PER_SECOND" "$REGISTRY_LIMITS__RATE_BURST" >>"$COMMANDS"
rm -f "$OUT"/${RUN_PREFIX}scale-*.json

log() { printf '\n== %s\n' "$*" >&2; }
note() { printf '%s\n' "$*" >>"$NOTES"; }

# Records a command (tokens replaced by their names) and runs it.
run() {
    local shown="" arg
    for arg in "$@"; do
        if [[ -n ${ADMIN_TOKEN:-} && $arg == "$ADMIN_TOKEN" ]]; then arg='"$ADMIN_TOKEN"'
        elif [[ -n ${PARTNER_TOKEN:-} && $arg == "$PARTNER_TOKEN" ]]; then arg='"$PARTNER_TOKEN"'
        elif [[ $arg =~ [[:space:]\$\(\)\\] ]]; then arg="'$arg'"
        fi
        shown+="${shown:+ }${arg//$ROOT\//}"
    done
    printf '%s\n' "$shown" >>"$COMMANDS"
    "$@"
}

need_tools() {
    local missing=()
    for tool in psql pgbench jq curl; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
            log "installing postgresql-client jq curl (missing: ${missing[*]})"
            apt-get install -y postgresql-client jq curl >/dev/null
        else
            echo "missing tools: ${missing[*]} (install postgresql-client, jq, curl)" >&2
            exit 1
        fi
    fi
}

label_of() {
    local n=$1
    if ((n % 1000000 == 0)); then echo "$((n / 1000000))m"
    elif ((n % 1000 == 0)); then echo "$((n / 1000))k"
    else echo "$n"; fi
}

free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 100); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

psql_admin() { psql "$PG_SERVER/postgres" -v ON_ERROR_STOP=1 -qAtc "$1"; }
psql_admin_db() { psql "$PG_SERVER/$1" -v ON_ERROR_STOP=1 -qAtc "$2"; }

SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap 'stop_server; stop_peer' EXIT

need_tools
if [[ ${BUILD:-1} == 1 ]]; then                # BUILD=0: measure the binaries already built
    log "building release binaries"
    run cargo build --release -p api -p bench-seed -p loadgen   # bench-seed: also listings-csv
fi

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
SERVER_WORKERS=${REGISTRY_WORKERS:-0}
POOL=${REGISTRY_DATABASE__MAX_CONNECTIONS:-16}

# Seeds (or reuses) one database; prints whether it was reused.
prepare_database() {
    local db=$1 operators=$2 listings=$3 manifest=$4
    local checks=${CHECK_RECORDS:-$listings}
    if [[ $REUSE == 1 && -f $manifest ]] &&
        [[ $(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$db'") == 1 ]] &&
        [[ $(jq -r '"\(.operators) \(.listings) \(.seed) \(.check_records)"' "$manifest") == "$operators $listings $SEED $checks" ]] &&
        [[ $(psql "$PG_SERVER/$db" -qAtc "SELECT count(*) FROM operators" 2>/dev/null) == "$operators" ]]; then
        log "reusing $db (manifest $manifest matches)"
        printf '%s\n' "# reused database $db seeded earlier by:" >>"$COMMANDS"
        printf 'DATABASE_URL=%s/%s target/release/seed-bench --operators %s --listings %s --check-records %s --seed %s --manifest %s\n' \
            "$PG_SERVER" "$db" "$operators" "$listings" "$checks" "$SEED" "$manifest" >>"$COMMANDS"
        echo true
        return
    fi
    log "seeding $db: $operators operators, $listings listings, $checks check records"
    run psql "$PG_SERVER/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >&2
    run psql "$PG_SERVER/postgres" -qc "CREATE DATABASE $db" >&2
    printf 'DATABASE_URL=%s/%s target/release/seed-bench --operators %s --listings %s --check-records %s --seed %s --manifest %s\n' \
        "$PG_SERVER" "$db" "$operators" "$listings" "$checks" "$SEED" "$manifest" >>"$COMMANDS"
    DATABASE_URL="$PG_SERVER/$db" RUST_LOG=warn \
        "$SEED_BENCH" --operators "$operators" --listings "$listings" \
        --check-records "$checks" --seed "$SEED" --manifest "$manifest" >&2
    echo false
}

# start_server DB [VAR=VALUE ...]: the extra assignments are the server's environment too.
start_server() {
    local db=$1
    shift
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT/graphql
    printf '%sDATABASE_URL=%s/%s REGISTRY_BIND=127.0.0.1:%s RUST_LOG=warn target/release/credit-registry serve &\n' \
        "${*:+$* }" "$PG_SERVER" "$db" "$PORT" >>"$COMMANDS"
    env "$@" DATABASE_URL="$PG_SERVER/$db" REGISTRY_BIND="127.0.0.1:$PORT" \
        RUST_LOG=warn "$BIN" serve >"$OUT/server-$db.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 150); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$OUT/server-$db.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "the server did not come up" >&2
    exit 1
}

pgbench_pk() {
    local db=$1 label=$2 operators=$3 c=$4
    local jobs=$(( c < $(nproc) ? c : $(nproc) ))
    local args=(-n -M prepared -c "$c" -j "$jobs" -D "operators=$operators" -f bench/pgbench/pk_lookup.sql "$PG_SERVER/$db")
    pgbench "${args[@]}" -T "$WARMUP" >/dev/null 2>&1 || true
    local out
    out=$(run pgbench "${args[@]}" -T "$DURATION" 2>&1)
    local tps lat n failed
    tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | tail -1)
    lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
    n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
    failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' <<<"$out")
    jq -nc --arg scale "$label" --argjson c "$c" --argjson tps "${tps:-0}" --argjson lat "${lat:-null}" \
        --argjson n "${n:-0}" --argjson failed "${failed:-0}" --argjson ops "$operators" \
        --argjson d "$DURATION" --arg q "$(tr '\n' ' ' <bench/pgbench/pk_lookup.sql)" \
        --argjson load "$(cut -d' ' -f1 /proc/loadavg)" \
        '{kind:"pgbench", scenario:"pk", query:$q, scale:$scale, operators:$ops, connections:$c,
          duration_s:$d, requests:$n, errors:$failed, rps:$tps, mean_ms:$lat, loadavg:$load}' | tee -a "$RESULTS" >&2
}

# Anonymous public name search (one connection: the latency of one visitor's search):
# a name that matches, one that matches nothing, and one character (refused as too short).
measure_search() {
    local db=$1
    shift
    local name fragment
    name=$(psql_admin_db "$db" "SELECT o.name FROM operators o JOIN listings l ON l.operator_id = o.id WHERE l.status = 'LISTED' ORDER BY l.id LIMIT 1")
    fragment=${name:2:4}
    [[ -n $fragment ]] || { echo "no listed operator's name to search for in $db" >&2; exit 1; }
    log "$label: public search, a match ('$fragment'), no match, one character"
    run "$LOADGEN" http --scenario search --connections 1 --label search:match --search "$fragment" "$@"
    run "$LOADGEN" http --scenario search --connections 1 --label search:no-match --search "无此名称之企业" "$@"
    run "$LOADGEN" http --scenario search --connections 1 --label search:one-character --search "华" --expect-reason SEARCH_TOO_SHORT "$@"
}

# The partners' checks alone and then beside each abusive client, the server at its
# default anonymous limits. Bounded: each abuser stops by itself after the window.
measure_abuse() {
    local db=$1 label=$2 manifest=$3
    # Every limit at its production default: the abusers must meet the limits a real
    # deployment has. The partners' load is spread over ABUSE_PARTNERS subjects (as a
    # real deployment's is over its partner systems), each under its own default limit
    # (2,000/s, far above its share); the abusive partner has a subject of its own.
    start_server "$db" REGISTRY_LIMITS__PUBLIC_RATE_PER_SECOND=20 REGISTRY_LIMITS__PUBLIC_RATE_BURST=40 \
        REGISTRY_LIMITS__RATE_PER_SECOND=2000 REGISTRY_LIMITS__RATE_BURST=4000
    log "abuse runs: server pid $SERVER_PID on $URL ($db, default limits)"
    local admin partner abuser
    admin=$("$BIN" token --role admin --sub bench-admin --ttl 2h)
    ADMIN_TOKEN=$admin
    local partners=()
    for i in $(seq 1 "$ABUSE_PARTNERS"); do partners+=("bench-partner-$i"); done
    for sub in "${partners[@]}" bench-abuser; do
        run "$LOADGEN" register-partner --url "$URL" --admin-token "$admin" \
            --subject "$sub" --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS >/dev/null
    done
    local token_file=$OUT/abuse-partner-tokens.txt
    : >"$token_file"
    for sub in "${partners[@]}"; do
        "$BIN" token --role partner --sub "$sub" --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS --ttl 2h >>"$token_file"
    done
    partner=$(head -n 1 "$token_file")
    abuser=$("$BIN" token --role partner --sub bench-abuser --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS --ttl 2h)
    PARTNER_TOKEN=$partner
    local common=(--manifest "$manifest" --scale "$label" --out "$RESULTS" --duration "$DURATION" --warmup "$WARMUP" --seed "$SEED")
    local http=(--url "$URL" --token "$partner" --token-file "$token_file" --admin-token "$admin" --domain "$DOMAIN" --server-pid "$SERVER_PID")
    log "$label: partners' checks alone"
    run "$LOADGEN" http --scenario single --connections 16 --label abuse:none "${http[@]}" "${common[@]}"
    local window
    window=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print w + d + 1 }')
    for kind in ws-frames anon-aliases subscriptions batch-aliases; do
        log "$label: partners' checks beside $kind"
        local clients=$ABUSE_CLIENTS
        [[ $kind == subscriptions ]] && clients=$((ABUSE_CLIENTS * 10))
        run "$LOADGEN" abuse --kind "$kind" --url "$URL" --token "$abuser" --clients "$clients" \
            --duration "$window" --manifest "$manifest" --scale "$label" --out "$RESULTS" >"$OUT/abuse-$kind.json" &
        local abuse_pid=$!
        sleep 0.5
        run "$LOADGEN" http --scenario single --connections 16 --label "abuse:$kind" "${http[@]}" "${common[@]}"
        wait "$abuse_pid" || true
        ADMIN_TOKEN=$admin PARTNER_TOKEN=$partner
    done
    ABUSE_HWM=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
    note "Abuse runs ($label): server peak resident memory over all of them (VmHWM) $(awk -v k="${ABUSE_HWM:-0}" 'BEGIN { printf "%.1f", k / 1024 }') MiB; every limit at its default (anonymous 20/s per address, 2,000/s per partner subject); the partners' checks over $ABUSE_PARTNERS subjects, the abusive partner a subject of its own."
    stop_server
}

# The peer (issue 18): PostGraphile, an automatic GraphQL layer over PostgreSQL, on the
# same database at its defaults, asked for the same random codes at the same connection
# counts: its bare `operatorByUscc`, and the operator with its listings, periods and
# measures (a check's reading, without the record, the log or the receipt).
PEER=${PEER:-1}                           # 0: skip PostGraphile
PEER_DIR=$ROOT/bench/postgraphile
PEER_BIN=$PEER_DIR/node_modules/.bin/postgraphile
PEER_PID=
stop_peer() {
    if [[ -n $PEER_PID ]] && kill -0 "$PEER_PID" 2>/dev/null; then
        kill "$PEER_PID"
        wait "$PEER_PID" 2>/dev/null || true
    fi
    PEER_PID=
}
measure_peer() {
    local db=$1 label=$2 manifest=$3
    if [[ ! -x $PEER_BIN ]]; then
        command -v npm >/dev/null || { echo "npm is missing: apt-get install npm (or PEER=0)" >&2; exit 1; }
        log "installing PostGraphile (bench/postgraphile/package-lock.json) with npm"
        run npm ci --prefix "$PEER_DIR" --no-audit --no-fund >&2
    fi
    local port
    port=$(free_port)
    # Started in its own directory: it reads its smart tags (postgraphile.tags.json5) there.
    printf '(cd bench/postgraphile && exec node_modules/.bin/postgraphile -c %s/%s --host 127.0.0.1 --port %s) &\n' "$PG_SERVER" "$db" "$port" >>"$COMMANDS"
    (cd "$PEER_DIR" && exec "$PEER_BIN" -c "$PG_SERVER/$db" --host 127.0.0.1 --port "$port") >"$OUT/postgraphile-$db.log" 2>&1 &
    PEER_PID=$!
    local peer_url=http://127.0.0.1:$port/graphql
    local ready=
    for _ in $(seq 1 300); do
        if curl -fs -H 'Content-Type: application/json' -d '{"query":"{__typename}"}' "$peer_url" >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$PEER_PID" 2>/dev/null || { cat "$OUT/postgraphile-$db.log" >&2; exit 1; }
        sleep 0.2
    done
    [[ -n $ready ]] || { echo "PostGraphile did not come up" >&2; cat "$OUT/postgraphile-$db.log" >&2; exit 1; }
    # Its answers must be the seeded data: a listed operator comes back with its listing.
    local code answer
    code=$(psql_admin_db "$db" "SELECT o.uscc FROM operators o JOIN listings l ON l.operator_id = o.id WHERE l.status = 'LISTED' ORDER BY l.id LIMIT 1")
    answer=$(curl -s -H 'Content-Type: application/json' \
        -d "$(jq -nc --arg q "$("$LOADGEN" peer-query --scenario graphile-full)" --arg u "$code" '{query:$q, variables:{u:$u}}')" "$peer_url")
    [[ $(jq -r '.data.operatorByUscc.listingsByOperatorId.nodes | length' <<<"$answer") -ge 1 ]] ||
        { echo "PostGraphile did not answer $code with its listing: $answer" >&2; exit 1; }
    log "PostGraphile pid $PEER_PID on $peer_url answers as seeded"
    local common=(--manifest "$manifest" --scale "$label" --out "$RESULTS" --duration "$DURATION" --warmup "$WARMUP" --seed "$SEED")
    for scenario in graphile-lookup graphile-full; do
        for c in $CONNECTIONS; do
            log "$label: PostGraphile $scenario, $c connections"
            run "$LOADGEN" http --scenario "$scenario" --connections "$c" --url "$peer_url" --token - \
                --admin-token - --server-pid "$PEER_PID" "${common[@]}"
        done
    done
    note "The peer: PostGraphile $(jq -r '.dependencies.postgraphile' "$PEER_DIR/package.json") (npm, pinned in bench/postgraphile), node $(node --version), started on the same database with its defaults (\`postgraphile -c URL\`: one node process, its own pool), asked anonymously."
    stop_peer
}

# What a receipt weighs and what verifying one offline costs (issue 17): one check's
# receipt from the running server, verified with nothing but the answer log's public key.
measure_receipt() {
    local label=$1 manifest=$2
    local code receipt_file=$OUT/receipt-$label.txt vkey_file=$OUT/answers-$label.vkey
    code=$(psql_admin_db "bench_$label" "SELECT o.uscc FROM operators o JOIN listings l ON l.operator_id = o.id WHERE l.status = 'LISTED' ORDER BY l.id LIMIT 1")
    curl -fs -H 'Content-Type: application/json' -H "Authorization: Bearer $PARTNER_TOKEN" \
        -d "$(jq -nc --arg u "$code" --arg d "$DOMAIN" '{query:"query($u: String!, $d: Domain!) { check(uscc: $u, domain: $d) { receipt } }", variables:{u:$u, d:$d}}')" \
        "$URL" | jq -ej '.data.check.receipt' >"$receipt_file"
    curl -fs "http://127.0.0.1:$PORT/logs/answers/vkey" >"$vkey_file"
    run "$BIN" verify-receipt --vkey "$vkey_file" "@$receipt_file" >&2
    local bytes lines runs=${VERIFY_RUNS:-200}
    bytes=$(wc -c <"$receipt_file")
    lines=$(wc -l <"$receipt_file")
    local json=$OUT/verify-$label.json
    if command -v hyperfine >/dev/null; then
        run hyperfine -N --warmup 10 --runs "$runs" --export-json "$json" \
            "$BIN verify-receipt --vkey $vkey_file @$receipt_file" "$BIN --version" >&2
        jq -c --arg scale "$label" --argjson bytes "$bytes" --argjson lines "$lines" \
            '{kind:"verify", scenario:"verify-receipt", query:.results[0].command, scale:$scale, operators:0,
              connections:1, duration_s:0, requests:(.results[0].times | length), errors:0, rps:0,
              mean_ms:(.results[0].mean * 1000), p50_ms:(.results[0].median * 1000),
              max_ms:(.results[0].max * 1000),
              note:"receipt \($bytes) bytes, \($lines) lines; process start alone (--version): mean \(.results[1].mean * 1000 * 100 | round / 100) ms, median \(.results[1].median * 1000 * 100 | round / 100) ms"}' \
            "$json" >>"$RESULTS"
    else
        note "hyperfine is missing: the receipt's verification cost was not measured (receipt $bytes bytes)."
    fi
}

measure_scale() {
    local operators=$1 listings=$2 full=$3
    local label db manifest reused
    label=$(label_of "$operators")
    db=bench_$label
    manifest=$OUT/$label.manifest.json
    reused=$(prepare_database "$db" "$operators" "$listings" "$manifest")
    # A reused database may have left the page cache since it was seeded: read every table
    # and index once (pg_prewarm 'read' fills the OS cache), so that no measurement (the
    # HTTP ones come first) pays for cold reads that the ceilings measured later would not.
    log "warming the page cache for $db"
    run psql "$PG_SERVER/$db" -qAt -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
        -c "SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')" >&2
    start_server "$db"
    log "server pid $SERVER_PID on $URL ($db)"

    ADMIN_TOKEN=$("$BIN" token --role admin --sub bench-admin --ttl 2h)
    printf 'ADMIN_TOKEN=$(target/release/credit-registry token --role admin --sub bench-admin --ttl 2h)\n' >>"$COMMANDS"
    local partner_sub=bench-loadgen
    local reg
    reg=$(run "$LOADGEN" register-partner --url "$URL" --admin-token "$ADMIN_TOKEN" \
        --subject "$partner_sub" --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS)
    partner_sub=$(jq -r .subject <<<"$reg")
    PARTNER_TOKEN=$("$BIN" token --role partner --sub "$partner_sub" \
        --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS --ttl 2h)
    printf 'PARTNER_TOKEN=$(target/release/credit-registry token --role partner --sub %s --domains PROCUREMENT,BIDDING,LAND_TRANSFER,HONORS --ttl 2h)\n' "$partner_sub" >>"$COMMANDS"
    local probe
    probe=$(run "$LOADGEN" probe --url "$URL" --token "$PARTNER_TOKEN")
    log "server offers: $probe; partner registration: $reg"
    # The answers must agree with the seeded data before anything is measured.
    local verified
    verified=$(run "$LOADGEN" verify --url "$URL" --token "$PARTNER_TOKEN" --manifest "$manifest" --domain "$DOMAIN" --seed "$SEED")
    log "answers agree with the seeded data: $verified"
    [[ $(jq -r .single <<<"$probe") == check ]] ||
        note "At $label the single lookup measured \`operator(uscc:)\`: \`check\` does not exist in this build."

    local common=(--manifest "$manifest" --scale "$label" --out "$RESULTS" --duration "$DURATION" --warmup "$WARMUP" --seed "$SEED")
    local http=(--url "$URL" --token "$PARTNER_TOKEN" --admin-token "$ADMIN_TOKEN" --domain "$DOMAIN" --server-pid "$SERVER_PID")
    for c in $CONNECTIONS; do
        log "$label: single lookups over HTTP, $c connections"
        run "$LOADGEN" http --scenario single --connections "$c" "${http[@]}" "${common[@]}"
    done
    if [[ $full == 1 ]]; then
        if [[ $(jq -r .batch <<<"$probe") == true ]]; then
            log "$label: checkBatch of $BATCH_SIZE codes"
            run "$LOADGEN" http --scenario batch --connections "$BATCH_CONNECTIONS" --batch-size "$BATCH_SIZE" "${http[@]}" "${common[@]}"
        else
            note "checkBatch does not exist in this build: the batch figure is missing."
        fi
        log "$label: mixed load ($WRITE_SHARE admin mutations)"
        run "$LOADGEN" http --scenario mixed --connections "$MIXED_CONNECTIONS" --write-share "$WRITE_SHARE" "${http[@]}" "${common[@]}"
        measure_search "$db" "${http[@]}" "${common[@]}"
        log "$label: a receipt's size and its offline verification"
        measure_receipt "$label" "$manifest"
    fi
    local hwm
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status")
    stop_server
    if [[ $full == 1 && $PEER == 1 ]]; then
        measure_peer "$db" "$label" "$manifest"
    fi
    if [[ $full == 1 && $ABUSE == 1 ]]; then
        measure_abuse "$db" "$label" "$manifest"
    fi

    # The ceilings, with the server idle (still on the same cores).
    for c in $CONNECTIONS; do
        log "$label: pgbench primary-key lookup, $c clients"
        pgbench_pk "$db" "$label" "$operators" "$c"
        log "$label: SQL loop uscc = \$1, $c connections"
        run "$LOADGEN" pg --database-url "$PG_SERVER/$db" --scenario lookup --connections "$c" "${common[@]}"
    done
    if [[ $full == 1 ]]; then
        log "$label: bare = ANY(\$1) of $BATCH_SIZE codes"
        run "$LOADGEN" pg --database-url "$PG_SERVER/$db" --scenario any --connections "$BATCH_CONNECTIONS" --batch-size "$BATCH_SIZE" "${common[@]}"
    fi

    jq -n --arg scale "$label" --arg db "$db" --argjson manifest "$(cat "$manifest")" \
        --argjson reused "$reused" --argjson hwm "${hwm:-null}" --argjson probe "$probe" \
        --argjson partner "$reg" --argjson verified "$verified" \
        '{scale:$scale, database:$db, manifest:$manifest, reused:$reused, vmhwm_kib:$hwm, queries:$probe, partner:$partner, verified:$verified}' \
        >"$OUT/${RUN_PREFIX}scale-$label.json"
    unset ADMIN_TOKEN PARTNER_TOKEN
}

SCALES=${SCALES:-both}                    # large: only the large scale (bench/abuse.sh)
[[ $SCALES == large ]] || measure_scale "$SMALL_OPERATORS" "$SMALL_LISTINGS" 0
measure_scale "$LARGE_OPERATORS" "$LARGE_LISTINGS" 1

# Bulk import and export (issue 14): fresh databases of their own, after the lookups.
SECTIONS=()
if [[ ${BULK:-1} == 1 && -z $RUN_PREFIX ]]; then
    log "bulk import and export (bench/bulk.sh; BULK=0 skips it)"
    printf 'bench/bulk.sh\n' >>"$COMMANDS"
    BULK_BUILD=0 PG_SERVER=$PG_SERVER OUT=$OUT REPORT=$OUT/bulk/REPORT.md SEED=$SEED bench/bulk.sh
    # Its figures join the results (the targets table reads them); its section is kept.
    while IFS=$'\t' read -r what rows seconds kib; do
        jq -nc --arg what "$what" --argjson rows "$rows" --argjson s "$seconds" --argjson kib "$kib" \
            '{kind:"bulk", scenario:$what, query:$what, scale:"bulk", operators:$rows, connections:1,
              duration_s:$s, requests:$rows, errors:0, rps:(if $s > 0 then $rows / $s else 0 end),
              rss_peak_mib:($kib / 1024)}' >>"$RESULTS"
    done <"$OUT/bulk/results.tsv"
    SECTIONS+=("$OUT/bulk/section.md")
fi

# Status proofs (issue 17): a fresh database of its own, after the bulk runs.
if [[ ${STATUS_PROOFS:-1} == 1 && -z $RUN_PREFIX ]]; then
    log "status proofs (bench/status_proofs.sh; STATUS_PROOFS=0 skips it)"
    printf 'bench/status_proofs.sh\n' >>"$COMMANDS"
    STATUS_BUILD=0 PG_SERVER=$PG_SERVER OUT=$OUT REPORT=$OUT/status-proofs/REPORT.md SEED=$SEED \
        bench/status_proofs.sh
    SECTIONS+=("$OUT/status-proofs/section.md")
fi

# Several instances behind HAProxy (issue 16): a cluster of its own on other ports.
if [[ ${CLUSTER:-1} == 1 && -z $RUN_PREFIX ]]; then
    if command -v haproxy >/dev/null && command -v socat >/dev/null; then
        log "1, 2 and 3 instances behind HAProxy (bench/cluster.sh; CLUSTER=0 skips it)"
        printf 'bench/cluster.sh\n' >>"$COMMANDS"
        BUILD=0 OUT=$OUT SEED=$SEED DURATION=$DURATION WARMUP=$WARMUP bench/cluster.sh >&2
        jq -c '. + {kind:"cluster"}' "$OUT/cluster-results.jsonl" >>"$RESULTS"
        SECTIONS+=("$OUT/cluster.md")
    else
        note "haproxy or socat is missing: the several-instance runs (bench/cluster.sh) were skipped."
    fi
fi

note "Load average before the run: $LOADAVG_START; after: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)."
note "Server: release build, REGISTRY_WORKERS=$SERVER_WORKERS (0 = one per core), pool of $POOL connections, RUST_LOG=warn (no per-request logs), per-subject rate limit raised to $REGISTRY_LIMITS__RATE_PER_SECOND/s (one partner token drives the load; the limiter still runs)."
note "Load generator: \`loadgen\` (bench/loadgen), one runtime thread, one kept-alive HTTP/1.1 connection per client, closed loop; p50/p99 over successful requests started inside the window."
note "pgbench: -M prepared, -j min(clients, nproc), a ${WARMUP}-second warm-up run discarded; the PK lookup is by operators.id (random ids over every operator)."
note "Bench data are a bulk load: seed-bench writes no audit events and leaves audit_head alone; the mixed load's mutations are audited as usual."

jq -n \
    --arg generated_at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg git_commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' || echo ' (with uncommitted changes)')" \
    --arg command "bench/run.sh" \
    --arg cpu "$(lscpu | sed -nE 's/^Model name: +//p' | head -1)" \
    --arg nproc "$(nproc)" \
    --arg memory "$(free -h | awk '/^Mem:/ {print $2 " total, " $7 " available"}')" \
    --arg kernel "$(uname -sr)" \
    --arg postgres "$(psql_admin 'SHOW server_version') (shared_buffers $(psql_admin 'SHOW shared_buffers'))" \
    --arg server "release build, workers ${SERVER_WORKERS} (0 = one per core), pool ${POOL}" \
    --arg window "${WARMUP} s warm-up + ${DURATION} s per measurement; connections: ${CONNECTIONS}" \
    --slurpfile scales <(cat "$OUT"/${RUN_PREFIX}scale-*.json | jq -s 'sort_by(.manifest.operators)[]') \
    --rawfile commands "$COMMANDS" \
    --rawfile notes "$NOTES" \
    '{generated_at:$generated_at, git_commit:$git_commit, command:$command,
      machine:{cpu:$cpu, nproc:$nproc, memory:$memory, kernel:$kernel, postgres:$postgres, server:$server, window:$window},
      scales:$scales,
      commands:($commands | split("\n") | map(select(length > 0))),
      notes:($notes | split("\n") | map(select(length > 0)))}' >"$OUT/${RUN_PREFIX}meta.json"

SECTION_ARGS=()
for f in "${SECTIONS[@]}"; do SECTION_ARGS+=(--section "$f"); done
run "$LOADGEN" report --results "$RESULTS" --meta "$OUT/${RUN_PREFIX}meta.json" --out "$REPORT" "${SECTION_ARGS[@]}"
