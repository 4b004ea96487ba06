#!/usr/bin/env bash
# Smoke test of the agent's container image, offline, as root: the pod's topology, with the
# sidecar inside the manifest's own CPU and memory limits.
#
#   container/smoke-test.sh [--image-archive PATH] [--keep-logs DIR] [--pgbackrest-version V]
#
#   --image-archive PATH  test this OCI archive (from build-image.sh --output-archive) instead
#                         of building the image (build: container/build-image.sh, same storage)
#   --keep-logs DIR       copy the build log, the agent's log (podman logs), the postgres and
#                         pgBackRest logs, the dump's manifest and the measurements to DIR, on
#                         success and on failure
#   --pgbackrest-version V  the pgBackRest the image must carry (default
#                         $AGENT_PGBACKREST_VERSION, else 2.56.0); passed to build-image.sh,
#                         which builds it from source (cached per version) into the image
#
# Two containers of the image (podman, runc, cgroupfs, --network=none: each its own loopback),
# sharing two host directories as the pod's containers share volumes: /pgdata (uid 26, gid 0)
# and PostgreSQL's socket directory /tmp/postgres (PGO's).
#   "database" (no limits): the live PostgreSQL 15 cluster. First most of api.big, rows of 224
#      characters, 4 times the sidecar's memory limit as plain dump text in all (loaded under
#      wal_level=minimal: no WAL); then archive_command with pgBackRest (repo /pgdata/repo),
#      stanza, tablespace ts1, a full backup, the rest of api.big (about 190 MiB of WAL for the
#      copy to replay, more than its shared_buffers), events ids 1..100 'before', a recorded
#      TARGET, ids 101..200 'after', an incremental backup (the events as
#      tests/support/make-cluster.sh).
#   "agent" (the sidecar): `agent run` as the image's entrypoint, with --cpus, --memory and
#      --memory-swap (no swap) converted from resources.limits of the agent container in
#      container/kustomize/components/crunchy-sidecar/agent-sidecar.yaml, the only source of
#      the limits (the prod overlay's are printed, not used). http.listen 127.0.0.1:9451;
#      /healthz, /readyz and /metrics must answer from inside the container; then
#      `agent dump --target TARGET --database api` through the running agent's control socket:
#      it restores the copy into /pgdata/restore and dumps it, all inside the sidecar's cgroup.
# Checks: `pgbackrest version` in the image is V (every pgBackRest command here runs with it);
# the dump holds events ids 1..100 and none of 101..200 (tests/support/check-dump.sh)
# and every row of api.big; the sidecar's cgroup saw no OOM kill; the dump is at least 3 times
# the memory limit. Prints the measurements (peak memory of the cgroup, with and without page
# cache, OOM kills, CPU throttling, dump size and duration) and one "SMOKE TEST: PASS|FAIL"
# line; exits non-zero on failure. Always removes the containers, the images, the storage root
# and the shared directories.
set -euo pipefail

PROG="smoke-test"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "${HERE}/.." && pwd -P)"
# shellcheck source=container/build-image.sh
AGENT_BUILD_IMAGE_LIB=1 source "${HERE}/build-image.sh"

# The limits: the sidecar as the component adds it to the PostgresCluster (the test runs under
# these); the prod overlay's raise them (printed for reference).
LIMITS_MANIFEST="${REPO_ROOT}/container/kustomize/components/crunchy-sidecar/agent-sidecar.yaml"
PROD_LIMITS_MANIFEST="${REPO_ROOT}/container/kustomize/overlays/prod/agent-resources.yaml"
# api.big: rows of id bigint and a payload of this many characters; as many rows as make
# DUMP_FACTOR times the memory limit of dump text; the dump must be at least MIN_DUMP_FACTOR.
PAYLOAD_CHARS=224
DUMP_FACTOR=4
MIN_DUMP_FACTOR=3
# The last REPLAY_ROWS of them are inserted after the full backup, before the target: about
# 190 MiB of heap and of WAL, more than the scratch server's shared_buffers (restore.shared_buffers,
# 128MB by default), so that the copy's recovery fills them as a real replay would (a dump's own
# sequential scans only go through a small ring of buffers).
REPLAY_ROWS=750000
# Debian's own interpreter, with python3-yaml (not whatever python3 comes first in PATH).
PYTHON=/usr/bin/python3

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${PROG}" -1 "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG}" "$*" >&2; exit 1; }

