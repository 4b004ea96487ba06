#!/usr/bin/env bash
# Benchmarks: the agent against the manual runbook and the plain tools, side by
# side in one run, at several pgbench scales. Not part of the default test run.
#
#   tests/bench/run.sh [--scales "10 50 200"] [--rounds N] [--backup-rounds N]
#                      [--drill-rounds N] [--focused-rounds N] [--focused-scale S]
#                      [--large-scale S] [--work DIR] [--results FILE] [--keep]
#
#   --scales LIST   pgbench scales to build and measure (default "10 50 200")
#   --rounds N      A/B pairs per dump comparison (default 5: on a shared VM single runs vary by ±30%)
#   --backup-rounds N  A/B pairs per backup comparison (default 5: a backup
#                   varies by several percent from run to run, the target is 2%)
#   --drill-rounds N   restore drills per scale (default 3; 0: none)
#   --focused-rounds N A/B pairs on the three-database cluster (default 3; 0: none)
#   --focused-scale S  pgbench scale of each of its three databases (default: the
#                   largest of --scales)
#   --large-scale S    one plain and one zstd dump at this scale for the agent's peak
#                   memory (default 1000; 0: none; skipped with a note when the
#                   work directory has less than 40 MB free per unit of scale)
#   --work DIR      where clusters, scratch copies and dumps go
#                   (default /var/tmp/agent-bench; needs about 25 GB at scale 200)
#   --results FILE  the Markdown report (default tests/bench/RESULTS.md)
#   --keep          keep each scale's cluster directory (stopped) afterwards
#
# For each scale it builds a PostgreSQL 15 cluster with pgbench data, full and
# incremental backups around a recorded target (tests/support/make-cluster.sh
# --pgbench-scale), then alternates A (agent) and B (plain tools) pair by pair:
#   dump-empty   agent dump --target  vs  the five runbook commands, empty scratch
#   dump-delta   the same, each side restoring --delta over its own last copy
#   backup-incr  agent backup --type incr  vs  pgbackrest backup --type=incr
#   backup-full  agent backup --type full  vs  pgbackrest backup --type=full
#   drill        agent drill --target (the dump's target, --delta over the agent's last copy):
#                its phases next to the dump's (no B side: no runbook does what it does)
# Then, on a cluster of three databases of the same size (api and two file copies,
# --focused-scale): the one-database dump (only api restored, restore.only_dumped_database)
# against the runbook, which restores all three, both into an empty scratch; and the
# plain stream against the zstd stream (`--output - [--compress zstd]`) pair by pair.
# Last, at --large-scale, the agent's peak memory during a plain and a zstd dump.
# And, with `agent run` up: its resident memory and CPU while idle (CPU over
# 60 s), /metrics latency under 50 connections (wrk) during a full backup, and
# `pgbackrest info --output=json`, which a per-scrape exporter runs each time.
# The agent's peak resident memory is sampled during every dump.
#
# Raw samples go to WORK/raw.tsv; tests/bench/report.py turns them into the
# report. As root it installs what is missing, then re-runs itself as agentci.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT_LOG_TAG="bench"
# shellcheck source=tests/lib/common.sh
source "${HERE}/../lib/common.sh"
AGENT_PACKAGES+=(wrk curl python3 zstd)

