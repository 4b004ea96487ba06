#!/usr/bin/env bash
# Build a throwaway PostgreSQL 15 cluster with a real pgBackRest repository.
#
#   tests/support/make-cluster.sh --dir DIR [--port N] [--bulk-mb M] [--pgbench-scale S] [--repo2]
#                                 [--data-checksums] [--amcheck] [--pgbench-clones "NAME ..."]
#
# Creates, under DIR (absent or empty):
#   data/            the cluster (initdb), running on 127.0.0.1:N and DIR/run
#   pgbackrest.conf  stanza "db", repo in DIR/repo (lz4)
#   repo/ log/ lock/ spool/ run/ out/
#   cluster.env      KEY=VALUE lines, split at the first '=', values unquoted
#   agent.yaml       the agent's config for this cluster
#   postgres.log     the server log
#
# Data: tablespace ts1 in DIR/ts1; a full backup; database "api" with table events (in ts1): ids 1..100 phase
# 'before', then TARGET (UTC, "YYYY-MM-DD HH:MM:SS.ffffff+00"), then ids
# 101..200 phase 'after'; then an incremental backup, with the WAL holding
# the 'after' commits archived. --bulk-mb M adds table api.bulk (~M MB)
# before the target. --pgbench-scale S (benchmarks) fills api with pgbench
# data at scale S, takes a second full backup holding it and runs some pgbench
# traffic before the target; such a cluster has no tablespace, because the
# manual runbook the benchmark runs would restore it over the live one.
# --repo2 adds a second repository, repo2 in DIR/repo2 (WAL is archived to
# both): the full and the incremental backup go to repo1, then to repo2.
# --data-checksums runs initdb with data checksums; --amcheck installs the
# amcheck extension (contrib) in database api right after creating it, before
# the target (restore drills run it on the paused copy, which cannot install it).
# --pgbench-clones "shop crm" (with --pgbench-scale) also creates those
# databases as file copies of api right after pgbench fills it, so the cluster
# holds several databases of the same size (the one-database dump benchmark).
#
# Progress goes to stderr; stdout stays empty. On failure the error is
# printed, the server started here is stopped, and DIR is left for
# inspection (remove it with stop-cluster.sh --dir DIR --remove).
set -euo pipefail

readonly PROG="make-cluster"
readonly BINDIR="/usr/lib/postgresql/15/bin"
readonly STANZA="db"
readonly ROWS_BEFORE=100
readonly ROWS_AFTER=100

log() { printf '[%s] %s\n' "${PROG}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG}" "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: make-cluster.sh --dir DIR [--port N] [--bulk-mb M] [--pgbench-scale S] [--repo2]
  --dir DIR            where to build the cluster (must be absent or empty)
  --port N             TCP port of the server (default: a free port)
  --bulk-mb M          also create api.bulk with about M MB of rows (default 0)
  --role-owned-table   also create api.marks, owned by the role marks_owner
  --pgbench-scale S    fill api with pgbench data at scale S, no tablespace (default 0)
  --repo2              a second repository, DIR/repo2; the backups go to repo1, then repo2
  --data-checksums     initdb --data-checksums
  --amcheck            CREATE EXTENSION amcheck in database api (before the target)
  --pgbench-clones L   with --pgbench-scale: databases (space-separated names) copied from api
EOF
}

if [[ "${EUID}" -eq 0 ]]; then
    die "refusing to run as root: PostgreSQL (initdb, pg_ctl, postgres) refuses to run as root. Run as an ordinary user, e.g. runuser -u agentci -- $0 $*"
fi

