# Shared by the benchmark scripts that write a section of their own into a report
# (bench/bulk.sh, bench/status_proofs.sh). Source it; it defines functions only.

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
