#!/usr/bin/env bash
# Checks a plain pg_dump of database api made by the agent from a
# make-cluster.sh cluster: ids 1..B of events present (phase 'before'),
# ids B+1..B+A absent.
#
#   tests/support/check-dump.sh DUMP [ROWS_BEFORE [ROWS_AFTER]]
#
# Prints one summary line on stdout; exits 1 with reasons on stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT_LOG_TAG="check-dump"
# shellcheck source=tests/lib/common.sh
source "${HERE}/../lib/common.sh"

if [[ $# -lt 1 || $# -gt 3 ]]; then
    printf 'usage: %s DUMP [ROWS_BEFORE [ROWS_AFTER]]\n' "$0" >&2
    exit 2
fi
check_dump "$@"
