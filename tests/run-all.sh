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
use_compiler_cache
cache_counts_at_start="$(compiler_cache_counts)"
# integration.pgo-topology needs the pgBackRest PGO ships (2.56.0), built from source once per
# version: as root into /var/cache/agent-pgbackrest, where agentci finds it (ctest's
# pgbackrest.build only checks it then); an ordinary user's first run builds it into
# ~/.cache/agent/pgbackrest instead. A failure here fails that test, not the others.
if [[ ${EUID} -eq 0 ]]; then
    log "pgBackRest for the PGO topology test (tests/support/build-pgbackrest.sh, cached per version)"
    bash "${AGENT_REPO_ROOT}/tests/support/build-pgbackrest.sh" >/dev/null \
        || log "warning: building pgBackRest failed (above); integration.pgo-topology will fail"
fi
# The container image smoke test needs root (buildah, podman); everything else must not run as
# root, so it runs first, before the drop. AGENT_SKIP_IMAGE_TEST=1 leaves it out.
if [[ ${EUID} -eq 0 && "${AGENT_SKIP_IMAGE_TEST:-0}" != "1" ]]; then
    log "container image: build and smoke test (container/smoke-test.sh)"
    bash "${AGENT_REPO_ROOT}/container/smoke-test.sh" || die "the container image smoke test failed"
elif [[ ${EUID} -ne 0 && -z "${AGENT_CI_DROPPED:-}" ]]; then
    log "container image smoke test skipped: it needs root (buildah, podman); run this script as root to include it"
fi
# Checks that act as two users need root too: they run on the agent binary, built here first
# (the unprivileged build below goes on from the same build directory).
if [[ ${EUID} -eq 0 ]]; then
    build_agent agent
    log "control socket held by another user (tests/integration/foreign-socket.sh)"
    ensure_ci_user
    bash "${AGENT_REPO_ROOT}/tests/integration/foreign-socket.sh" "${AGENT_REPO_ROOT}/build/bin/agent" \
        || die "the foreign-socket checks failed"
elif [[ -z "${AGENT_CI_DROPPED:-}" ]]; then
    log "foreign-socket checks skipped: they need root (two users); run this script as root to include them"
fi
drop_privileges_if_root "$@"
cd "${AGENT_REPO_ROOT}"
build_agent

# CI shows only a part of a long log, so after a failure the essentials come last: for each
# failed test, how it ended, each gtest failure with a few lines of its message, and the last
# lines of its output. ctest keeps the full output in LastTest.log.
print_failure_digest() {
    local last_test_log="$1/LastTest.log"
    [[ -f ${last_test_log} ]] || return 0
    log "failure digest (the full output: ${last_test_log})"
    awk '
        /^[0-9]+\/[0-9]+ Test: / { name = $3; in_output = 0; n = 0; keep = 0; delete tail; digest = ""; next }
        /^Output:$/ { in_output = 1; getline; next }  # and the rule under it
        /^<end of output>$/ { in_output = 0; next }
        in_output {
            tail[n++ % 15] = $0
            if ($0 ~ /: Failure$|^\[  FAILED  \]|^\*\*\* integration_tests|terminate called|ERROR: [A-Za-z]+Sanitizer|runtime error: /) { keep = 12 }
            if (keep > 0) { digest = digest "    " $0 "\n"; keep-- }
            next
        }
        /^Test (Passed|Failed)|Exception|Timeout|Failed  / && name != "" {
            if ($0 == "Test Passed.") { name = ""; next }
            printf "=== %s: %s\n%s", name, $0, digest
            printf "    --- its last lines:\n"
            for (i = (n > 15 ? n - 15 : 0); i < n; i++) printf "    %s\n", tail[i % 15]
            name = ""
        }
    ' "${last_test_log}" | cut -c1-400 | head -c 20000 >&2 || true  # never replace ctest's status
}

log "running ctest"
rc=0
# Two at a time: the integration suites still run alone (RUN_SERIAL); builds and fuzz runs pair up.
ctest --test-dir "${AGENT_REPO_ROOT}/build" --output-on-failure --timeout 900 --no-tests=error --parallel 2 "$@" || rc=$?
compiler_cache_summary "${cache_counts_at_start}"
if [[ ${rc} -eq 0 ]]; then
    log "all tests passed"
else
    print_failure_digest "${AGENT_REPO_ROOT}/build/Testing/Temporary"
    log "ctest failed (exit ${rc})"
fi
exit "${rc}"
