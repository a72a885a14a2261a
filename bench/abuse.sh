#!/usr/bin/env bash
# The isolation benchmark on its own: the large scale only, with the partners' checks
# alone and then beside each abusive client (WebSocket continuation frames before
# connection_init, anonymous 30-alias public searches, 5,000 subscriptions and idle
# sockets, a partner's 30 aliases of checkBatch(1000)), and the public name search.
# Every abuser is bounded in time and talks to loopback only. The same runs are part of
# bench/run.sh; this writes its own report instead of BENCHMARKS.md.
#
#   bench/abuse.sh                                   # 10 million operators
#   LARGE_OPERATORS=1000000 bench/abuse.sh           # quicker
set -euo pipefail
cd "$(dirname "$0")/.."
export SCALES=large ABUSE=1
export RUN_PREFIX=abuse-
export REPORT=${REPORT:-bench/out/abuse-REPORT.md}
exec bench/run.sh