IMAGE_ARCHIVE=""
KEEP_LOGS=""
PGBR_VERSION="${AGENT_PGBACKREST_VERSION:-2.56.0}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --image-archive) [[ $# -ge 2 ]] || die "--image-archive needs a value"; IMAGE_ARCHIVE="$2"; shift 2 ;;
        --keep-logs) [[ $# -ge 2 ]] || die "--keep-logs needs a value"; KEEP_LOGS="$2"; shift 2 ;;
        --pgbackrest-version) [[ $# -ge 2 ]] || die "--pgbackrest-version needs a value"; PGBR_VERSION="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 0 ;;
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
# conmon writes a file "oom" into its working directory when the container's cgroup has an OOM
# kill: here, not in the caller's (every path below is absolute).
cd -- "${WORK}"
STORAGE="${WORK}/storage"
PGDATA_DIR="${WORK}/pgdata"       # /pgdata in both containers
SOCKET_DIR="${WORK}/pgsocket"     # /tmp/postgres in both containers
MEASURE_FILE="${WORK}/measurements.txt"
DB_CONTAINER="agent-smoke-db-$$"
AGENT_CONTAINER="agent-smoke-agent-$$"
AGENT_STARTED=0
SAMPLER_PID=""
SUMMARY=""
declare -a TIMINGS=()

collect_logs() {
    local dest="$1" f
    for f in postgres.log restore.sql.manifest.json agent.yaml pgbackrest.conf; do
        if [[ -f "${PGDATA_DIR}/${f}" ]]; then cp -- "${PGDATA_DIR}/${f}" "${dest}/${f}"; else rm -f -- "${dest}/${f}"; fi
    done
    cat -- "${PGDATA_DIR}"/log/*.log >"${dest}/pgbackrest.log" 2>/dev/null || rm -f -- "${dest}/pgbackrest.log"
    if ((AGENT_STARTED)); then
        podman_s logs "${AGENT_CONTAINER}" >"${dest}/agent.log" 2>&1 || true
    fi
    if [[ -f "${MEASURE_FILE}" ]]; then cp -- "${MEASURE_FILE}" "${dest}/measurements.txt"; fi
    [[ -f "${WORK}/build.log" ]] && cp -- "${WORK}/build.log" "${dest}/build.log"
    return 0
}

stop_sampler() {
    if [[ -n "${SAMPLER_PID}" ]]; then
        kill "${SAMPLER_PID}" 2>/dev/null || true
        wait "${SAMPLER_PID}" 2>/dev/null || true
        SAMPLER_PID=""
    fi
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_sampler
    if ((rc != 0)); then
        if ((AGENT_STARTED)); then
            printf '%s: --- last lines of the agent log ---\n' "${PROG}" >&2
            podman_s logs --tail 25 "${AGENT_CONTAINER}" >&2 2>&1
        fi
        if [[ -f "${PGDATA_DIR}/postgres.log" ]]; then
            printf '%s: --- last lines of the postgres log ---\n' "${PROG}" >&2
            tail -n 10 -- "${PGDATA_DIR}/postgres.log" >&2
        fi
    fi
    [[ -n "${KEEP_LOGS}" ]] && collect_logs "${KEEP_LOGS}"
    # Removes both containers (their processes, the live and the scratch server too) first.
    ctr_storage_remove "${STORAGE}"
    cd /
    rm -rf --one-file-system -- "${WORK}"
    local total=$((SECONDS - T_START))
    if ((rc == 0)); then
        printf 'SMOKE TEST: PASS in %s s (%s)%s\n' "${total}" "${TIMINGS[*]}" "${SUMMARY:+; ${SUMMARY}}"
    else
        printf 'SMOKE TEST: FAIL at step "%s" (exit %s) after %s s (%s)%s\n' "${STEP}" "${rc}" "${total}" \
            "${TIMINGS[*]}" "${SUMMARY:+; ${SUMMARY}}"
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

# measure LINE...: prints the lines and keeps them for --keep-logs.
measure() {
    local line
    for line in "$@"; do
        log "${line}"
        printf '%s\n' "${line}" >>"${MEASURE_FILE}"
    done
}

# install_smoke_tools: Debian's python3 and python3-yaml (the manifest's limits), with apt-get.
install_smoke_tools() {
    local missing=() pkg
    for pkg in python3 python3-yaml; do
        [[ "$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)" == installed ]] \
            || missing+=("${pkg}")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >/dev/null || die "apt-get install ${missing[*]} failed"
}

# agent_limits FILE: resources.limits of the container named agent in FILE (a JSON patch that adds
# containers, one that replaces .../resources, or any manifest with a containers list), as
# "CPU_CORES MEMORY_BYTES CPU_TEXT MEMORY_TEXT", e.g. "0.5 268435456 500m 256Mi". Kubernetes
# quantities: cpu 500m, 0.5, 2; memory 256Mi, 1Gi, 268435456, 1e9, 512M.
agent_limits() {
    "${PYTHON}" - "$1" <<'PY'
import re
import sys
from decimal import Decimal, ROUND_CEILING

import yaml

SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}
QUANTITY = re.compile(r"\+?((?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]))?")


def quantity(value, what):
    m = QUANTITY.fullmatch(str(value).strip())
    if not m:
        sys.exit(f"{path}: {what} {value!r} is not a Kubernetes quantity")
    number = Decimal(m.group(1))
    if m.group(2):
        return number * Decimal("1" + m.group(2))
    return number * Decimal(SUFFIXES[m.group(3) or ""])


def candidates(node):
    """Yields the resources of every container named agent, and every JSON patch value that
    replaces a container's resources (path .../containers/N/resources)."""
    if isinstance(node, dict):
        if node.get("name") == "agent" and isinstance(node.get("resources"), dict):
            yield node["resources"]
        if isinstance(node.get("path"), str) and "value" in node:
            if re.search(r"/containers/[0-9]+/resources$", node["path"]) and isinstance(node["value"], dict):
                yield node["value"]
        for value in node.values():
            yield from candidates(value)
    elif isinstance(node, list):
        for value in node:
            yield from candidates(value)


path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
found = [r for r in candidates(docs) if isinstance(r.get("limits"), dict)]
if len(found) != 1:
    sys.exit(f"{path}: expected the agent container's resources.limits once, found {len(found)}")
limits = found[0]["limits"]
if "cpu" not in limits or "memory" not in limits:
    sys.exit(f"{path}: resources.limits needs both cpu and memory, has {sorted(limits)}")
cpu = quantity(limits["cpu"], "limits.cpu")
memory = quantity(limits["memory"], "limits.memory").to_integral_value(rounding=ROUND_CEILING)
if cpu <= 0 or memory < 6 * 2**20:
    sys.exit(f"{path}: limits cpu {limits['cpu']!r} / memory {limits['memory']!r} are not usable")
cores = format(cpu.normalize(), "f")
print(cores, int(memory), str(limits["cpu"]).strip(), str(limits["memory"]).strip())
PY
}

# The sidecar's cgroup: version (1 or 2) and the directories of its memory, cpu and cpuacct
# controllers (one directory on v2). Set by find_cgroup.
CG_VERSION="" CG_MEM="" CG_CPU="" CG_CPUACCT=""
# v1_dir CONTROLLER PID: the directory of PID's cgroup in the v1 hierarchy of CONTROLLER.
v1_dir() {
    local mount rel
    mount="$(findmnt -rn -t cgroup -o TARGET,OPTIONS | awk -v c="$1" '
        { n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $1; exit } }')"
    rel="$(awk -F: -v c="$1" '{ n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) { print $3; exit } }' \
        "/proc/$2/cgroup")"
    [[ -n "${mount}" && -n "${rel}" && -d "${mount}${rel}" ]] || die "no v1 ${1} cgroup for pid $2"
    printf '%s\n' "${mount}${rel}"
}
# find_cgroup PID: the cgroup PID is in; v1 (also hybrid) when a v1 memory hierarchy is
# mounted, else v2.
find_cgroup() {
    local pid="$1" rel
    if findmnt -rn -t cgroup -o OPTIONS | grep -Eq '(^|,)memory(,|$)'; then
        CG_VERSION=1
        CG_MEM="$(v1_dir memory "${pid}")"
        CG_CPU="$(v1_dir cpu "${pid}")"
        CG_CPUACCT="$(v1_dir cpuacct "${pid}")"
    else
        CG_VERSION=2
        rel="$(awk -F: '$1 == "0" { print $3; exit }' "/proc/${pid}/cgroup")"
        CG_MEM="/sys/fs/cgroup${rel}"
        CG_CPU="${CG_MEM}"
        CG_CPUACCT="${CG_MEM}"
        [[ -n "${rel}" && -f "${CG_MEM}/memory.max" ]] || die "cannot find the v2 cgroup of pid ${pid} ('${CG_MEM}')"
    fi
}

# cg_stat FILE KEY: the value of KEY in a "key value" file of the memory cgroup (empty if none).
cg_stat() { awk -v k="$2" '$1 == k { print $2; exit }' "${CG_MEM}/$1" 2>/dev/null || true; }

# Keys of the memory that page reclaim cannot take back (no swap): anonymous memory and shmem
# (the scratch server's shared_buffers, /dev/shm).
RSS_KEY="" SHMEM_KEY="" CACHE_KEY=""
# sample_memory OUT: every 0.2 s, the largest anonymous + shmem memory of the cgroup so far, as
# "TOTAL ANON SHMEM" in OUT. Runs until killed or the cgroup is gone.
sample_memory() {
    local out="$1" peak=0 key value anon shmem
    while [[ -r "${CG_MEM}/memory.stat" ]]; do
        anon=0 shmem=0
        while read -r key value; do
            if [[ "${key}" == "${RSS_KEY}" ]]; then anon="${value}"; elif [[ "${key}" == "${SHMEM_KEY}" ]]; then shmem="${value}"; fi
        done <"${CG_MEM}/memory.stat" 2>/dev/null || break
        if ((anon + shmem > peak)); then
            peak=$((anon + shmem))
            printf '%s %s %s\n' "${peak}" "${anon}" "${shmem}" >"${out}.tmp" && mv -f -- "${out}.tmp" "${out}"
        fi
        sleep 0.2
    done
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# in_agent ARGS...: run in the sidecar (inside its cgroup, so inside its limits).
in_agent() { podman_s exec --user 26 "${AGENT_CONTAINER}" "$@"; }

install_container_tools
install_smoke_tools
ctr_storage_init "${STORAGE}"

# --- the limits ---------------------------------------------------------------------------------
read -r CPU_CORES MEMORY_BYTES CPU_TEXT MEMORY_TEXT < <(agent_limits "${LIMITS_MANIFEST}") \
    || die "cannot read the agent's limits from ${LIMITS_MANIFEST}"
[[ "${MEMORY_BYTES}" =~ ^[0-9]+$ && -n "${CPU_CORES}" ]] || die "cannot read the agent's limits from ${LIMITS_MANIFEST}"
measure "limits (${LIMITS_MANIFEST#"${REPO_ROOT}/"}): cpu ${CPU_TEXT} = ${CPU_CORES} CPU, memory ${MEMORY_TEXT} = ${MEMORY_BYTES} bytes; the sidecar runs under these"
if prod="$(agent_limits "${PROD_LIMITS_MANIFEST}" 2>&1)"; then
    read -r _ _ prod_cpu prod_memory <<<"${prod}"
    measure "limits of the prod overlay (${PROD_LIMITS_MANIFEST#"${REPO_ROOT}/"}): cpu ${prod_cpu}, memory ${prod_memory} (not tested here)"
else
    log "note: no limits in the prod overlay: ${prod}"
fi
BIG_ROWS=$(((DUMP_FACTOR * MEMORY_BYTES + PAYLOAD_CHARS - 1) / PAYLOAD_CHARS))
((BIG_ROWS > 2 * REPLAY_ROWS)) || REPLAY_ROWS=$((BIG_ROWS / 2))
LIMIT_OPTS=(--cpus "${CPU_CORES}" --memory "${MEMORY_BYTES}b" --memory-swap "${MEMORY_BYTES}b")

# --- image --------------------------------------------------------------------------------------
if [[ -n "${IMAGE_ARCHIVE}" ]]; then
    step "load-image"
    IMAGE="$(podman_s pull --quiet "oci-archive:${IMAGE_ARCHIVE}")" || die "cannot load ${IMAGE_ARCHIVE}"
else
    step "build-image"
    IMAGE="localhost/agent:latest"
    AGENT_BUILD_LOG="${WORK}/build.log" bash "${HERE}/build-image.sh" --storage-root "${STORAGE}" --tag "${IMAGE}" \
        --pgbackrest-version "${PGBR_VERSION}" >&2
    ctr_storage_init "${STORAGE}"   # the child's exports do not reach us; same values anyway
fi
size_bytes="$(podman_s image inspect --format '{{.Size}}' "${IMAGE}")"
SIZE_MB="$(awk -v b="${size_bytes}" 'BEGIN { printf "%.0f", b / 1000000 }')"
log "image ${IMAGE}: ${SIZE_MB} MB"

# The pod's shared volumes: /pgdata (PGO's postgres-data; fsGroup 26, OpenShift's group 0) and
# PostgreSQL's socket directory.
mkdir -m 2775 -- "${PGDATA_DIR}"
mkdir -m 0775 -- "${SOCKET_DIR}"
chown 26:0 -- "${PGDATA_DIR}" "${SOCKET_DIR}"
RUN_OPTS=(--ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --network=none --log-driver k8s-file
    --volume "${PGDATA_DIR}:/pgdata" --volume "${SOCKET_DIR}:/tmp/postgres")

step "image-basics"
# The entrypoint is the agent (each `podman run` copies the image on vfs: keep them few).
out="$(podman_s run --rm --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 --network=none "${IMAGE}" --version)"
log "agent --version (entrypoint): ${out}"

step "start-database"
podman_s run -d --name "${DB_CONTAINER}" "${RUN_OPTS[@]}" --entrypoint sleep "${IMAGE}" infinity >/dev/null
user_line="$(podman_s exec "${DB_CONTAINER}" id)"
log "image user: ${user_line}"
[[ "${user_line}" == uid=26\(*gid=0\(* ]] || die "image does not run as uid 26, gid 0: ${user_line}"
podman_s exec "${DB_CONTAINER}" agent config check /etc/agent/agent.yaml >&2
podman_s exec "${DB_CONTAINER}" bash -c \
    'command -v pg_dump >/dev/null && command -v postgres >/dev/null && command -v pgbackrest >/dev/null && test -w /pgdata && test -w /tmp/postgres' \
    || die "image lacks postgres/pg_dump/pgbackrest on PATH or cannot write /pgdata, /tmp/postgres"
# The operator's repository host refuses any other pgBackRest version, so the image's must be V.
pgbr_seen="$(podman_s exec "${DB_CONTAINER}" pgbackrest version)" || die "pgbackrest version failed in the image"
log "image pgBackRest: ${pgbr_seen} ($(podman_s exec "${DB_CONTAINER}" bash -c 'command -v pgbackrest'))"
[[ "${pgbr_seen}" == "pgBackRest ${PGBR_VERSION}" ]] \
    || die "the image carries '${pgbr_seen}', not pgBackRest ${PGBR_VERSION}"

step "make-cluster"
log "api.big: ${BIG_ROWS} rows of ${PAYLOAD_CHARS} characters (${DUMP_FACTOR} x the memory limit as dump text), the last ${REPLAY_ROWS} after the full backup"
# Progress on stderr; the last stdout line is TARGET=...
cluster_out="$(timeout 900 "${PODMAN_CMD[@]}" exec -i --user 26 "${DB_CONTAINER}" bash -s -- \
    "${BIG_ROWS}" "${PAYLOAD_CHARS}" "${REPLAY_ROWS}" <<'INNER'
set -euo pipefail
BIG_ROWS="$1"
PAYLOAD_CHARS="$2"
LOADED_ROWS=$(($1 - $3))
log() { printf '[database %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
D=/pgdata
SOCK=/tmp/postgres
STANZA=db
PORT=5432
PGBR=(pgbackrest --config="${D}/pgbackrest.conf" --stanza="${STANZA}")
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -h "${SOCK}" -p "${PORT}" -U postgres -d "$@"; }

mkdir -p "${D}/repo" "${D}/log" "${D}/lock" "${D}/spool"
mkdir -m 0700 "${D}/ts1"
log "initdb (as $(id -un), uid $(id -u))"
initdb -D "${D}/pg15" -U postgres --auth=trust -E UTF8 --locale=C --no-instructions >/dev/null
cat >>"${D}/pg15/postgresql.conf" <<EOF
port = ${PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${SOCK}'
timezone = 'America/Vancouver'
# Loading api.big: no WAL for a table created in the loading transaction.
wal_level = minimal
max_wal_senders = 0
archive_mode = off
EOF
pg_ctl -D "${D}/pg15" -l "${D}/postgres.log" -w -t 120 start >/dev/null
sql postgres -c "CREATE DATABASE api"
log "api.big: rows 1..${LOADED_ROWS}"
sql api <<SQL
BEGIN;
CREATE TABLE big(id bigint NOT NULL, payload text NOT NULL);
INSERT INTO big SELECT g, repeat(md5(g::text), ${PAYLOAD_CHARS} / 32) FROM generate_series(1, ${LOADED_ROWS}) g;
COMMIT;
SQL
# Read once: the hint bits are set and written before the backup, as in a database in use.
log "api.big: $(sql api -c "SELECT count(*) || ' rows, ' || pg_size_pretty(pg_table_size('big')) FROM big")"
pg_ctl -D "${D}/pg15" -w -t 120 stop >/dev/null

cat >>"${D}/pg15/postgresql.conf" <<EOF
wal_level = replica
max_wal_senders = 5
archive_mode = on
archive_command = 'pgbackrest --config=${D}/pgbackrest.conf --stanza=${STANZA} archive-push %p'
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
process-max=2
log-level-console=warn
log-level-file=detail
archive-async=n

[${STANZA}]
pg1-path=${D}/pg15
pg1-port=${PORT}
pg1-socket-path=${SOCK}
pg1-user=postgres
EOF
log "starting PostgreSQL with archiving"
pg_ctl -D "${D}/pg15" -l "${D}/postgres.log" -w -t 120 start >/dev/null
log "stanza-create, check"
"${PGBR[@]}" stanza-create
"${PGBR[@]}" check
sql postgres -c "CREATE TABLESPACE ts1 LOCATION '${D}/ts1'"
log "full backup"
"${PGBR[@]}" --type=full backup
log "api.big: rows $((LOADED_ROWS + 1))..${BIG_ROWS} (WAL that the copy replays)"
sql api -c "INSERT INTO big SELECT g, repeat(md5(g::text), ${PAYLOAD_CHARS} / 32) FROM generate_series($((LOADED_ROWS + 1)), ${BIG_ROWS}) g"
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

# The sidecar's config: as container/kustomize/base/agent.yaml (live server through the shared
# socket directory, scratch copy and dump on /pgdata), with this test's pgBackRest config.
cat >"${D}/agent.yaml" <<EOF
stanza: ${STANZA}
state_dir: ${D}/agent-state
pgbackrest:
  config: ${D}/pgbackrest.conf
postgres:
  bindir: /usr/lib/postgresql/15/bin
  data: ${D}/pg15
  host: ${SOCK}
  port: ${PORT}
  user: postgres
restore:
  scratch: ${D}/restore
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
)" || die "building the cluster in the database container failed"
TARGET="$(printf '%s\n' "${cluster_out}" | sed -n 's/^TARGET=//p' | tail -n 1)"
[[ "${TARGET}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9:]{8}\.[0-9]{6}\+00$ ]] || die "no TARGET from the cluster setup (got '${TARGET}')"
log "TARGET=${TARGET}"

# --- the sidecar: agent run, inside the limits ---------------------------------------------------
step "start-agent"
podman_s run -d --name "${AGENT_CONTAINER}" "${RUN_OPTS[@]}" "${LIMIT_OPTS[@]}" \
    "${IMAGE}" run --config /pgdata/agent.yaml >/dev/null
AGENT_STARTED=1
agent_pid="$(podman_s inspect --format '{{.State.Pid}}' "${AGENT_CONTAINER}")"
[[ "${agent_pid}" =~ ^[1-9][0-9]*$ ]] || die "the agent container has no process (pid '${agent_pid}')"
find_cgroup "${agent_pid}"
if ((CG_VERSION == 1)); then
    cg_limit="$(cat "${CG_MEM}/memory.limit_in_bytes")"
    cg_swap="memsw $(cat "${CG_MEM}/memory.memsw.limit_in_bytes" 2>/dev/null || echo '?')"
    cg_cpu="cfs $(cat "${CG_CPU}/cpu.cfs_quota_us")/$(cat "${CG_CPU}/cpu.cfs_period_us") us"
    RSS_KEY=total_rss SHMEM_KEY=total_shmem CACHE_KEY=total_cache
else
    cg_limit="$(cat "${CG_MEM}/memory.max")"
    cg_swap="swap.max $(cat "${CG_MEM}/memory.swap.max" 2>/dev/null || echo '?')"
    cg_cpu="cpu.max $(cat "${CG_CPU}/cpu.max")"
    RSS_KEY=anon SHMEM_KEY=shmem CACHE_KEY=file
fi
measure "sidecar cgroup v${CG_VERSION}: ${CG_MEM}: limit ${cg_limit} bytes, ${cg_swap}, ${cg_cpu}"
# The kernel rounds the limit down to whole pages.
if ! [[ "${cg_limit}" =~ ^[0-9]+$ ]] || ((cg_limit > MEMORY_BYTES || cg_limit <= MEMORY_BYTES - 4096)); then
    die "the sidecar's cgroup does not have the manifest's memory limit (${cg_limit} vs ${MEMORY_BYTES})"
fi
sample_memory "${WORK}/peak-anon-shmem" &
SAMPLER_PID=$!

# http_get PATH: prints "STATUS\n\nBODY" of GET http://127.0.0.1:9451PATH, from inside the
# sidecar (bash /dev/tcp: the image has no curl or wget).
http_get() {
    # shellcheck disable=SC2016  # expanded by the inner bash
    in_agent timeout 15 bash -c '
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
# PID 1 must reap the orphans a killed child leaves (pg_dump's workers): tini, the agent below it.
pid1="$(in_agent cat /proc/1/comm)" || die "cannot read PID 1 of the agent container"
[[ "${pid1}" == "tini" ]] || die "PID 1 of the agent container is '${pid1}', not tini"
log "agent container: PID 1 is ${pid1}"
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
in_agent agent status --config /pgdata/agent.yaml >&2 || die "agent status failed"

# report_cgroup: the sidecar cgroup's measurements; sets OOM_KILLS ("" when unreadable).
OOM_KILLS=""
report_cgroup() {
    local peak peak_what fails anon shmem cache throttled cpu_seconds sampled="" s_total s_anon s_shmem
    if [[ ! -d "${CG_MEM}" ]]; then
        measure "sidecar cgroup ${CG_MEM} is gone (container state: $(podman_s inspect --format \
            '{{.State.Status}} exit {{.State.ExitCode}} oomkilled {{.State.OOMKilled}}' "${AGENT_CONTAINER}" 2>&1))"
        return 0
    fi
    if ((CG_VERSION == 1)); then
        peak="$(cat "${CG_MEM}/memory.max_usage_in_bytes")"
        peak_what="memory.max_usage_in_bytes"
        fails="failcnt $(cat "${CG_MEM}/memory.failcnt")"
        OOM_KILLS="$(cg_stat memory.oom_control oom_kill)"
        throttled="$(awk '$1 ~ /^(nr_periods|nr_throttled)$/ { printf "%s%s %s", sep, $1, $2; sep = ", " }
            $1 == "throttled_time" { printf "%sthrottled %.1f s", sep, $2 / 1e9; sep = ", " }' "${CG_CPU}/cpu.stat")"
        cpu_seconds="$(awk '{ printf "%.1f", $1 / 1e9 }' "${CG_CPUACCT}/cpuacct.usage")"
    else
        peak="$(cat "${CG_MEM}/memory.peak" 2>/dev/null || true)"   # Linux 5.19+
        peak_what="memory.peak"
        fails="events max $(cg_stat memory.events max)"
        OOM_KILLS="$(cg_stat memory.events oom_kill)"
        throttled="$(awk '$1 ~ /^(nr_periods|nr_throttled)$/ { printf "%s%s %s", sep, $1, $2; sep = ", " }
            $1 == "throttled_usec" { printf "%sthrottled %.1f s", sep, $2 / 1e6; sep = ", " }' "${CG_CPU}/cpu.stat")"
        cpu_seconds="$(awk '$1 == "usage_usec" { printf "%.1f", $2 / 1e6 }' "${CG_CPU}/cpu.stat")"
    fi
    anon="$(cg_stat memory.stat "${RSS_KEY}")"
    shmem="$(cg_stat memory.stat "${SHMEM_KEY}")"
    cache="$(cg_stat memory.stat "${CACHE_KEY}")"
    if [[ -s "${WORK}/peak-anon-shmem" ]]; then
        read -r s_total s_anon s_shmem <"${WORK}/peak-anon-shmem"
        sampled="$(mib "${s_total}") MiB (${RSS_KEY} $(mib "${s_anon}") + ${SHMEM_KEY} $(mib "${s_shmem}"))"
        PEAK_ANON_SHMEM="${s_total}"
    fi
    if [[ -n "${peak}" ]]; then
        PEAK_USAGE="$(mib "${peak}") MiB"
        peak="${PEAK_USAGE} (${peak} bytes) of $(mib "${MEMORY_BYTES}") MiB"
    else
        peak="unknown (no ${peak_what})"
    fi
    measure "sidecar peak memory incl. page cache (${peak_what}): ${peak}; ${fails}" \
        "sidecar peak ${RSS_KEY}+${SHMEM_KEY} (sampled every 0.2 s; what reclaim cannot free without swap): ${sampled:-no sample}" \
        "sidecar now: ${RSS_KEY} $(mib "${anon:-0}") MiB, ${SHMEM_KEY} $(mib "${shmem:-0}") MiB, ${CACHE_KEY} $(mib "${cache:-0}") MiB" \
        "sidecar OOM kills: ${OOM_KILLS:-unknown}" \
        "sidecar CPU: ${cpu_seconds:-?} s used since it started; ${throttled}"
}
PEAK_USAGE="unknown"
PEAK_ANON_SHMEM=0

# --- agent dump ---------------------------------------------------------------------------------
step "agent-dump"
dump_t0="${EPOCHREALTIME}"
dump_rc=0
timeout 900 "${PODMAN_CMD[@]}" exec --user 26 "${AGENT_CONTAINER}" agent dump --config /pgdata/agent.yaml \
    --target "${TARGET}" --database api --output /pgdata/restore.sql 2>&1 | tee "${WORK}/dump.log" >&2 \
    || dump_rc=${PIPESTATUS[0]}
dump_seconds="$(awk -v a="${dump_t0}" -v b="${EPOCHREALTIME}" 'BEGIN { printf "%.1f", b - a }')"
sleep 0.5   # one more sample
stop_sampler
report_cgroup
[[ "${OOM_KILLS}" == 0 ]] || die "the sidecar's cgroup counted ${OOM_KILLS:-an unknown number of} OOM kills"
((dump_rc == 0)) || die "agent dump failed (exit ${dump_rc}) after ${dump_seconds} s"
[[ -s "${PGDATA_DIR}/restore.sql.manifest.json" ]] || die "no dump manifest"
dump_bytes="$(stat -c %s -- "${PGDATA_DIR}/restore.sql")"
ratio="$(awk -v d="${dump_bytes}" -v m="${MEMORY_BYTES}" 'BEGIN { printf "%.2f", d / m }')"
dump_steps="$(sed -nE 's/.*\[dump\] ([a-z]+): done after ([0-9.]+) s$/\1 \2 s/p' "${WORK}/dump.log" | paste -sd, - | sed 's/,/, /g')"
measure "dump: ${dump_bytes} bytes ($(mib "${dump_bytes}") MiB) = ${ratio} x the memory limit, in ${dump_seconds} s" \
    "dump steps: ${dump_steps:-?}"
SUMMARY="${pgbr_seen}; sidecar ${CPU_TEXT} CPU / ${MEMORY_TEXT}: peak ${PEAK_USAGE} incl. cache, $(mib "${PEAK_ANON_SHMEM}") MiB ${RSS_KEY}+${SHMEM_KEY}, 0 OOM kills; dump $(mib "${dump_bytes}") MiB (${ratio} x limit) in ${dump_seconds} s"
((dump_bytes >= MIN_DUMP_FACTOR * MEMORY_BYTES)) \
    || die "the dump (${dump_bytes} bytes) is not ${MIN_DUMP_FACTOR} times the memory limit (${MEMORY_BYTES} bytes)"

step "check-dump"
bash "${REPO_ROOT}/tests/support/check-dump.sh" "${PGDATA_DIR}/restore.sql" 100 100 >&2 || die "dump content is wrong"
# Every row of api.big: ids 1..BIG_ROWS once each (count and sum), each payload whole.
awk -v want="${BIG_ROWS}" -v len="${PAYLOAD_CHARS}" '
    /^COPY (public\.)?"?big"? \(id, payload\) FROM stdin;$/ && !done { in_copy = 1; found = 1; next }
    in_copy && /^\\\.$/ { in_copy = 0; done = 1; next }
    in_copy {
        tab = index($0, "\t")
        rows++; sum += substr($0, 1, tab - 1)
        if (length($0) - tab != len) bad++
    }
    END {
        if (!found) { print "no COPY block for table big" > "/dev/stderr"; exit 1 }
        if (in_copy) { print "the COPY block of big is not terminated (truncated dump?)" > "/dev/stderr"; exit 1 }
        if (rows != want || sum != want * (want + 1) / 2 || bad) {
            printf "big: %d rows (want %d), id sum %.0f (want %.0f), %d payloads not %d characters\n",
                rows, want, sum, want * (want + 1) / 2, bad, len > "/dev/stderr"
            exit 1
        }
        printf "big: %d rows, ids 1..%d, payloads of %d characters\n", rows, want, len
    }' "${PGDATA_DIR}/restore.sql" >&2 || die "the dump does not hold api.big"
metrics="$(http_get /metrics)"
grep -Eq '^agent_dump_last_completion_timestamp_seconds\{[^}]*\} [0-9]' <<<"${metrics}" \
    || log "note: agent_dump_last_completion_timestamp_seconds not exported (dump ran outside agent run?)"
step "done"
log "image ${IMAGE}: ${SIZE_MB} MB, ${pgbr_seen}"
