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
# The container image smoke test needs root (buildah, podman); everything else must not run as
# root, so it runs first, before the drop. AGENT_SKIP_IMAGE_TEST=1 leaves it out.
if [[ ${EUID} -eq 0 && "${AGENT_SKIP_IMAGE_TEST:-0}" != "1" ]]; then
    log "container image: build and smoke test (container/smoke-test.sh)"
    bash "${AGENT_REPO_ROOT}/container/smoke-test.sh" || die "the container image smoke test failed"
elif [[ ${EUID} -ne 0 && -z "${AGENT_CI_DROPPED:-}" ]]; then
    log "container image smoke test skipped: it needs root (buildah, podman); run this script as root to include it"
fi
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
