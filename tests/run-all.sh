#!/usr/bin/env bash
# Builds the agent and runs every test (unit + integration) through ctest.
#
#   tests/run-all.sh [extra ctest arguments, e.g. -R unit]
#
# As root it installs missing packages, then re-runs itself as user agentci
# (PostgreSQL refuses to run as root). Exits with ctest's status.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT_LOG_TAG="run-all"
# shellcheck source=tests/lib/common.sh
source "${HERE}/lib/common.sh"

ensure_packages
drop_privileges_if_root "$@"
cd "${AGENT_REPO_ROOT}"
build_agent

log "running ctest"
rc=0
ctest --test-dir "${AGENT_REPO_ROOT}/build" --output-on-failure --timeout 900 --no-tests=error "$@" || rc=$?
if [[ ${rc} -eq 0 ]]; then
    log "all tests passed"
else
    log "ctest failed (exit ${rc})"
fi
exit "${rc}"