SCALES="10 50 200"
ROUNDS=5
BACKUP_ROUNDS=5
DRILL_ROUNDS=3
FOCUSED_ROUNDS=3
FOCUSED_SCALE=""
LARGE_SCALE=1000
WORK="/var/tmp/agent-bench"
RESULTS="${AGENT_REPO_ROOT}/tests/bench/RESULTS.md"
KEEP=0
args=("$@")
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scales) [[ $# -ge 2 ]] || die "--scales needs a value"; SCALES="$2"; shift 2 ;;
        --rounds) [[ $# -ge 2 ]] || die "--rounds needs a value"; ROUNDS="$2"; shift 2 ;;
        --backup-rounds) [[ $# -ge 2 ]] || die "--backup-rounds needs a value"; BACKUP_ROUNDS="$2"; shift 2 ;;
        --drill-rounds) [[ $# -ge 2 ]] || die "--drill-rounds needs a value"; DRILL_ROUNDS="$2"; shift 2 ;;
        --focused-rounds) [[ $# -ge 2 ]] || die "--focused-rounds needs a value"; FOCUSED_ROUNDS="$2"; shift 2 ;;
        --focused-scale) [[ $# -ge 2 ]] || die "--focused-scale needs a value"; FOCUSED_SCALE="$2"; shift 2 ;;
        --large-scale) [[ $# -ge 2 ]] || die "--large-scale needs a value"; LARGE_SCALE="$2"; shift 2 ;;
        --work) [[ $# -ge 2 ]] || die "--work needs a value"; WORK="$2"; shift 2 ;;
        --results) [[ $# -ge 2 ]] || die "--results needs a value"; RESULTS="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,42p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
done
[[ "${ROUNDS}" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive integer, got '${ROUNDS}'"
[[ "${BACKUP_ROUNDS}" =~ ^[1-9][0-9]*$ ]] || die "--backup-rounds must be a positive integer, got '${BACKUP_ROUNDS}'"
[[ "${DRILL_ROUNDS}" =~ ^[0-9]+$ ]] || die "--drill-rounds must be a non-negative integer, got '${DRILL_ROUNDS}'"
[[ "${FOCUSED_ROUNDS}" =~ ^[0-9]+$ ]] || die "--focused-rounds must be a non-negative integer, got '${FOCUSED_ROUNDS}'"
[[ "${LARGE_SCALE}" =~ ^[0-9]+$ ]] || die "--large-scale must be a non-negative integer, got '${LARGE_SCALE}'"
for scale in ${SCALES}; do
    [[ "${scale}" =~ ^[1-9][0-9]*$ ]] || die "--scales must list positive integers, got '${scale}'"
done
FOCUSED_SCALE="${FOCUSED_SCALE:-$(tr ' ' '\n' <<<"${SCALES}" | sort -n | tail -n 1)}"
[[ "${FOCUSED_SCALE}" =~ ^[1-9][0-9]*$ ]] || die "--focused-scale must be a positive integer, got '${FOCUSED_SCALE}'"

ensure_packages
# The run below is unprivileged; a root-owned checkout must still take its report.
if [[ "$(id -u)" == "0" ]]; then
    touch -- "${RESULTS}" "${RESULTS%.md}.raw.tsv"
    chown "${AGENT_CI_USER}" -- "${RESULTS}" "${RESULTS%.md}.raw.tsv"
fi
drop_privileges_if_root "${args[@]}"
cd "${AGENT_REPO_ROOT}"
if [[ "${AGENT_BENCH_SKIP_BUILD:-0}" != "1" ]]; then
    build_agent
fi
AGENT_BIN="${AGENT_BIN:-${AGENT_REPO_ROOT}/build/bin/agent}"
BINDIR="/usr/lib/postgresql/15/bin"

mkdir -p -- "${WORK}"
WORK="$(realpath -- "${WORK}")"
RAW="${WORK}/raw.tsv"
: >"${RAW}"

CURRENT_DIR=""
AGENT_RUN_PID=""
cleanup() {
    local rc=$?
    if [[ -n "${AGENT_RUN_PID}" ]]; then
        kill -TERM "${AGENT_RUN_PID}" 2>/dev/null || true
        wait "${AGENT_RUN_PID}" 2>/dev/null || true
    fi
    if [[ -n "${CURRENT_DIR}" && -d "${CURRENT_DIR}" ]]; then
        stop_runbook_server "${CURRENT_DIR}/runbook-scratch"
        if [[ "${KEEP}" == "1" ]]; then
            bash "${AGENT_REPO_ROOT}/tests/support/stop-cluster.sh" --dir "${CURRENT_DIR}" >/dev/null 2>&1 || true
        else
            bash "${AGENT_REPO_ROOT}/tests/support/stop-cluster.sh" --dir "${CURRENT_DIR}" --remove >/dev/null 2>&1 || true
        fi
    fi
    exit "${rc}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_runbook_server() {
    local data="$1"
    if [[ -f "${data}/postmaster.pid" ]]; then
        "${BINDIR}/pg_ctl" -D "${data}" -m immediate stop >/dev/null 2>&1 || true
    fi
}

now_ns() { date +%s%N; }
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# record SCALE BENCH SIDE ROUND VALUE [NOTE]
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >>"${RAW}"; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the two sides of a dump ------------------------------------------------------------

# The runbook as a person runs it, with the one wait a careful person adds: poll until
# recovery has paused at the target before reading the replay timestamp.
# Sets RUNBOOK_STEPS to "restore SECONDS start SECONDS ..." for the report's step table.
runbook_dump() {
    local scratch="$1" output="$2" port="$3" log="$4"
    local mark
    RUNBOOK_STEPS=""
    mark="$(now_ns)"
    pgbackrest --config="${CLUSTER[PGBACKREST_CONFIG]}" --stanza="${CLUSTER[STANZA]}" restore --type=time \
        --target="${CLUSTER[TARGET]}" --pg1-path="${scratch}" --delta >>"${log}" 2>&1
    RUNBOOK_STEPS+="restore $(seconds_since "${mark}") "
    mark="$(now_ns)"
    "${BINDIR}/pg_ctl" -D "${scratch}" -l "${log}.server" start -o "-p ${port}" >>"${log}" 2>&1
    RUNBOOK_STEPS+="start $(seconds_since "${mark}") "
    mark="$(now_ns)"
    local state=""
    until [[ "${state}" == "paused" ]]; do
        state="$("${BINDIR}/psql" -X -At -h "${CLUSTER[SOCKET_DIR]}" -p "${port}" -U postgres -d postgres \
            -c "SELECT pg_get_wal_replay_pause_state()" 2>>"${log}" || true)"
        [[ "${state}" == "paused" ]] || sleep 0.1
    done
    "${BINDIR}/psql" -X -h "${CLUSTER[SOCKET_DIR]}" -p "${port}" -U postgres -d postgres \
        -c "SELECT pg_last_xact_replay_timestamp();" >>"${log}" 2>&1
    RUNBOOK_STEPS+="wait $(seconds_since "${mark}") "
    mark="$(now_ns)"
    "${BINDIR}/pg_dump" -h "${CLUSTER[SOCKET_DIR]}" -p "${port}" -U postgres -d api --create -F plain >"${output}" 2>>"${log}"
    RUNBOOK_STEPS+="dump $(seconds_since "${mark}") "
    mark="$(now_ns)"
    "${BINDIR}/pg_ctl" -D "${scratch}" stop >>"${log}" 2>&1
    RUNBOOK_STEPS+="stop $(seconds_since "${mark}")"
}

# record_steps SCALE MODE SIDE ROUND "STEP SECONDS STEP SECONDS ..."
record_steps() {
    local scale="$1" mode="$2" side="$3" round="$4" step seconds
    # shellcheck disable=SC2086 # the list is split on purpose
    set -- $5
    while [[ $# -ge 2 ]]; do
        step="$1" seconds="$2"
        shift 2
        record "${scale}" "step-${mode}-${step}" "${side}" "${round}" "${seconds}"
    done
}

# The agent's own step durations, from the manifest it wrote next to the dump.
agent_steps() {
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["durations_seconds"]
print(" ".join(f"{k} {v:.3f}" for k, v in d.items()))' "$1"
}

# Runs the agent's dump in the background and samples its peak resident memory
# (VmHWM of the agent process itself, not of its children) until it exits.
# OUTPUT "-" streams the dump to standard output, into STREAM_FILE. More dump options may
# follow. Prints "SECONDS PEAK_KIB".
agent_dump() {
    local scratch="$1" output="$2" port="$3" log="$4"
    shift 4
    local start pid peak=0 hwm rc=0
    start="$(now_ns)"
    if [[ "${output}" == "-" ]]; then
        "${AGENT_BIN}" dump --config "${CLUSTER[AGENT_CONFIG]}" --target "${CLUSTER[TARGET]}" --scratch "${scratch}" \
            --output - --port "${port}" --log-format json "$@" >"${STREAM_FILE}" 2>>"${log}" &
    else
        "${AGENT_BIN}" dump --config "${CLUSTER[AGENT_CONFIG]}" --target "${CLUSTER[TARGET]}" --scratch "${scratch}" \
            --output "${output}" --port "${port}" --log-format json "$@" >>"${log}" 2>&1 &
    fi
    pid=$!
    while kill -0 "${pid}" 2>/dev/null; do
        hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/${pid}/status" 2>/dev/null || true)"
        [[ -z "${hwm}" || "${hwm}" -le "${peak}" ]] || peak="${hwm}"
        sleep 0.05
    done
    wait "${pid}" || rc=$?
    ((rc == 0)) || { tail -n 20 "${log}" >&2; die "agent dump failed (exit ${rc}); log: ${log}"; }
    printf '%s %s\n' "$(seconds_since "${start}")" "${peak}"
}

# Before each timed run, untimed: remove the last output (and, for "empty", the scratch copy),
# then write all dirty pages out, so that neither side pays for the other's writeback.
prepare_side() {
    local mode="$1" scratch="$2"
    shift 2
    rm -f -- "$@"
    if [[ "${mode}" == "empty" ]]; then
        rm -rf -- "${scratch}"
    fi
    sync
}

bench_dumps() {
    local scale="$1" mode="$2" dir="$3"
    local a_scratch="${dir}/agent-scratch" b_scratch="${dir}/runbook-scratch"
    local a_out="${dir}/out/agent.sql" b_out="${dir}/out/runbook.sql"
    local round start seconds peak
    for ((round = 1; round <= ROUNDS; round++)); do
        prepare_side "${mode}" "${a_scratch}" "${a_out}" "${a_out}.manifest.json"
        read -r seconds peak < <(agent_dump "${a_scratch}" "${a_out}" "${CLUSTER[SCRATCH_PORT]}" "${dir}/agent-dump.log")
        record "${scale}" "dump-${mode}" A "${round}" "${seconds}"
        record "${scale}" "agent-peak-rss-kib" A "${round}" "${peak}"
        record_steps "${scale}" "${mode}" A "${round}" "$(agent_steps "${a_out}.manifest.json")"
        log "scale ${scale} dump-${mode} round ${round}: agent ${seconds} s (peak RSS ${peak} KiB)"

        prepare_side "${mode}" "${b_scratch}" "${b_out}"
        start="$(now_ns)"
        runbook_dump "${b_scratch}" "${b_out}" "${CLUSTER[SCRATCH_PORT]}" "${dir}/runbook.log" \
            || die "the runbook failed; log: ${dir}/runbook.log"
        seconds="$(seconds_since "${start}")"
        record "${scale}" "dump-${mode}" B "${round}" "${seconds}"
        record_steps "${scale}" "${mode}" B "${round}" "${RUNBOOK_STEPS}"
        log "scale ${scale} dump-${mode} round ${round}: runbook ${seconds} s"

        if ((round == 1)); then
            # Both sides must have produced the same point in time, or the race is meaningless.
            check_dump "${a_out}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null \
                || die "the agent's dump at scale ${scale} is wrong"
            check_dump "${b_out}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null \
                || die "the runbook's dump at scale ${scale} is wrong"
            record "${scale}" "dump-bytes" A "${round}" "$(stat -c %s "${a_out}")"
            record "${scale}" "dump-bytes" B "${round}" "$(stat -c %s "${b_out}")"
        fi
    done
    rm -f -- "${a_out}" "${a_out}.manifest.json" "${b_out}"
}

# --- restore drills -------------------------------------------------------------------------
# agent drill at the dump's target, restoring --delta over the agent's last copy as the
# dump-delta runs do; its phases come from the manifest it writes in state_dir/drills. The
# cluster has amcheck in api (make-cluster.sh --amcheck) and no data checksums, so
# pg_checksums is skipped.
bench_drills() {
    local scale="$1" dir="$2"
    local config="${dir}/drill-agent.yaml" log="${dir}/agent-drill.log" round start seconds rc
    { cat -- "${CLUSTER[AGENT_CONFIG]}"; printf 'state_dir: %s\n' "${dir}/drill-state"; } >"${config}"
    for ((round = 1; round <= DRILL_ROUNDS; round++)); do
        sync
        start="$(now_ns)"
        rc=0
        "${AGENT_BIN}" drill --config "${config}" --target "${CLUSTER[TARGET]}" --database api \
            --scratch "${dir}/agent-scratch" --port "${CLUSTER[SCRATCH_PORT]}" --log-format json >>"${log}" 2>&1 || rc=$?
        seconds="$(seconds_since "${start}")"
        ((rc == 0)) || { tail -n 20 "${log}" >&2; die "agent drill failed (exit ${rc}); log: ${log}"; }
        record "${scale}" "drill" A "${round}" "${seconds}"
        record_steps "${scale}" "drill" A "${round}" "$(agent_steps "${dir}/drill-state/drills/last.json")"
        log "scale ${scale} drill round ${round}: ${seconds} s"
    done
}

# --- one database of three, and the zstd stream -----------------------------------------------
# A cluster whose api has two file copies of the same size (make-cluster.sh --pgbench-clones).
# Pairs, both sides into an empty scratch: the agent's dump of api, which restores only api
# (and template0/1, postgres) with restore.only_dumped_database, against the runbook, which
# restores all three; the scratch disk each left behind (blocks in use: the left-out databases
# are sparse files). Then `--output -` plain against `--output - --compress zstd`, both
# restoring --delta over the agent's copy, wall time and bytes, pair by pair.
disk_bytes() { du -s -B1 -- "$1" | cut -f1; }

bench_focused() {
    local scale="$1" dir="$2"
    local a_scratch="${dir}/agent-scratch" b_scratch="${dir}/runbook-scratch"
    local a_out="${dir}/out/agent.sql" b_out="${dir}/out/runbook.sql"
    local round start seconds peak
    for ((round = 1; round <= FOCUSED_ROUNDS; round++)); do
        prepare_side empty "${a_scratch}" "${a_out}" "${a_out}.manifest.json"
        read -r seconds peak < <(agent_dump "${a_scratch}" "${a_out}" "${CLUSTER[SCRATCH_PORT]}" "${dir}/agent-dump.log")
        record "${scale}" "focused-dump" A "${round}" "${seconds}"
        record "${scale}" "focused-scratch-bytes" A "${round}" "$(disk_bytes "${a_scratch}")"
        record_steps "${scale}" "focused" A "${round}" "$(agent_steps "${a_out}.manifest.json")"
        log "scale ${scale} x3 one-database dump round ${round}: agent ${seconds} s (peak RSS ${peak} KiB)"

        prepare_side empty "${b_scratch}" "${b_out}"
        start="$(now_ns)"
        runbook_dump "${b_scratch}" "${b_out}" "${CLUSTER[SCRATCH_PORT]}" "${dir}/runbook.log" \
            || die "the runbook failed; log: ${dir}/runbook.log"
        seconds="$(seconds_since "${start}")"
        record "${scale}" "focused-dump" B "${round}" "${seconds}"
        record "${scale}" "focused-scratch-bytes" B "${round}" "$(disk_bytes "${b_scratch}")"
        record_steps "${scale}" "focused" B "${round}" "${RUNBOOK_STEPS}"
        log "scale ${scale} x3 one-database dump round ${round}: runbook ${seconds} s"
        if ((round == 1)); then
            check_dump "${a_out}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null \
                || die "the agent's one-database dump is wrong"
            check_dump "${b_out}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null \
                || die "the runbook's dump of the three-database cluster is wrong"
        fi
    done
    rm -rf -- "${b_scratch}"
    rm -f -- "${a_out}" "${a_out}.manifest.json" "${b_out}"

    # Streams: A compressed, B plain; the same scratch copy, restored --delta by each run.
    local plain="${dir}/out/stream.sql" packed="${dir}/out/stream.sql.zst"
    for ((round = 1; round <= FOCUSED_ROUNDS; round++)); do
        rm -f -- "${plain}" "${packed}"
        sync
        STREAM_FILE="${packed}"
        read -r seconds peak < <(agent_dump "${a_scratch}" - "${CLUSTER[SCRATCH_PORT]}" "${dir}/agent-dump.log" --compress zstd)
        record "${scale}" "stream-zstd" A "${round}" "${seconds}"
        record "${scale}" "stream-bytes" A "${round}" "$(stat -c %s "${packed}")"
        record "${scale}" "stream-peak-rss-kib" A "${round}" "${peak}"
        log "scale ${scale} stream round ${round}: zstd ${seconds} s, $(stat -c %s "${packed}") bytes (peak RSS ${peak} KiB)"
        sync
        STREAM_FILE="${plain}"
        read -r seconds peak < <(agent_dump "${a_scratch}" - "${CLUSTER[SCRATCH_PORT]}" "${dir}/agent-dump.log")
        record "${scale}" "stream-zstd" B "${round}" "${seconds}"
        record "${scale}" "stream-bytes" B "${round}" "$(stat -c %s "${plain}")"
        record "${scale}" "stream-peak-rss-kib" B "${round}" "${peak}"
        log "scale ${scale} stream round ${round}: plain ${seconds} s, $(stat -c %s "${plain}") bytes (peak RSS ${peak} KiB)"
        if ((round == 1)); then
            check_dump "${plain}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null \
                || die "the plain stream is wrong"
            check_dump <(zstd -q -dc -- "${packed}") "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null \
                || die "the zstd stream is wrong"
        fi
    done
    rm -f -- "${plain}" "${packed}"
}

# --- memory at a larger scale -------------------------------------------------------------------
# One plain dump to a file and one zstd stream, each into an empty scratch: the agent's peak
# resident memory next to the smaller scales' (its buffers are bounded; the database is not).
bench_large() {
    local scale="$1" dir="$2"
    local seconds peak out="${dir}/out/agent.sql"
    # The throwaway live cluster shares the work directory's filesystem with the scratch copy and
    # the dump, where the default reserve (10% of the filesystem) would refuse a dump this large:
    # keep 2% (and at least 1 GiB) free instead.
    CLUSTER[AGENT_CONFIG]="${dir}/large-agent.yaml"
    { cat -- "${dir}/agent.yaml"; printf 'disk:\n  reserve_percent: 2\n'; } >"${CLUSTER[AGENT_CONFIG]}"
    prepare_side empty "${dir}/agent-scratch" "${out}" "${out}.manifest.json"
    read -r seconds peak < <(agent_dump "${dir}/agent-scratch" "${out}" "${CLUSTER[SCRATCH_PORT]}" "${dir}/agent-dump.log")
    record "${scale}" "large-dump" A 1 "${seconds}"
    record "${scale}" "large-peak-rss-kib" A 1 "${peak}"
    record "${scale}" "large-dump-bytes" A 1 "$(stat -c %s "${out}")"
    record_steps "${scale}" "large" A 1 "$(agent_steps "${out}.manifest.json")"
    log "scale ${scale} plain dump: ${seconds} s, peak RSS ${peak} KiB"
    check_dump "${out}" "${CLUSTER[ROWS_BEFORE]}" "${CLUSTER[ROWS_AFTER]}" >/dev/null || die "the scale-${scale} dump is wrong"
    rm -f -- "${out}" "${out}.manifest.json"
    prepare_side empty "${dir}/agent-scratch"
    STREAM_FILE="${dir}/out/stream.sql.zst"
    read -r seconds peak < <(agent_dump "${dir}/agent-scratch" - "${CLUSTER[SCRATCH_PORT]}" "${dir}/agent-dump.log" --compress zstd)
    record "${scale}" "large-zstd" A 1 "${seconds}"
    record "${scale}" "large-peak-rss-kib" A 2 "${peak}"
    log "scale ${scale} zstd stream: ${seconds} s, peak RSS ${peak} KiB"
    rm -f -- "${STREAM_FILE}"
}

# Builds a cluster in DIR with make-cluster.sh's further arguments, and loads its env.
build_cluster() {
    local scale="$1" dir="$2"
    shift 2
    if [[ -d "${dir}" ]]; then
        bash "${AGENT_REPO_ROOT}/tests/support/stop-cluster.sh" --dir "${dir}" --remove >/dev/null 2>&1 || true
        [[ ! -e "${dir}" ]] || die "${dir} is left from an earlier run and is not a cluster directory; remove it"
    fi
    CURRENT_DIR="${dir}"
    local start
    start="$(now_ns)"
    bash "${AGENT_REPO_ROOT}/tests/support/make-cluster.sh" --dir "${dir}" "$@"
    record "${scale}" "cluster-build$([[ "${dir}" == */scale-* ]] || printf -- '-%s' "${dir##*/}")" - 1 "$(seconds_since "${start}")"
    read_cluster_env "${dir}/cluster.env"
}

remove_cluster() {
    local dir="$1"
    if [[ "${KEEP}" == "1" ]]; then
        bash "${AGENT_REPO_ROOT}/tests/support/stop-cluster.sh" --dir "${dir}" >/dev/null
    else
        bash "${AGENT_REPO_ROOT}/tests/support/stop-cluster.sh" --dir "${dir}" --remove >/dev/null
    fi
    CURRENT_DIR=""
}

# --- backups --------------------------------------------------------------------------------
pgbench_traffic() {
    "${BINDIR}/pgbench" -h "${CLUSTER[SOCKET_DIR]}" -p "${CLUSTER[PORT]}" -U postgres -n -c 2 -T 3 api >/dev/null 2>&1 \
        || die "pgbench traffic failed"
}

# The agent runs these backups at niceness 0, as pgbackrest runs on the other side: the
# comparison is of what the agent adds, not of its scheduling policy (pgbackrest.backup_nice,
# 10 by default, which the /metrics measurement below keeps).
bench_backups() {
    local scale="$1" type="$2" dir="$3"
    local round start seconds config="${dir}/agent-backup.yaml"
    sed 's/^pgbackrest:$/pgbackrest:\n  backup_nice: 0/' "${CLUSTER[AGENT_CONFIG]}" >"${config}"
    grep -q '^  backup_nice: 0$' "${config}" || die "could not set backup_nice in ${config}"
    for ((round = 1; round <= BACKUP_ROUNDS; round++)); do
        pgbench_traffic
        sync
        start="$(now_ns)"
        "${AGENT_BIN}" backup --config "${config}" --type "${type}" --log-format json \
            >"${dir}/agent-backup.last" 2>&1 || die "agent backup --type ${type} failed; log: ${dir}/agent-backup.last"
        seconds="$(seconds_since "${start}")"
        cat -- "${dir}/agent-backup.last" >>"${dir}/agent-backup.log"
        record "${scale}" "backup-${type}" A "${round}" "${seconds}"
        # The pgbackrest run inside it (its "backup" step): the rest is what the agent adds,
        # measured without the spread between two separate backups.
        inside="$(grep -o 'backup: done in [0-9.]* s' "${dir}/agent-backup.last" | tail -n 1 | awk '{ print $4 }')"
        [[ -n "${inside}" ]] || die "no 'backup: done in' line in ${dir}/agent-backup.last"
        record "${scale}" "backup-${type}-inside" A "${round}" "${inside}"
        log "scale ${scale} backup-${type} round ${round}: agent ${seconds} s (its pgbackrest ${inside} s)"

        pgbench_traffic
        sync
        start="$(now_ns)"
        pgbackrest --config="${CLUSTER[PGBACKREST_CONFIG]}" --stanza="${CLUSTER[STANZA]}" backup --type="${type}" \
            >>"${dir}/pgbackrest-backup.log" 2>&1 || die "pgbackrest backup failed; log: ${dir}/pgbackrest-backup.log"
        seconds="$(seconds_since "${start}")"
        record "${scale}" "backup-${type}" B "${round}" "${seconds}"
        log "scale ${scale} backup-${type} round ${round}: pgbackrest ${seconds} s"
    done
}

# --- agent run: idle footprint and /metrics under load ---------------------------------------
proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
proc_child_ticks() { awk '{ print $16 + $17 }' "/proc/$1/stat"; }
proc_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

bench_daemon() {
    local scale="$1" dir="$2" measure_idle_cpu="$3"
    local http_port config="${dir}/agent-run.yaml"
    http_port="$(free_port)"
    cp -- "${CLUSTER[AGENT_CONFIG]}" "${config}"
    cat >>"${config}" <<EOF
state_dir: ${dir}/agent-state
control:
  socket: ${dir}/agent.sock
http:
  listen: 127.0.0.1:${http_port}
log:
  format: json
EOF
    "${AGENT_BIN}" run --config "${config}" >>"${dir}/agent-run.log" 2>&1 &
    AGENT_RUN_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        curl -fsS "http://127.0.0.1:${http_port}/readyz" >/dev/null 2>&1 && break
        kill -0 "${AGENT_RUN_PID}" 2>/dev/null || die "agent run exited; log: ${dir}/agent-run.log"
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:${http_port}/metrics" >/dev/null || die "agent run did not become ready"

    sleep 5
    record "${scale}" "idle-rss-kib" A 1 "$(proc_rss_kib "${AGENT_RUN_PID}")"
    if [[ "${measure_idle_cpu}" == "1" ]]; then
        local ticks0 child0 start
        ticks0="$(proc_cpu_ticks "${AGENT_RUN_PID}")"
        child0="$(proc_child_ticks "${AGENT_RUN_PID}")"
        start="$(now_ns)"
        sleep 60
        local hz
        hz="$(getconf CLK_TCK)"
        record "${scale}" "idle-cpu-percent" A 1 "$(awk -v t0="${ticks0}" -v t1="$(proc_cpu_ticks "${AGENT_RUN_PID}")" \
            -v hz="${hz}" -v s="$(seconds_since "${start}")" 'BEGIN { printf "%.3f", 100 * (t1 - t0) / hz / s }')"
        record "${scale}" "idle-children-cpu-percent" A 1 "$(awk -v t0="${child0}" -v t1="$(proc_child_ticks "${AGENT_RUN_PID}")" \
            -v hz="${hz}" -v s="$(seconds_since "${start}")" 'BEGIN { printf "%.3f", 100 * (t1 - t0) / hz / s }')"
        record "${scale}" "idle-rss-after-minute-kib" A 1 "$(proc_rss_kib "${AGENT_RUN_PID}")"
    fi

    # /metrics during a running backup: start a full backup through the agent, wait until
    # pgBackRest holds its lock, then load /metrics for as long as the backup is expected to
    # last (the median full backup of this scale), and check it was still running after.
    local full_seconds duration
    full_seconds="$(awk -F'\t' -v s="${scale}" '$1 == s && $2 == "backup-full" && $3 == "B" { print $5 }' "${RAW}" | sort -n \
        | awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 10) }')"
    duration="$(awk -v f="${full_seconds}" 'BEGIN { d = int(f * 0.6); print (d < 2 ? 2 : (d > 20 ? 20 : d)) }')"
    "${AGENT_BIN}" backup --config "${config}" --type full --log-format json >>"${dir}/agent-run.log" 2>&1 \
        || die "could not queue a backup in the running agent"
    for ((i = 0; i < 200; i++)); do
        pgrep -u "$(id -u)" -f "pgbackrest .*--type=full backup" >/dev/null && break
        sleep 0.05
    done
    # The niceness the agent gave the backup (pgbackrest.backup_nice), for the report.
    record "${scale}" "backup-nice" A 1 "$(ps -o ni= -p "$(pgrep -u "$(id -u)" -f "pgbackrest .*--type=full backup" | head -n 1)" | tr -d ' ')"
    local wrk_out="${dir}/wrk.txt"
    wrk -t 2 -c 50 -d "${duration}s" --latency "http://127.0.0.1:${http_port}/metrics" >"${wrk_out}" 2>&1 \
        || die "wrk failed: $(cat "${wrk_out}")"
    local during="yes"
    pgrep -u "$(id -u)" -f "pgbackrest .*--type=full backup" >/dev/null || during="no"
    record "${scale}" "busy-rss-kib" A 1 "$(proc_rss_kib "${AGENT_RUN_PID}")"
    # wrk prints "50%  1.23ms" lines under --latency; keep milliseconds.
    local quantile
    for quantile in 50 99; do
        record "${scale}" "metrics-p${quantile}-ms" A 1 "$(awk -v q="${quantile}%" '$1 == q {
            v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
            f = (unit == "us") ? 0.001 : (unit == "s") ? 1000 : (unit == "m") ? 60000 : 1
            printf "%.3f", v * f }' "${wrk_out}")" "backup running at the end: ${during}"
    done
    record "${scale}" "metrics-requests-per-second" A 1 "$(awk '$1 == "Requests/sec:" { print $2 }' "${wrk_out}")"
    record "${scale}" "metrics-errors" A 1 "$(awk '/Non-2xx|Socket errors/ { n++ } END { print n + 0 }' "${wrk_out}")"
    log "scale ${scale}: /metrics under load: $(grep -E '^ +(50|99)%' "${wrk_out}" | tr -s ' ' | tr '\n' ' ')(backup still running at the end: ${during})"
    for ((i = 0; i < 6000; i++)); do
        pgrep -u "$(id -u)" -f "pgbackrest .*--type=full backup" >/dev/null || break
        sleep 0.1
    done

    kill -TERM "${AGENT_RUN_PID}"
    wait "${AGENT_RUN_PID}" || true
    AGENT_RUN_PID=""

    # What a per-scrape exporter pays on every scrape.
    local round start
    for ((round = 1; round <= 20; round++)); do
        start="$(now_ns)"
        pgbackrest --config="${CLUSTER[PGBACKREST_CONFIG]}" --stanza="${CLUSTER[STANZA]}" info --output=json >/dev/null
        record "${scale}" "pgbackrest-info" B "${round}" "$(seconds_since "${start}")"
    done
}

# --- main ------------------------------------------------------------------------------------
log "work directory ${WORK}; scales ${SCALES}; ${ROUNDS} A/B pairs each"
last_scale="${SCALES##* }"
for scale in ${SCALES}; do
    dir="${WORK}/scale-${scale}"
    log "scale ${scale}: building the cluster"
    build_cluster "${scale}" "${dir}" --pgbench-scale "${scale}" --amcheck
    record "${scale}" "database-bytes" - 1 "$("${BINDIR}/psql" -X -At -h "${CLUSTER[SOCKET_DIR]}" -p "${CLUSTER[PORT]}" -U postgres \
        -d api -c "SELECT pg_database_size('api')")"

    bench_dumps "${scale}" empty "${dir}"
    bench_dumps "${scale}" delta "${dir}"
    bench_drills "${scale}" "${dir}"
    rm -rf -- "${dir}/agent-scratch" "${dir}/runbook-scratch"
    bench_backups "${scale}" incr "${dir}"
    bench_backups "${scale}" full "${dir}"
    bench_daemon "${scale}" "${dir}" "$([[ "${scale}" == "${last_scale}" ]] && echo 1 || echo 0)"
    remove_cluster "${dir}"
done

if ((FOCUSED_ROUNDS > 0)); then
    dir="${WORK}/focused-${FOCUSED_SCALE}"
    log "three databases at scale ${FOCUSED_SCALE}: building the cluster"
    build_cluster "${FOCUSED_SCALE}" "${dir}" --pgbench-scale "${FOCUSED_SCALE}" --pgbench-clones "shop crm"
    record "${FOCUSED_SCALE}" "focused-database-bytes" - 1 "$("${BINDIR}/psql" -X -At -h "${CLUSTER[SOCKET_DIR]}" \
        -p "${CLUSTER[PORT]}" -U postgres -d postgres -c "SELECT sum(pg_database_size(datname)) FROM pg_database")"
    bench_focused "${FOCUSED_SCALE}" "${dir}"
    remove_cluster "${dir}"
fi

if ((LARGE_SCALE > 0)); then
    # Live cluster, repository, scratch copy and dump: about 40 MB per unit of scale.
    free_mb="$(df -P -m -- "${WORK}" | awk 'NR == 2 { print $4 }')"
    if ((free_mb < LARGE_SCALE * 40)); then
        log "scale ${LARGE_SCALE}: skipped, ${free_mb} MB free under ${WORK}, about $((LARGE_SCALE * 40)) MB needed"
        record "${LARGE_SCALE}" "large-skipped" - 1 "${free_mb}" "MB free, $((LARGE_SCALE * 40)) needed"
    else
        dir="${WORK}/large-${LARGE_SCALE}"
        log "scale ${LARGE_SCALE}: building the cluster"
        build_cluster "${LARGE_SCALE}" "${dir}" --pgbench-scale "${LARGE_SCALE}"
        record "${LARGE_SCALE}" "large-database-bytes" - 1 "$("${BINDIR}/psql" -X -At -h "${CLUSTER[SOCKET_DIR]}" \
            -p "${CLUSTER[PORT]}" -U postgres -d api -c "SELECT pg_database_size('api')")"
        bench_large "${LARGE_SCALE}" "${dir}"
        remove_cluster "${dir}"
    fi
fi

# Written whole to WORK first, then copied over the files (whose directory may not be ours).
python3 "${HERE}/report.py" --raw "${RAW}" --agent "${AGENT_BIN}" \
    --command "tests/bench/run.sh --scales \"${SCALES}\" --rounds ${ROUNDS} --backup-rounds ${BACKUP_ROUNDS} --drill-rounds ${DRILL_ROUNDS} --focused-rounds ${FOCUSED_ROUNDS} --focused-scale ${FOCUSED_SCALE} --large-scale ${LARGE_SCALE}" >"${WORK}/RESULTS.md"
cat -- "${WORK}/RESULTS.md" >"${RESULTS}"
cat -- "${RAW}" >"${RESULTS%.md}.raw.tsv"
log "report: ${RESULTS} (raw samples: ${RAW})"
