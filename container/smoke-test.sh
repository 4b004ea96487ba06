#!/usr/bin/env bash
# Smoke test of the agent's container image, offline, as root.
#
#   container/smoke-test.sh [--image-archive PATH] [--keep-logs DIR]
#
#   --image-archive PATH  test this OCI archive (from build-image.sh --output-archive) instead
#                         of building the image (build: container/build-image.sh, same storage)
#   --keep-logs DIR       copy the build log and the in-container logs (agent, postgres,
#                         pgBackRest) to DIR, on success and on failure
#
# In one long-running container (podman, runc, --network=none, the image's uid 26):
#   1. a throwaway PostgreSQL 15 cluster: initdb, pgBackRest repo in /pgdata/repo, stanza,
#      archive_command, tablespace ts1, a full backup, events ids 1..100 'before', a recorded
#      TARGET, ids 101..200 'after', an incremental backup (as tests/support/make-cluster.sh);
#   2. `agent run` with http.listen 127.0.0.1:9451 and its control socket in state_dir;
#      /healthz, /readyz and /metrics must answer from inside the container;
#   3. `agent dump --target TARGET --database api` (through the running agent's control socket)
#      must hold ids 1..100 and none of 101..200 (tests/support/check-dump.sh).
# Prints one "SMOKE TEST: PASS|FAIL" line; exits non-zero on failure. Always removes the
# container, the images and the storage root.
set -euo pipefail

PROG="smoke-test"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${HERE}/.." && pwd -P)"
# shellcheck source=container/build-image.sh
AGENT_BUILD_IMAGE_LIB=1 source "${HERE}/build-image.sh"

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${PROG}" -1 "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG}" "$*" >&2; exit 1; }

