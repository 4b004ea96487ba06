#!/usr/bin/env bash
# Dump shapes side by side on one cluster: plain (with the parallel row copy), plain with
# --compress zstd to a file and to standard output, custom, and directory --jobs 2 with
# pg_dump's gzip and without compression. Prints one line per dump: wall time, the manifest's
# dump step, bytes written. Not part of the default test run; run as the cluster's user.
#
#   tests/bench/formats.sh CLUSTER_DIR [ROUNDS]
#
# CLUSTER_DIR: made by tests/support/make-cluster.sh --pgbench-scale S (its server running).
set -euo pipefail
CLUSTER="${1:?usage: formats.sh CLUSTER_DIR [ROUNDS]}"
ROUNDS="${2:-2}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT="${AGENT:-${HERE}/../../build/bin/agent}"
# cluster.env is KEY=VALUE lines, values unquoted (TARGET holds a space).
while IFS='=' read -r key value; do declare "${key}=${value}"; done <"${CLUSTER}/cluster.env"

one() {  # NAME [-] ARGS...: one dump; '-' sends it to standard output
    local name="$1" out="${OUTPUT_DIR}/$1" rc=0 start end step
    shift
    rm -rf "${out}" "${out}.manifest.json"
    start="$(date +%s.%N)"
    if [[ "${1:-}" == "-" ]]; then
        shift
        "${AGENT}" dump --config "${AGENT_CONFIG}" --target "${TARGET}" --output - "$@" 2>/dev/null >"${out}" || rc=$?
    else
        "${AGENT}" dump --config "${AGENT_CONFIG}" --target "${TARGET}" --output "${out}" "$@" 2>/dev/null || rc=$?
    fi
    end="$(date +%s.%N)"
    step="$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["durations_seconds"]["dump"], 2))' \
        "${out}.manifest.json" 2>/dev/null || echo -)"
    printf '%s\trc=%s\ttotal_s=%.2f\tdump_step_s=%s\tbytes=%s\n' "${name}" "${rc}" \
        "$(python3 -c "print(${end} - ${start})")" "${step}" "$(du -sb "${out}" | cut -f1)"
}

for ((round = 1; round <= ROUNDS; round++)); do
    one plain.sql
    one plain.sql.zst --compress zstd
    one stream.sql -
    one stream.sql.zst - --compress zstd
    one custom.pgdump --format custom
    one dir-gzip --format directory --jobs 2
    one dir-none --format directory --jobs 2 --compress none
done
