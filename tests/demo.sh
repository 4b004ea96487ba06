#!/usr/bin/env bash
# End-to-end demo: build the agent, make a throwaway cluster with backups,
# and have the agent produce a point-in-time dump of database api.
#
#   tests/demo.sh [--keep] [--bulk-mb M]
#
#   --keep       leave the cluster running afterwards (prints how to stop it)
#   --bulk-mb M  passed to make-cluster.sh (adds ~M MB to database api)
#
# As root it installs missing packages, then re-runs itself as user agentci.
# For debugging the harness: AGENT_DEMO_SKIP_BUILD=1 skips the build and
# AGENT_BIN=PATH runs another agent binary than build/bin/agent.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT_LOG_TAG="demo"
# shellcheck source=tests/lib/common.sh
source "${HERE}/lib/common.sh"

KEEP=0
BULK_MB=0
args=("$@")
while [[ $# -gt 0 ]]; do
    case "$1" in
        --keep) KEEP=1; shift ;;
        --bulk-mb) [[ $# -ge 2 ]] || die "--bulk-mb needs a value"; BULK_MB="$2"; shift 2 ;;
        --bulk-mb=*) BULK_MB="${1#--bulk-mb=}"; shift ;;
        -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
done

ensure_packages
drop_privileges_if_root "${args[@]}"
cd "${AGENT_REPO_ROOT}"
if [[ "${AGENT_DEMO_SKIP_BUILD:-0}" != "1" ]]; then
    build_agent
fi
AGENT_BIN="${AGENT_BIN:-${AGENT_REPO_ROOT}/build/bin/agent}"

CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/agent-demo.XXXXXX")"
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ ${KEEP} -eq 1 ]]; then
        printf '\nCluster kept in %s (settings in %s/cluster.env).\n' "${CLUSTER_DIR}" "${CLUSTER_DIR}" >&2
        printf 'Stop and remove it with:\n  %s/support/stop-cluster.sh --dir %s --remove\n' "${HERE}" "${CLUSTER_DIR}" >&2
    else
        "${HERE}/support/stop-cluster.sh" --dir "${CLUSTER_DIR}" --remove >/dev/null 2>&1 \
            || printf 'demo: warning: could not clean up %s\n' "${CLUSTER_DIR}" >&2
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "making a cluster in ${CLUSTER_DIR}"
"${HERE}/support/make-cluster.sh" --dir "${CLUSTER_DIR}" --bulk-mb "${BULK_MB}"
read_cluster_env "${CLUSTER_DIR}/cluster.env"
TARGET="${CLUSTER[TARGET]}"
DUMP="${CLUSTER[OUTPUT_DIR]}/restore.sql"

[[ -x "${AGENT_BIN}" ]] || die "${AGENT_BIN} not found (build the agent first)"
log "running: agent dump --config ${CLUSTER[AGENT_CONFIG]} --target \"${TARGET}\" --output ${DUMP}"
start_ns="$(date +%s%N)"
agent_rc=0
"${AGENT_BIN}" dump --config "${CLUSTER[AGENT_CONFIG]}" --target "${TARGET}" --output "${DUMP}" || agent_rc=$?
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
if [[ ${agent_rc} -ne 0 ]]; then
    die "agent dump failed with exit code ${agent_rc}"
fi
[[ -s "${DUMP}" ]] || die "agent dump succeeded but ${DUMP} is missing or empty"

log "checking the dump"
summary="$(check_dump "${DUMP}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}")" \
    || die "the dump does not match the target (see above)"

size_bytes="$(stat -c %s -- "${DUMP}")"
printf '\nDemo succeeded.\n'
printf '  target:    %s\n' "${TARGET}"
printf '  dump:      %s\n' "${DUMP}"
printf '  size:      %s bytes (%s)\n' "${size_bytes}" "$(numfmt --to=iec-i --suffix=B "${size_bytes}")"
printf '  duration:  %d.%03d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
printf '  %s\n' "${summary}"
MANIFEST="${DUMP}.manifest.json"
if [[ -f "${MANIFEST}" ]]; then
    printf '  manifest:  %s\n' "${MANIFEST}"
    sed 's/^/    /' "${MANIFEST}"
    printf '\n'
fi