DIR=""
PORT=""
BULK_MB=0
PGBENCH_SCALE=0
REPO2=0
ROLE_OWNED_TABLE=0
DATA_CHECKSUMS=0
AMCHECK=0
PGBENCH_CLONES=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR="$2"; shift 2 ;;
        --dir=*) DIR="${1#--dir=}"; shift ;;
        --port) [[ $# -ge 2 ]] || die "--port needs a value"; PORT="$2"; shift 2 ;;
        --port=*) PORT="${1#--port=}"; shift ;;
        --bulk-mb) [[ $# -ge 2 ]] || die "--bulk-mb needs a value"; BULK_MB="$2"; shift 2 ;;
        --bulk-mb=*) BULK_MB="${1#--bulk-mb=}"; shift ;;
        --role-owned-table) ROLE_OWNED_TABLE=1; shift ;;
        --pgbench-scale) [[ $# -ge 2 ]] || die "--pgbench-scale needs a value"; PGBENCH_SCALE="$2"; shift 2 ;;
        --pgbench-scale=*) PGBENCH_SCALE="${1#--pgbench-scale=}"; shift ;;
        --repo2) REPO2=1; shift ;;
        --data-checksums) DATA_CHECKSUMS=1; shift ;;
        --amcheck) AMCHECK=1; shift ;;
        --pgbench-clones) [[ $# -ge 2 ]] || die "--pgbench-clones needs a value"; PGBENCH_CLONES="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
done

[[ -n "${DIR}" ]] || { usage; die "--dir is required"; }
[[ "${BULK_MB}" =~ ^[0-9]+$ ]] || die "--bulk-mb must be a non-negative integer, got '${BULK_MB}'"
[[ "${PGBENCH_SCALE}" =~ ^[0-9]+$ ]] || die "--pgbench-scale must be a non-negative integer, got '${PGBENCH_SCALE}'"
for clone in ${PGBENCH_CLONES}; do
    [[ "${clone}" =~ ^[a-z][a-z0-9_]*$ && "${clone}" != "api" ]] \
        || die "--pgbench-clones must list lower-case database names other than api, got '${clone}'"
    ((PGBENCH_SCALE > 0)) || die "--pgbench-clones needs --pgbench-scale"
done
if [[ -n "${PORT}" ]]; then
    if ! [[ "${PORT}" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT > 65535)); then
        die "--port must be an integer in 1024..65535, got '${PORT}'"
    fi
fi

# Absolute, normalised path. The path ends up inside postgresql.conf,
# pgbackrest.conf, archive_command, YAML and cluster.env without quoting,
# so only allow characters that are safe everywhere.
DIR="$(realpath -m -- "${DIR}")"
[[ "${DIR}" =~ ^/[A-Za-z0-9._/+-]*$ ]] \
    || die "DIR '${DIR}' contains characters that are not safe in config files (allowed: A-Z a-z 0-9 . _ - + /)"
[[ "${DIR}" != "/" ]] || die "DIR must not be /"
if [[ -e "${DIR}" ]]; then
    [[ -d "${DIR}" ]] || die "${DIR} exists and is not a directory"
    [[ -z "$(ls -A -- "${DIR}")" ]] || die "${DIR} is not empty"
    [[ -w "${DIR}" ]] || die "${DIR} is not writable by $(id -un)"
fi

for tool in initdb pg_ctl psql postgres pgbench; do
    [[ -x "${BINDIR}/${tool}" ]] || die "${BINDIR}/${tool} not found (is postgresql-15 installed?)"
done
PGBACKREST_BIN="$(command -v pgbackrest || true)"
[[ -n "${PGBACKREST_BIN}" ]] || die "pgbackrest not found on PATH (is the pgbackrest package installed?)"

# Keep the caller's environment from steering libpq or pgBackRest.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE PGPASSWORD PGOPTIONS PGDATA PGTZ
while IFS= read -r var; do
    unset "${var}"
done < <(compgen -e | grep '^PGBACKREST_' || true)

readonly DATA="${DIR}/data"
readonly SOCKET_DIR="${DIR}/run"
readonly PGBACKREST_CONFIG="${DIR}/pgbackrest.conf"
readonly AGENT_CONFIG="${DIR}/agent.yaml"
readonly SCRATCH="${DIR}/scratch"
readonly OUTPUT_DIR="${DIR}/out"
readonly POSTGRES_LOG="${DIR}/postgres.log"

# A Unix socket path is limited to 107 bytes: DIR/run/.s.PGSQL.NNNNN
socket_path="${SOCKET_DIR}/.s.PGSQL.65535"
((${#socket_path} <= 107)) \
    || die "DIR is too long: the socket path ${socket_path} exceeds 107 bytes; use a shorter DIR"

# --- free TCP ports ---------------------------------------------------------
# Prints a port in 20000..32767 (below the kernel's ephemeral range) that can
# be bound on 127.0.0.1 right now and is not one of the arguments.
free_port() {
    local exclude=" $* "
    local candidate i
    for ((i = 0; i < 200; i++)); do
        candidate=$((20000 + RANDOM % 12768))
        [[ "${exclude}" != *" ${candidate} "* ]] || continue
        if port_is_free "${candidate}"; then
            printf '%s\n' "${candidate}"
            return 0
        fi
    done
    return 1
}

port_is_free() {
    local port="$1"
    local py
    py="$(command -v python3 || true)"
    if [[ -n "${py}" ]]; then
        "${py}" - "${port}" <<'PYEOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PYEOF
        return
    fi
    # Fallback without python: free if nothing accepts a connection.
    ! (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null
}

if [[ -n "${PORT}" ]]; then
    port_is_free "${PORT}" || die "port ${PORT} is already in use on 127.0.0.1"
else
    PORT="$(free_port)" || die "could not find a free TCP port"
fi
SCRATCH_PORT="$(free_port "${PORT}")" || die "could not find a second free TCP port"

# --- failure handling -------------------------------------------------------
SERVER_STARTED=0
WORK_LOG="$(mktemp)"

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ ${rc} -ne 0 ]]; then
        if [[ ${SERVER_STARTED} -eq 1 ]]; then
            "${BINDIR}/pg_ctl" -D "${DATA}" -m fast -w stop >/dev/null 2>&1 \
                || "${BINDIR}/pg_ctl" -D "${DATA}" -m immediate -w stop >/dev/null 2>&1 \
                || true
            printf '%s: server stopped; last lines of %s:\n' "${PROG}" "${POSTGRES_LOG}" >&2
            tail -n 15 "${POSTGRES_LOG}" >&2 2>/dev/null || true
        fi
        printf '%s: FAILED (exit %s); %s left for inspection\n' "${PROG}" "${rc}" "${DIR}" >&2
    fi
    rm -f "${WORK_LOG}"
    exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a command with its output captured; prints it only if the command fails.
run() {
    local rc=0
    "$@" >"${WORK_LOG}" 2>&1 || rc=$?
    if ((rc != 0)); then
        printf '%s: command failed (exit %s): %s\n' "${PROG}" "${rc}" "$*" >&2
        cat "${WORK_LOG}" >&2
        return "${rc}"
    fi
}

# psql against the live cluster: psql_db DB [psql args...]; SQL on stdin or -c.
psql_db() {
    local db="$1"
    shift
    "${BINDIR}/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
        -h "${SOCKET_DIR}" -p "${PORT}" -U postgres -d "${db}" "$@"
}

# Like psql_db but captures output; on failure prints it and fails.
sql() {
    local out
    if ! out="$(psql_db "$@" 2>&1)"; then
        printf '%s: SQL failed on database %s: %s\n%s\n' "${PROG}" "$1" "${*:2}" "${out}" >&2
        return 1
    fi
    printf '%s' "${out}"
}

pgbr() {
    run "${PGBACKREST_BIN}" --config="${PGBACKREST_CONFIG}" --stanza="${STANZA}" "$@"
}

# A backup into every repository: repo1, then (--repo2) repo2.
backup_all() {
    pgbr --repo=1 "$@" backup
    if ((REPO2)); then pgbr --repo=2 "$@" backup; fi
}

# --- layout -----------------------------------------------------------------
log "building cluster in ${DIR} (port ${PORT}, scratch port ${SCRATCH_PORT})"
mkdir -p -- "${DIR}"
: >"${DIR}/.make-cluster"   # marker: stop-cluster.sh --remove only deletes such dirs
mkdir -p -- "${DIR}/repo" "${DIR}/log" "${DIR}/lock" "${DIR}/spool" "${OUTPUT_DIR}"
if ((REPO2)); then mkdir -p -- "${DIR}/repo2"; fi
mkdir -- "${SOCKET_DIR}"
chmod 0700 -- "${SOCKET_DIR}"

log "initdb ${DATA}"
initdb_checksums=()
((DATA_CHECKSUMS == 0)) || initdb_checksums=(--data-checksums)
run "${BINDIR}/initdb" -D "${DATA}" -U postgres --auth=trust -E UTF8 --locale=C --no-instructions \
    "${initdb_checksums[@]}"

cat >>"${DATA}/postgresql.conf" <<EOF

# --- added by tests/support/make-cluster.sh ---
port = ${PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${SOCKET_DIR}'
wal_level = replica
archive_mode = on
archive_command = '${PGBACKREST_BIN} --config=${PGBACKREST_CONFIG} --stanza=${STANZA} archive-push %p'
timezone = 'America/Vancouver'
max_wal_senders = 5
EOF

cat >"${PGBACKREST_CONFIG}" <<EOF
[global]
repo1-path=${DIR}/repo
repo1-retention-full=10
$( ((REPO2)) && printf 'repo2-path=%s\nrepo2-retention-full=10\n' "${DIR}/repo2" || true )
log-path=${DIR}/log
lock-path=${DIR}/lock
spool-path=${DIR}/spool
start-fast=y
compress-type=lz4
process-max=2
log-level-file=detail
archive-async=n

[${STANZA}]
pg1-path=${DATA}
pg1-port=${PORT}
pg1-socket-path=${SOCKET_DIR}
pg1-user=postgres
EOF

log "starting server"
SERVER_STARTED=1
run "${BINDIR}/pg_ctl" -D "${DATA}" -l "${POSTGRES_LOG}" -w -t 120 start

log "pgbackrest stanza-create + check"
pgbr stanza-create
pgbr check

# A tablespace that exists in every backup: a restore must remap it into the scratch
# directory, never write to this live location.
TABLESPACE_DIR=""
EVENTS_TABLESPACE=""
if ((PGBENCH_SCALE == 0)); then
    TABLESPACE_DIR="${DIR}/ts1"
    EVENTS_TABLESPACE="TABLESPACE ts1"
    mkdir -m 0700 "${TABLESPACE_DIR}"
    sql postgres -c "CREATE TABLESPACE ts1 LOCATION '${TABLESPACE_DIR}'" >/dev/null
fi

log "full backup"
backup_all --type=full

# --- data ---------------------------------------------------------------------
log "creating database api"
sql postgres -c "CREATE DATABASE api" >/dev/null
if ((AMCHECK == 1)); then
    sql api -c "CREATE EXTENSION amcheck" >/dev/null
fi
sql api -c "CREATE TABLE events(id int primary key, phase text not null, created_at timestamptz not null default clock_timestamp()) ${EVENTS_TABLESPACE}" >/dev/null

pgbench_api() {
    run "${BINDIR}/pgbench" -h "${SOCKET_DIR}" -p "${PORT}" -U postgres "$@" api
}
if ((PGBENCH_SCALE > 0)); then
    log "pgbench -i -s ${PGBENCH_SCALE} api"
    pgbench_api -i -q -s "${PGBENCH_SCALE}"
    for clone in ${PGBENCH_CLONES}; do
        # FILE_COPY copies api's files (after a checkpoint) instead of writing them all to WAL.
        log "database ${clone}: a copy of api"
        sql postgres -c "CREATE DATABASE ${clone} TEMPLATE api STRATEGY FILE_COPY" >/dev/null
    done
    log "full backup holding the pgbench data"
    backup_all --type=full
    log "pgbench traffic before the target (WAL to replay)"
    pgbench_api -n -c 2 -T 5
fi

if ((BULK_MB > 0)); then
    log "inserting about ${BULK_MB} MB into api.bulk"
    sql api -c "CREATE TABLE bulk(id bigint primary key, payload text not null)" >/dev/null
    # ~1 KB per row, stored inline (below the TOAST threshold, not compressed).
    rows_per_mb=1000
    for ((mb = 0; mb < BULK_MB; mb += 64)); do
        chunk=$((BULK_MB - mb < 64 ? BULK_MB - mb : 64))
        first=$((mb * rows_per_mb + 1))
        last=$(((mb + chunk) * rows_per_mb))
        sql api -c "INSERT INTO bulk SELECT g, repeat(md5(g::text), 31) FROM generate_series(${first}, ${last}) g" >/dev/null
    done
fi

# Tables whose rows are awkward to copy (test clusters only): quoted names, a dropped and a
# generated column, text with escapes, floats, inheritance, partitions, row-level security.
# The agent's parallel row copy must write them exactly as pg_dump does.
if ((PGBENCH_SCALE == 0)); then
    log "creating the awkward tables"
    sql api >/dev/null <<'SQL'
CREATE SCHEMA "Odd ""Schema""";
CREATE TABLE "Odd ""Schema""".".Line *Items" (id int PRIMARY KEY, gone text, "Note" text, f float8,
    at timestamptz, span interval, raw bytea, doubled int GENERATED ALWAYS AS (id * 2) STORED);
ALTER TABLE "Odd ""Schema""".".Line *Items" DROP COLUMN gone;
INSERT INTO "Odd ""Schema""".".Line *Items" (id, "Note", f, at, span, raw)
SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE E'tab\there\\back\nline ' || repeat('é', g % 5) || g END,
       g / 3.0, timestamptz '2024-11-04 09:40:00-08' + g * interval '1 second', g * interval '1 minute',
       decode(md5(g::text), 'hex')
FROM generate_series(1, 20000) g;
CREATE TABLE parent (id int, payload text);
CREATE TABLE child (extra int) INHERITS (parent);
INSERT INTO parent SELECT g, 'parent ' || g FROM generate_series(1, 3000) g;
INSERT INTO child SELECT g, 'child ' || g, g FROM generate_series(1, 3000) g;
CREATE TABLE measurements (id int, day date) PARTITION BY RANGE (day);
CREATE TABLE measurements_2024 PARTITION OF measurements FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE measurements_2025 PARTITION OF measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO measurements SELECT g, date '2024-06-01' + (g % 400) FROM generate_series(1, 8000) g;
CREATE TABLE guarded (id int, owner text);
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
ALTER TABLE guarded FORCE ROW LEVEL SECURITY;
CREATE POLICY nobody ON guarded USING (false);
INSERT INTO guarded SELECT g, 'someone' FROM generate_series(1, 500) g;
SQL
fi
# --role-owned-table: api.marks owned by a role of its own, which a dump loads only where that
# role exists (pg_dumpall --globals).
if ((ROLE_OWNED_TABLE)); then
    sql api >/dev/null <<'SQL'
CREATE ROLE marks_owner NOLOGIN;
CREATE TABLE marks (id int PRIMARY KEY, mark text);
INSERT INTO marks SELECT g, 'mark ' || g FROM generate_series(1, 50) g;
ALTER TABLE marks OWNER TO marks_owner;
SQL
fi

# insert_rows FIRST LAST PHASE: one transaction per 10 rows.
insert_rows() {
    local first="$1" last="$2" phase="$3" lo hi
    {
        for ((lo = first; lo <= last; lo += 10)); do
            hi=$((lo + 9 > last ? last : lo + 9))
            printf "INSERT INTO events(id, phase) SELECT g, '%s' FROM generate_series(%d, %d) g;\n" "${phase}" "${lo}" "${hi}"
        done
    } | sql api >/dev/null
}

log "inserting rows 1..${ROWS_BEFORE} (phase 'before')"
insert_rows 1 "${ROWS_BEFORE}" before
sleep 1.2
TARGET="$(sql postgres -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
[[ "${TARGET}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00$ ]] \
    || die "unexpected TARGET format: '${TARGET}'"
log "TARGET=${TARGET}"
sleep 1.2
log "inserting rows $((ROWS_BEFORE + 1))..$((ROWS_BEFORE + ROWS_AFTER)) (phase 'after')"
insert_rows $((ROWS_BEFORE + 1)) $((ROWS_BEFORE + ROWS_AFTER)) after
AFTER_WAL="$(sql postgres -c "SELECT pg_walfile_name(pg_current_wal_lsn())")"

log "incremental backup"
backup_all --type=incr

log "checking that WAL ${AFTER_WAL} (holding the 'after' commits) is archived"
pgbr check
archived=""
for ((i = 0; i < 120; i++)); do
    archived="$(sql postgres -c "SELECT coalesce(substr(last_archived_wal, 1, 24), '') FROM pg_stat_archiver")"
    if [[ -n "${archived}" && ! "${archived}" < "${AFTER_WAL}" ]]; then
        break
    fi
    sleep 0.5
done
[[ -n "${archived}" && ! "${archived}" < "${AFTER_WAL}" ]] \
    || die "WAL ${AFTER_WAL} was not archived within 60 s (last archived: '${archived}')"

# --- outputs --------------------------------------------------------------------
cat >"${DIR}/cluster.env" <<EOF
DIR=${DIR}
DATA=${DATA}
PORT=${PORT}
SOCKET_DIR=${SOCKET_DIR}
TABLESPACE_DIR=${TABLESPACE_DIR}
PGBACKREST_CONFIG=${PGBACKREST_CONFIG}
STANZA=${STANZA}
BINDIR=${BINDIR}
TARGET=${TARGET}
ROWS_BEFORE=${ROWS_BEFORE}
ROWS_AFTER=${ROWS_AFTER}
AGENT_CONFIG=${AGENT_CONFIG}
SCRATCH=${SCRATCH}
SCRATCH_PORT=${SCRATCH_PORT}
OUTPUT_DIR=${OUTPUT_DIR}
POSTGRES_LOG=${POSTGRES_LOG}
BULK_MB=${BULK_MB}
PGBENCH_SCALE=${PGBENCH_SCALE}
REPO2_DIR=$( ((REPO2)) && printf '%s' "${DIR}/repo2" || true )
DATA_CHECKSUMS=${DATA_CHECKSUMS}
AMCHECK=${AMCHECK}
EOF

# The scratch directory shares a filesystem with this cluster, where restore.keep_scratch: auto
# would remove the copy after each dump; the tests and benchmarks restore with --delta over it.
cat >"${AGENT_CONFIG}" <<EOF
stanza: ${STANZA}
pgbackrest:
  config: ${PGBACKREST_CONFIG}
postgres:
  bindir: ${BINDIR}
  data: ${DATA}
  host: ${SOCKET_DIR}
  port: ${PORT}
  user: postgres
restore:
  scratch: ${SCRATCH}
  port: ${SCRATCH_PORT}
  keep_scratch: always
dump:
  database: api
  output: ${OUTPUT_DIR}/restore.sql
EOF

log "ready: ${DIR}/cluster.env (TARGET=${TARGET})"
