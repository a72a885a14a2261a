#!/usr/bin/env bash
# Bulk import and export on PostgreSQL, in one command: generates listings import files
# (bench-seed's `listings-csv`: valid codes with both check digits, every listing in
# force), imports each into a fresh database with `credit-registry import listings`, then
# exports the public list as CSV and as .xlsx with `credit-registry export public-list`,
# at two sizes (so that memory can be seen to stay flat in the row count). Each command is
# timed with GNU time (wall seconds, peak RSS). Loopback only; bounded by the sizes.
#
#   bench/bulk.sh                          # 1,000,000 and 250,000 listings
#   BULK_ROWS=200000 bench/bulk.sh         # quicker (and BULK_SMALL_ROWS=50000)
#   BULK_REIMPORT=0 bench/bulk.sh          # without the no-op re-imports
#
# It writes a "Bulk import and export" section into $REPORT (BENCHMARKS.md), replacing
# the one there. bench/run.sh calls it last (BULK=0 skips it there).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
source bench/lib.sh

BULK_ROWS=${BULK_ROWS:-1000000}
BULK_SMALL_ROWS=${BULK_SMALL_ROWS:-$((BULK_ROWS / 4))}
BULK_BUILD=${BULK_BUILD:-1}               # 0: use the release binaries already built
BULK_REIMPORT=${BULK_REIMPORT:-1}         # 0: skip the no-op re-imports (CSV and .xlsx)
SEED=${SEED:-42}
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}   # no database part
OUT=${OUT:-bench/out}
REPORT=${REPORT:-BENCHMARKS.md}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/credit-registry
TIME=/usr/bin/time

mkdir -p "$OUT/bulk"
WORK=$OUT/bulk
RESULTS=$WORK/results.tsv
COMMANDS=$WORK/commands.txt
: >"$RESULTS"
: >"$COMMANDS"

for tool in psql "$TIME"; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (postgresql-client, time)" >&2; exit 1; }
done
require_loopback "$PG_SERVER"
[[ $BULK_BUILD == 1 ]] && build_release_binaries

# Runs a command under GNU time; appends "what rows seconds peak_kib" to the results.
timed() {
    local what=$1 rows=$2
    shift 2
    shown "$TIME" -f "'%e s %M KiB'" "$@"
    local t
    t=$(mktemp)
    "$TIME" -o "$t" -f '%e %M' "$@"
    read -r seconds kib <"$t"
    rm -f "$t"
    printf '%s\t%s\t%s\t%s\n' "$what" "$rows" "$seconds" "$kib" >>"$RESULTS"
    printf '%s: %s rows in %s s (%.0f rows/s), peak RSS %.1f MiB\n' "$what" "$rows" "$seconds" \
        "$(echo "$rows / $seconds" | bc -l)" "$(echo "$kib / 1024" | bc -l)" >&2
}