IMAGE_ARCHIVE=""
KEEP_LOGS=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --image-archive) [[ $# -ge 2 ]] || die "--image-archive needs a value"; IMAGE_ARCHIVE="$2"; shift 2 ;;
        --keep-logs) [[ $# -ge 2 ]] || die "--keep-logs needs a value"; KEEP_LOGS="$2"; shift 2 ;;
        -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[[ "${EUID}" -eq 0 ]] || die "run as root"
if [[ -n "${IMAGE_ARCHIVE}" ]]; then
    IMAGE_ARCHIVE="$(realpath -e -- "${IMAGE_ARCHIVE}")" || die "--image-archive: no such file"
fi
if [[ -n "${KEEP_LOGS}" ]]; then
    mkdir -p -- "${KEEP_LOGS}" && KEEP_LOGS="$(realpath -e -- "${KEEP_LOGS}")"
fi

T_START=${SECONDS}
STEP="setup"
WORK="$(mktemp -d /var/tmp/agent-smoke.XXXXXX)"
STORAGE="${WORK}/storage"
CONTAINER="agent-smoke-$$"
CONTAINER_STARTED=0
declare -a TIMINGS=()

collect_logs() {
    local dest="$1" f
    ((CONTAINER_STARTED)) || return 0
    for f in agent.log postgres.log restore.sql.manifest.json; do
        podman_s exec "${CONTAINER}" cat "/pgdata/${f}" >"${dest}/${f}" 2>/dev/null || rm -f -- "${dest}/${f}"
    done
    podman_s exec "${CONTAINER}" bash -c 'cat /pgdata/log/*.log' >"${dest}/pgbackrest.log" 2>/dev/null || true
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if ((rc != 0)) && ((CONTAINER_STARTED)); then
        printf '%s: --- last lines of the agent log ---\n' "${PROG}" >&2
        podman_s exec "${CONTAINER}" tail -n 25 /pgdata/agent.log >&2 2>/dev/null
        printf '%s: --- last lines of the postgres log ---\n' "${PROG}" >&2
        podman_s exec "${CONTAINER}" tail -n 10 /pgdata/postgres.log >&2 2>/dev/null
    fi
    if [[ -n "${KEEP_LOGS}" ]]; then
        collect_logs "${KEEP_LOGS}"
        [[ -f "${WORK}/build.log" ]] && cp -- "${WORK}/build.log" "${KEEP_LOGS}/build.log"
    fi
    ctr_storage_remove "${STORAGE}"
    rm -rf --one-file-system -- "${WORK}"
    local total=$((SECONDS - T_START))
    if ((rc == 0)); then
        printf 'SMOKE TEST: PASS in %s s (%s)\n' "${total}" "${TIMINGS[*]}"
    else
        printf 'SMOKE TEST: FAIL at step "%s" (exit %s) after %s s (%s)\n' "${STEP}" "${rc}" "${total}" "${TIMINGS[*]}"
    fi
    exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME: starts timing a step; the previous one is recorded.
STEP_T0=${SECONDS}
step() {
    if [[ "${STEP}" != "setup" ]]; then
        TIMINGS+=("${STEP} $((SECONDS - STEP_T0))s")
    fi
    STEP="$1"
    STEP_T0=${SECONDS}
    log "== ${STEP}"
}

# in_ctr ARGS...: run in the container as uid 26 (PostgreSQL refuses root).
in_ctr() { podman_s exec --user 26 "${CONTAINER}" "$@"; }

install_container_tools
ctr_storage_init "${STORAGE}"

# --- image --------------------------------------------------------------------------------------
if [[ -n "${IMAGE_ARCHIVE}" ]]; then
    step "load-image"
    IMAGE="$(podman_s pull --quiet "oci-archive:${IMAGE_ARCHIVE}")" || die "cannot load ${IMAGE_ARCHIVE}"
else
    step "build-image"
    IMAGE="localhost/agent:latest"
    AGENT_BUILD_LOG="${WORK}/build.log" bash "${HERE}/build-image.sh" --storage-root "${STORAGE}" --tag "${IMAGE}" >&2
    ctr_storage_init "${STORAGE}"   # the child's exports do not reach us; same values anyway
fi
size_bytes="$(podman_s image inspect --format '{{.Size}}' "${IMAGE}")"
SIZE_MB="$(awk -v b="${size_bytes}" 'BEGIN { printf "%.0f", b / 1000000 }')"
log "image ${IMAGE}: ${SIZE_MB} MB"

RUN_OPTS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --network=none)

step "image-basics"
# The entrypoint is the agent (each `podman run` copies the image on vfs: keep them few).
out="$(podman_s run --rm "${RUN_OPTS[@]}" "${IMAGE}" --version)"
log "agent --version (entrypoint): ${out}"

step "start-container"
podman_s run -d --name "${CONTAINER}" "${RUN_OPTS[@]}" --entrypoint sleep "${IMAGE}" infinity >/dev/null
CONTAINER_STARTED=1
user_line="$(podman_s exec "${CONTAINER}" id)"
log "image user: ${user_line}"
[[ "${user_line}" == uid=26\(*gid=0\(* ]] || die "image does not run as uid 26, gid 0: ${user_line}"
podman_s exec "${CONTAINER}" agent config check /etc/agent/agent.yaml >&2
podman_s exec "${CONTAINER}" bash -c \
    'command -v pg_dump >/dev/null && command -v postgres >/dev/null && command -v pgbackrest >/dev/null && test -w /pgdata && test -w /tmp' \
    || die "image lacks postgres/pg_dump/pgbackrest on PATH or a writable /pgdata, /tmp"

step "make-cluster"
# Progress on stderr; the last stdout line is TARGET=...
cluster_out="$(timeout 600 "${PODMAN_CMD[@]}" exec -i --user 26 "${CONTAINER}" bash -s <<'INNER'
set -euo pipefail
log() { printf '[in-container] %s\n' "$*" >&2; }
D=/pgdata
STANZA=db
PORT=5432
PGBR=(pgbackrest --config="${D}/pgbackrest.conf" --stanza="${STANZA}")
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h /tmp -p "${PORT}" -U postgres -d "$@"; }

mkdir -p "${D}/repo" "${D}/log" "${D}/lock" "${D}/spool"
mkdir -m 0700 "${D}/ts1"
log "initdb (as $(id -un), uid $(id -u))"
initdb -D "${D}/pg15" -U postgres --auth=trust -E UTF8 --locale=C --no-instructions >/dev/null
cat >>"${D}/pg15/postgresql.conf" <<EOF
port = ${PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '/tmp'
wal_level = replica
archive_mode = on
archive_command = 'pgbackrest --config=${D}/pgbackrest.conf --stanza=${STANZA} archive-push %p'
timezone = 'America/Vancouver'
max_wal_senders = 5
EOF
cat >"${D}/pgbackrest.conf" <<EOF
[global]
repo1-path=${D}/repo
repo1-retention-full=10
log-path=${D}/log
lock-path=${D}/lock
spool-path=${D}/spool
start-fast=y
compress-type=lz4
log-level-console=warn
log-level-file=detail
archive-async=n

[${STANZA}]
pg1-path=${D}/pg15
pg1-port=${PORT}
pg1-socket-path=/tmp
pg1-user=postgres
EOF
log "starting PostgreSQL"
pg_ctl -D "${D}/pg15" -l "${D}/postgres.log" -w -t 120 start >/dev/null
log "stanza-create, check"
"${PGBR[@]}" stanza-create
"${PGBR[@]}" check
sql postgres -c "CREATE TABLESPACE ts1 LOCATION '${D}/ts1'"
log "full backup"
"${PGBR[@]}" --type=full backup
sql postgres -c "CREATE DATABASE api"
sql api -c "CREATE TABLE events(id int primary key, phase text not null, created_at timestamptz not null default clock_timestamp()) TABLESPACE ts1"
insert_rows() {
    local first="$1" last="$2" phase="$3" lo hi
    for ((lo = first; lo <= last; lo += 10)); do
        hi=$((lo + 9 > last ? last : lo + 9))
        printf "INSERT INTO events(id, phase) SELECT g, '%s' FROM generate_series(%d, %d) g;\n" "${phase}" "${lo}" "${hi}"
    done | sql api
}
# JIT forced on: the image may leave out the LLVM provider; queries must still work.
[[ "$(sql api -c "SET jit = on; SET jit_above_cost = 0; SELECT count(*) FROM events")" == 0 ]]
log "rows 1..100 (before)"
insert_rows 1 100 before
sleep 1.2
TARGET="$(sql postgres -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
log "TARGET=${TARGET}"
sleep 1.2
log "rows 101..200 (after)"
insert_rows 101 200 after
AFTER_WAL="$(sql postgres -c "SELECT pg_walfile_name(pg_current_wal_lsn())")"
log "incremental backup"
"${PGBR[@]}" --type=incr backup
"${PGBR[@]}" check
archived=""
for ((i = 0; i < 120; i++)); do
    archived="$(sql postgres -c "SELECT coalesce(substr(last_archived_wal, 1, 24), '') FROM pg_stat_archiver")"
    [[ -n "${archived}" && ! "${archived}" < "${AFTER_WAL}" ]] && break
    sleep 0.5
done
[[ -n "${archived}" && ! "${archived}" < "${AFTER_WAL}" ]] || { log "WAL ${AFTER_WAL} not archived (last: ${archived})"; exit 1; }

cat >"${D}/agent.yaml" <<EOF
stanza: ${STANZA}
state_dir: ${D}/agent-state
pgbackrest:
  config: ${D}/pgbackrest.conf
  process_max: 2
postgres:
  bindir: /usr/lib/postgresql/15/bin
  data: ${D}/pg15
  host: /tmp
  port: ${PORT}
  user: postgres
restore:
  scratch: ${D}/restore
  port: 5533
dump:
  database: api
  output: ${D}/restore.sql
manual:
  annotations_file: ""
http:
  listen: 127.0.0.1:9451
metrics:
  refresh_seconds: 10
EOF
agent config check "${D}/agent.yaml" >&2
printf 'TARGET=%s\n' "${TARGET}"
INNER
)" || die "building the cluster in the container failed"
TARGET="$(printf '%s\n' "${cluster_out}" | sed -n 's/^TARGET=//p' | tail -n 1)"
[[ "${TARGET}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8}\.[0-9]{6}\+00$ ]] || die "no TARGET from the cluster setup (got '${TARGET}')"
log "TARGET=${TARGET}"

# --- agent run ----------------------------------------------------------------------------------
step "agent-run"
podman_s exec -d --user 26 "${CONTAINER}" bash -c \
    'exec agent run --config /pgdata/agent.yaml >>/pgdata/agent.log 2>&1' >/dev/null

# http_get PATH: prints "STATUS\n\nBODY" of GET http://127.0.0.1:9451PATH, from inside the
# container (bash /dev/tcp: the image has no curl or wget).
http_get() {
    # shellcheck disable=SC2016  # expanded by the inner bash
    podman_s exec --user 26 "${CONTAINER}" timeout 15 bash -c '
        exec 3<>/dev/tcp/127.0.0.1/9451 || exit 7
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$1" >&3
        tr -d "\r" <&3' http_get "$1"
}
# wait_for PATH WANT_STATUS SECONDS: polls until the status line has WANT_STATUS.
wait_for() {
    local path="$1" want="$2" secs="$3" resp="" i
    for ((i = 0; i < secs * 2; i++)); do
        resp="$(http_get "${path}" 2>/dev/null || true)"
        if [[ "$(head -n 1 <<<"${resp}")" == "HTTP/1."?" ${want}"* ]]; then
            HTTP_RESPONSE="${resp}"
            return 0
        fi
        sleep 0.5
    done
    printf '%s: %s did not answer %s within %s s; last response:\n%s\n' "${PROG}" "${path}" "${want}" "${secs}" "${resp:-<none>}" >&2
    return 1
}
HTTP_RESPONSE=""
wait_for /healthz 200 30 || die "/healthz"
log "/healthz: $(head -n 1 <<<"${HTTP_RESPONSE}")"
wait_for /readyz 200 60 || die "/readyz"
log "/readyz: $(head -n 1 <<<"${HTTP_RESPONSE}")"
wait_for /metrics 200 10 || die "/metrics"
metrics="${HTTP_RESPONSE}"
grep -q '^agent_build_info{' <<<"${metrics}" || die "/metrics has no agent_build_info"
grep -Eq '^agent_repository_backups\{[^}]*type="full"[^}]*\} 1$' <<<"${metrics}" \
    || { grep '^agent_repository_backups' <<<"${metrics}" >&2 || true; die "/metrics does not count 1 full backup"; }
grep -Eq '^agent_repository_backups\{[^}]*type="incr"[^}]*\} 1$' <<<"${metrics}" \
    || die "/metrics does not count 1 incremental backup"
log "/metrics: $(grep -c '^agent_' <<<"${metrics}") agent_ samples, 1 full + 1 incr backup"
in_ctr agent status --config /pgdata/agent.yaml >&2 || die "agent status failed"

# --- agent dump ---------------------------------------------------------------------------------
step "agent-dump"
timeout 600 "${PODMAN_CMD[@]}" exec --user 26 "${CONTAINER}" agent dump --config /pgdata/agent.yaml \
    --target "${TARGET}" --database api --output /pgdata/restore.sql >&2 \
    || die "agent dump failed"
in_ctr cat /pgdata/restore.sql >"${WORK}/restore.sql"
in_ctr test -s /pgdata/restore.sql.manifest.json || die "no dump manifest"
log "dump: $(wc -c <"${WORK}/restore.sql") bytes"

step "check-dump"
bash "${REPO_ROOT}/tests/support/check-dump.sh" "${WORK}/restore.sql" 100 100 >&2 || die "dump content is wrong"
metrics="$(http_get /metrics)"
grep -Eq '^agent_dump_last_completion_timestamp_seconds\{[^}]*\} [0-9]' <<<"${metrics}" \
    || log "note: agent_dump_last_completion_timestamp_seconds not exported (dump ran outside agent run?)"
step "done"
log "image ${IMAGE}: ${SIZE_MB} MB"