one_size() {
    local rows=$1 with_xlsx_import=$2
    local db=bench_bulk_$rows file=$WORK/listings-$rows.csv
    local url=$PG_SERVER/$db
    listings_file "$rows" "$file"
    log "fresh database $db"
    fresh_database "$db"
    shown DATABASE_URL="$url" "$BIN" migrate
    DATABASE_URL=$url RUST_LOG=warn "$BIN" migrate >/dev/null

    log "import of $rows listings"
    export DATABASE_URL=$url RUST_LOG=warn
    shown DATABASE_URL="$url" RUST_LOG=warn
    timed import "$rows" "$BIN" import listings "$file" >"$WORK/import-$rows.txt"
    cat "$WORK/import-$rows.txt" >&2
    grep -q "created $rows, updated 0, unchanged 0, rejected 0 (committed" "$WORK/import-$rows.txt" ||
        { echo "the import did not create every row" >&2; exit 1; }
    local listed
    listed=$(psql "$url" -qAtc "SELECT count(*) FROM listings")
    [[ $listed == "$rows" ]] || { echo "$listed listings after importing $rows rows" >&2; exit 1; }
    timed verify-audit "$((2 * rows))" "$BIN" verify-audit >"$WORK/verify-$rows.txt"
    cat "$WORK/verify-$rows.txt" >&2
    if [[ $BULK_REIMPORT == 1 ]]; then
        timed reimport "$rows" "$BIN" import listings "$file" >"$WORK/reimport-$rows.txt"
        grep -q "created 0, updated 0, unchanged $rows" "$WORK/reimport-$rows.txt" ||
            { cat "$WORK/reimport-$rows.txt" >&2; echo "the re-import changed something" >&2; exit 1; }
    fi

    if [[ $with_xlsx_import == 1 && $BULK_REIMPORT == 1 ]]; then
        # The sheet is streamed (calamine's cell reader): memory should match the CSV's.
        log "the same listings as .xlsx, imported again (no change)"
        "$BIN" export listings --format xlsx --out "$WORK/listings-$rows.xlsx"
        shown "$BIN" export listings --format xlsx --out "$WORK/listings-$rows.xlsx"
        timed reimport-xlsx "$rows" "$BIN" import listings "$WORK/listings-$rows.xlsx" >"$WORK/reimport-xlsx-$rows.txt"
        grep -q "created 0, updated 0, unchanged $rows" "$WORK/reimport-xlsx-$rows.txt" ||
            { cat "$WORK/reimport-xlsx-$rows.txt" >&2; echo "the .xlsx re-import changed something" >&2; exit 1; }
        rm -f "$WORK/listings-$rows.xlsx"
    fi

    for format in csv xlsx; do
        log "public list of $rows in-force listings as $format"
        timed "export-$format" "$rows" "$BIN" export public-list --format "$format" --out "$WORK/public-$rows.$format"
    done
    local exported
    exported=$(($(wc -l <"$WORK/public-$rows.csv") - 1))
    [[ $exported == "$rows" ]] || { echo "the CSV export has $exported rows, not $rows" >&2; exit 1; }
    unset DATABASE_URL
    psql_admin "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    rm -f "$WORK/public-$rows.csv" "$WORK/public-$rows.xlsx"
}

LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
one_size "$BULK_SMALL_ROWS" 1
one_size "$BULK_ROWS" 0
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# The report section.
SECTION=$WORK/section.md
{
    echo "## Bulk import and export (\`bench/bulk.sh\`)"
    echo
    echo "Generated by \`bench/bulk.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ) at commit \`$(git rev-parse --short HEAD)\`: each size in a fresh PostgreSQL database ($(psql_admin 'SHOW server_version' | cut -d' ' -f1), shared_buffers $(psql_admin 'SHOW shared_buffers')), release build, $(nproc) cores shared with PostgreSQL (load average $LOADAVG_START before, $LOADAVG_END after). Rows/s is rows over the command's wall time (an import reads its file twice: validation, then writing a chunk of 1,000 rows per transaction); peak RSS is GNU time's maximum resident set size of the command."
    echo
    echo "| command | rows | seconds | rows/s | peak RSS |"
    echo "|---|---:|---:|---:|---:|"
    while IFS=$'\t' read -r what rows seconds kib; do
        case $what in
            import) label="\`import listings\` (CSV, new operators and listings)" ;;
            verify-audit) label="\`verify-audit\` (audit events after the import)" ;;
            reimport) label="\`import listings\` again (no change)" ;;
            reimport-xlsx) label="\`import listings\` of the same listings as \`.xlsx\` (no change; the sheet streamed)" ;;
            export-csv) label="\`export public-list --format csv\`" ;;
            export-xlsx) label="\`export public-list --format xlsx\`" ;;
            *) label=$what ;;
        esac
        printf '| %s | %s | %s | %.0f | %.1f MiB |\n' "$label" "$rows" "$seconds" \
            "$(echo "$rows / $seconds" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
    done <"$RESULTS"
    echo
    echo "Targets (issue 14): importing 1 million listings ≥ 20,000 rows/s with peak RSS ≤ 200 MiB; exports with RSS flat in the row count (compare the two sizes)."
    echo
    echo "Exact commands:"
    echo
    echo '```'
    cat "$COMMANDS"
    echo '```'
} >"$SECTION"

# Replace the section in the report (or append it).
replace_report_section "Bulk import and export" "$SECTION" "$REPORT"
log "figures written to $REPORT ($SECTION)"
cat "$SECTION"
