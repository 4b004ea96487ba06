#!/usr/bin/env bash
# Crunchy PGO's repository-host topology on loopback: a database "pod" (PostgreSQL 15 and a
# pgBackRest TLS server) and a repository-host "pod" (a pgBackRest TLS server that owns the
# repository), configured the way PGO 5.8/6.0 configures them, under DIR instead of /.
#
#   tests/support/make-pgo-topology.sh --dir DIR --pgbackrest BIN [--backup-from db|repo]
#
#   --pgbackrest BIN    pgBackRest for both pods, the archive_command and restore_command (PGO 5.8
#                       and 6.0 ship 2.56.0: tests/support/build-pgbackrest.sh builds it)
#   --backup-from SIDE  where stanza-create and the backups run: db (default; pgBackRest >= 2.55
#                       backs up from the database pod to a remote repository) or repo (the
#                       repository host, as PGO's backup jobs do)
#
# DIR (absent or empty) gets:
#   ca/                                   the cluster's CA (PGO: Secret <cluster>-pgbackrest)
#   db/etc/pgbackrest/conf.d/             PGO: /etc/pgbackrest/conf.d on the database pod
#       pgbackrest_instance.conf          repo1-host (TLS), archive-async, spool-path, pg1-*
#       ~postgres-operator_server.conf    the TLS server's settings
#       ~postgres-operator/               tls-ca.crt, client-tls.crt, client-tls.key
#   db/etc/pgbackrest/server/             server-tls.crt, server-tls.key
#   db/pgdata/pg15                        the live data directory (PGO: /pgdata/pg15)
#   db/pgdata/pgbackrest/log, db/pgdata/pgbackrest-spool
#   db/run/                               its socket directory (PGO: /tmp/postgres)
#   repo/etc/pgbackrest/conf.d/pgbackrest_repo.conf (repo1-path, pg1-host: TLS), the server's
#                                         config and certificates as above
#   repo/pgbackrest/repo1                 the repository (PGO: /pgbackrest/repo1 on its PVC)
#   {db,repo}/server.log, server.pid      `pgbackrest server` of each pod, running
#   agent.yaml                            the agent on the database pod, with BIN
#   agent-debian.yaml                     the same with /usr/bin/pgbackrest (Debian's 2.45)
#   topology.env                          KEY=VALUE lines, split at the first '='
#
# Every pgBackRest command of a pod runs with --config-path=DIR/<pod>/etc/pgbackrest: no
# pgbackrest.conf there, so pgBackRest reads conf.d/*.conf, as on PGO's pods. Where this differs
# from PGO, and why: each pod has its own lock-path (PGO: the default /tmp/pgbackrest, one per pod;
# here the pods share a machine); repo1-host-config-path and pg1-host-config-path name the other
# pod's config path (PGO: the default, /etc/pgbackrest, on every pod); the servers listen on 127.0.0.1 on ports of their own (PGO:
# 0.0.0.0:8432 on every pod), so the clients name the port (repo1-host-port, pg1-host-port) and the
# host 127.0.0.1 (PGO: the pods' DNS names); start-fast=y (PGO: spec.backups.pgbackrest.global).
#
# Data, as make-cluster.sh: stanza "db"; a full backup; database "api" with table events: ids
# 1..100 phase 'before', then TARGET (UTC, "YYYY-MM-DD HH:MM:SS.ffffff+00"), then ids 101..200
# phase 'after'; an incremental backup; the WAL holding the 'after' commits archived.
#
# Progress goes to stderr. On failure what was started is stopped and DIR is left for inspection.
# tests/support/stop-cluster.sh --dir DIR [--remove] stops everything (and removes DIR).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT_LOG_TAG="make-pgo-topology"
# shellcheck source=tests/lib/common.sh
source "${HERE}/../lib/common.sh"

readonly BINDIR="/usr/lib/postgresql/15/bin"
readonly STANZA="db"
readonly ROWS_BEFORE=100
readonly ROWS_AFTER=100
readonly DEBIAN_PGBACKREST="/usr/bin/pgbackrest"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
}

if [[ "${EUID}" -eq 0 ]]; then
    die "refusing to run as root: PostgreSQL refuses root. Run it as an ordinary user, e.g. runuser -u agentci -- $0 $*"
fi

DIR=""
PGBACKREST_BIN=""
BACKUP_FROM="db"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR="$2"; shift 2 ;;
        --dir=*) DIR="${1#--dir=}"; shift ;;
        --pgbackrest) [[ $# -ge 2 ]] || die "--pgbackrest needs a value"; PGBACKREST_BIN="$2"; shift 2 ;;
        --pgbackrest=*) PGBACKREST_BIN="${1#--pgbackrest=}"; shift ;;
        --backup-from) [[ $# -ge 2 ]] || die "--backup-from needs a value"; BACKUP_FROM="$2"; shift 2 ;;
        --backup-from=*) BACKUP_FROM="${1#--backup-from=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
done
[[ -n "${DIR}" ]] || { usage; die "--dir is required"; }
[[ -n "${PGBACKREST_BIN}" ]] || { usage; die "--pgbackrest is required (tests/support/build-pgbackrest.sh prints one)"; }
[[ "${BACKUP_FROM}" == "db" || "${BACKUP_FROM}" == "repo" ]] || die "--backup-from must be db or repo, got '${BACKUP_FROM}'"
PGBACKREST_BIN="$(realpath -e -- "${PGBACKREST_BIN}")" || die "--pgbackrest: no such file"
[[ -x "${PGBACKREST_BIN}" ]] || die "${PGBACKREST_BIN} is not executable"
PGBACKREST_VERSION="$("${PGBACKREST_BIN}" version)" || die "${PGBACKREST_BIN} version failed"

# The path ends up unquoted in configs, archive_command, YAML and topology.env.
DIR="$(realpath -m -- "${DIR}")"
[[ "${DIR}" =~ ^/[A-Za-z0-9._/+-]*$ ]] \
    || die "DIR '${DIR}' contains characters that are not safe in config files (allowed: A-Z a-z 0-9 . _ - + /)"
[[ "${DIR}" != "/" ]] || die "DIR must not be /"
if [[ -e "${DIR}" ]]; then
    [[ -d "${DIR}" && -z "$(ls -A -- "${DIR}")" ]] || die "${DIR} must be absent or an empty directory"
fi
((${#DIR} + 30 <= 107)) || die "DIR is too long for a Unix socket path; use a shorter DIR"
for tool in initdb pg_ctl psql postgres; do
    [[ -x "${BINDIR}/${tool}" ]] || die "${BINDIR}/${tool} not found (is postgresql-15 installed?)"
done
command -v openssl >/dev/null 2>&1 || die "openssl not found (Debian package openssl)"

unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGSERVICEFILE PGPASSWORD PGOPTIONS PGDATA PGTZ
while IFS= read -r var; do
    unset "${var}"
done < <(compgen -e | grep '^PGBACKREST_' || true)

# --- free TCP ports (as make-cluster.sh) ------------------------------------------------------
port_is_free() {
    python3 - "$1" <<'PYEOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PYEOF
}
# free_port EXCLUDED...: a port in 20000..32767, below the kernel's ephemeral range.
free_port() {
    local exclude=" $* " candidate i
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
command -v python3 >/dev/null 2>&1 || die "python3 not found"
PORT="$(free_port)" || die "no free TCP port"
SCRATCH_PORT="$(free_port "${PORT}")" || die "no free TCP port"
DB_SERVER_PORT="$(free_port "${PORT}" "${SCRATCH_PORT}")" || die "no free TCP port"
REPO_SERVER_PORT="$(free_port "${PORT}" "${SCRATCH_PORT}" "${DB_SERVER_PORT}")" || die "no free TCP port"

# --- layout -----------------------------------------------------------------------------------
readonly DB="${DIR}/db"
readonly REPO="${DIR}/repo"
readonly DB_CONFIG_PATH="${DB}/etc/pgbackrest"
readonly REPO_CONFIG_PATH="${REPO}/etc/pgbackrest"
readonly DB_CONFIG="${DB_CONFIG_PATH}/conf.d/pgbackrest_instance.conf"
readonly REPO_CONFIG="${REPO_CONFIG_PATH}/conf.d/pgbackrest_repo.conf"
readonly DATA="${DB}/pgdata/pg15"
readonly SOCKET_DIR="${DB}/run"
readonly REPO_PATH="${REPO}/pgbackrest/repo1"
readonly POSTGRES_LOG="${DB}/postgres.log"
readonly SCRATCH="${DB}/pgdata/restore"
readonly OUTPUT_DIR="${DB}/out"
CLUSTER_UID="$(cat /proc/sys/kernel/random/uuid)"
readonly CLUSTER_UID

# --- failure handling -------------------------------------------------------------------------
WORK_LOG="$(mktemp)"
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ ${rc} -ne 0 ]]; then
        local f
        for f in "${POSTGRES_LOG}" "${DB}/server.log" "${REPO}/server.log"; do
            if [[ -s "${f}" ]]; then
                printf '%s: last lines of %s:\n' "${AGENT_LOG_TAG}" "${f}" >&2
                tail -n 10 "${f}" >&2 || true
            fi
        done
        bash "${HERE}/stop-cluster.sh" --dir "${DIR}" >&2 || true
        printf '%s: FAILED (exit %s); %s left for inspection\n' "${AGENT_LOG_TAG}" "${rc}" "${DIR}" >&2
    fi
    rm -f -- "${WORK_LOG}"
    exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run CMD...: output captured, shown only when the command fails.
run() {
    local rc=0
    "$@" >"${WORK_LOG}" 2>&1 || rc=$?
    if ((rc != 0)); then
        printf '%s: command failed (exit %s): %s\n' "${AGENT_LOG_TAG}" "${rc}" "$*" >&2
        cat "${WORK_LOG}" >&2
        return "${rc}"
    fi
}
# pgBackRest as each pod runs it.
pgbr_db() { run "${PGBACKREST_BIN}" --config-path="${DB_CONFIG_PATH}" --stanza="${STANZA}" "$@"; }
pgbr_repo() { run "${PGBACKREST_BIN}" --config-path="${REPO_CONFIG_PATH}" --stanza="${STANZA}" "$@"; }
pgbr_backup_side() {
    if [[ "${BACKUP_FROM}" == "db" ]]; then pgbr_db "$@"; else pgbr_repo "$@"; fi
}
sql() {
    local db="$1" out
    shift
    if ! out="$("${BINDIR}/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "${SOCKET_DIR}" -p "${PORT}" -U postgres \
        -d "${db}" "$@" 2>&1)"; then
        printf '%s: SQL failed on database %s: %s\n%s\n' "${AGENT_LOG_TAG}" "${db}" "$*" "${out}" >&2
        return 1
    fi
    printf '%s' "${out}"
}

log "building PGO's repo-host topology in ${DIR} with ${PGBACKREST_VERSION} (postgres ${PORT}, TLS servers: database pod ${DB_SERVER_PORT}, repository host ${REPO_SERVER_PORT}; backups from the ${BACKUP_FROM} side)"
mkdir -p -- "${DIR}"
: >"${DIR}/.make-cluster" # stop-cluster.sh --remove deletes only directories with this marker
umask 077
mkdir -p -- "${DIR}/ca" "${OUTPUT_DIR}" "${DB}/pgdata/pgbackrest/log" "${DB}/pgdata/pgbackrest-spool" "${DB}/lock" \
    "${REPO_PATH}/log" "${REPO}/lock" "${SOCKET_DIR}"
for pod in "${DB}" "${REPO}"; do
    mkdir -p -- "${pod}/etc/pgbackrest/conf.d/~postgres-operator" "${pod}/etc/pgbackrest/server"
done

# --- certificates (PGO: ECDSA P-256; client CN pgbackrest@<cluster UID>) ------------------------
log "certificates: CA, a server certificate per pod, the client certificate CN=pgbackrest@${CLUSTER_UID}"
run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=postgres-operator-ca" -keyout "${DIR}/ca/ca.key" -out "${DIR}/ca/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# issue KEY CRT CN EXTENSIONS
issue() {
    local key="$1" crt="$2" cn="$3" extensions="$4"
    run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=${cn}" \
        -keyout "${key}" -out "${crt}.csr"
    printf '%b' "${extensions}" >"${crt}.ext"
    run openssl x509 -req -in "${crt}.csr" -CA "${DIR}/ca/ca.crt" -CAkey "${DIR}/ca/ca.key" -CAcreateserial \
        -days 2 -extfile "${crt}.ext" -out "${crt}"
    rm -f -- "${crt}.csr" "${crt}.ext"
    chmod 0600 "${key}" # pgBackRest refuses a key others can read
}
for pod in "${DB}" "${REPO}"; do
    cp -- "${DIR}/ca/ca.crt" "${pod}/etc/pgbackrest/conf.d/~postgres-operator/tls-ca.crt"
    issue "${pod}/etc/pgbackrest/server/server-tls.key" "${pod}/etc/pgbackrest/server/server-tls.crt" "127.0.0.1" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:127.0.0.1,IP:127.0.0.1,DNS:localhost\n"
    issue "${pod}/etc/pgbackrest/conf.d/~postgres-operator/client-tls.key" \
        "${pod}/etc/pgbackrest/conf.d/~postgres-operator/client-tls.crt" "pgbackrest@${CLUSTER_UID}" \
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
done

# --- configs ----------------------------------------------------------------------------------
# server_config POD PORT: PGO's ~postgres-operator_server.conf.
server_config() {
    local pod="$1" port="$2"
    cat >"${pod}/etc/pgbackrest/conf.d/~postgres-operator_server.conf" <<EOF
# PGO's ~postgres-operator_server.conf; here: 127.0.0.1 and a port of its own (PGO: 0.0.0.0:8432)
[global]
tls-server-address = 127.0.0.1
tls-server-port = ${port}
tls-server-auth = pgbackrest@${CLUSTER_UID}=*
tls-server-ca-file = ${pod}/etc/pgbackrest/conf.d/~postgres-operator/tls-ca.crt
tls-server-cert-file = ${pod}/etc/pgbackrest/server/server-tls.crt
tls-server-key-file = ${pod}/etc/pgbackrest/server/server-tls.key

[global:server]
log-level-console = detail
log-level-file = off
log-level-stderr = error
log-timestamp = n
EOF
}
server_config "${DB}" "${DB_SERVER_PORT}"
server_config "${REPO}" "${REPO_SERVER_PORT}"

readonly DB_CERTS="${DB_CONFIG_PATH}/conf.d/~postgres-operator"
readonly REPO_CERTS="${REPO_CONFIG_PATH}/conf.d/~postgres-operator"
cat >"${DB_CONFIG}" <<EOF
# PGO's pgbackrest_instance.conf (database pod), paths under ${DIR}
[global]
archive-async = y
log-path = ${DB}/pgdata/pgbackrest/log
repo1-host = 127.0.0.1
repo1-host-port = ${REPO_SERVER_PORT}
repo1-host-ca-file = ${DB_CERTS}/tls-ca.crt
repo1-host-cert-file = ${DB_CERTS}/client-tls.crt
repo1-host-key-file = ${DB_CERTS}/client-tls.key
repo1-host-type = tls
repo1-host-user = $(id -un)
repo1-host-config-path = ${REPO_CONFIG_PATH}
repo1-path = ${REPO_PATH}
spool-path = ${DB}/pgdata/pgbackrest-spool
lock-path = ${DB}/lock
start-fast = y

[${STANZA}]
pg1-path = ${DATA}
pg1-port = ${PORT}
pg1-socket-path = ${SOCKET_DIR}
pg1-user = postgres
EOF

cat >"${REPO_CONFIG}" <<EOF
# PGO's pgbackrest_repo.conf (repository host), paths under ${DIR}
[global]
log-path = ${REPO_PATH}/log
repo1-path = ${REPO_PATH}
lock-path = ${REPO}/lock
start-fast = y

[${STANZA}]
pg1-host = 127.0.0.1
pg1-host-port = ${DB_SERVER_PORT}
pg1-host-ca-file = ${REPO_CERTS}/tls-ca.crt
pg1-host-cert-file = ${REPO_CERTS}/client-tls.crt
pg1-host-key-file = ${REPO_CERTS}/client-tls.key
pg1-host-type = tls
pg1-host-config-path = ${DB_CONFIG_PATH}
pg1-path = ${DATA}
pg1-port = ${PORT}
pg1-socket-path = ${SOCKET_DIR}
pg1-user = postgres
EOF
umask 022

# --- the two TLS servers ----------------------------------------------------------------------
# start_server POD PORT: `pgbackrest server` in a session of its own, its pid in POD/server.pid.
start_server() {
    local pod="$1" port="$2" i
    setsid "${PGBACKREST_BIN}" --config-path="${pod}/etc/pgbackrest" server </dev/null >>"${pod}/server.log" 2>&1 &
    printf '%s\n' "$!" >"${pod}/server.pid"
    for ((i = 0; i < 100; i++)); do
        if ! port_is_free "${port}"; then
            return 0
        fi
        kill -0 "$(cat "${pod}/server.pid")" 2>/dev/null || die "pgbackrest server of ${pod} exited: $(tail -n 5 "${pod}/server.log")"
        sleep 0.1
    done
    die "pgbackrest server of ${pod} does not listen on ${port} after 10 s"
}
log "starting pgbackrest server on the repository host (${REPO_SERVER_PORT}) and the database pod (${DB_SERVER_PORT})"
start_server "${REPO}" "${REPO_SERVER_PORT}"
start_server "${DB}" "${DB_SERVER_PORT}"
run "${PGBACKREST_BIN}" --config-path="${DB_CONFIG_PATH}" --tls-server-port="${REPO_SERVER_PORT}" server-ping 127.0.0.1

# --- the database pod's PostgreSQL --------------------------------------------------------------
log "initdb ${DATA}"
mkdir -p -- "$(dirname -- "${DATA}")"
run "${BINDIR}/initdb" -D "${DATA}" -U postgres --auth=trust -E UTF8 --locale=C --no-instructions
readonly PGBR_DB_WORDS="${PGBACKREST_BIN} --config-path=${DB_CONFIG_PATH} --stanza=${STANZA}"
cat >>"${DATA}/postgresql.conf" <<EOF

# --- added by tests/support/make-pgo-topology.sh ---
port = ${PORT}
listen_addresses = '127.0.0.1'
unix_socket_directories = '${SOCKET_DIR}'
wal_level = replica
archive_mode = on
archive_command = '${PGBR_DB_WORDS} archive-push "%p"'
restore_command = '${PGBR_DB_WORDS} archive-get %f "%p"'
timezone = 'America/Vancouver'
max_wal_senders = 5
EOF
log "starting PostgreSQL"
run "${BINDIR}/pg_ctl" -D "${DATA}" -l "${POSTGRES_LOG}" -w -t 120 start

# --- stanza, backups and data -----------------------------------------------------------------
log "stanza-create and check (from the ${BACKUP_FROM} side)"
pgbr_backup_side stanza-create
pgbr_backup_side check
log "full backup (from the ${BACKUP_FROM} side)"
pgbr_backup_side --type=full backup

log "database api, table events, rows 1..${ROWS_BEFORE}"
sql postgres -c "CREATE DATABASE api" >/dev/null
sql api -c "CREATE TABLE events(id int primary key, phase text not null, created_at timestamptz not null default clock_timestamp())" >/dev/null
insert_rows() {
    local first="$1" last="$2" phase="$3" lo hi
    for ((lo = first; lo <= last; lo += 10)); do
        hi=$((lo + 9 > last ? last : lo + 9))
        printf "INSERT INTO events(id, phase) SELECT g, '%s' FROM generate_series(%d, %d) g;\n" "${phase}" "${lo}" "${hi}"
    done | sql api >/dev/null
}
insert_rows 1 "${ROWS_BEFORE}" before
sleep 1.2
TARGET="$(sql postgres -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")"
[[ "${TARGET}" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00$ ]] || die "unexpected TARGET '${TARGET}'"
log "TARGET=${TARGET}"
sleep 1.2
log "rows $((ROWS_BEFORE + 1))..$((ROWS_BEFORE + ROWS_AFTER))"
insert_rows $((ROWS_BEFORE + 1)) $((ROWS_BEFORE + ROWS_AFTER)) after
AFTER_WAL="$(sql postgres -c "SELECT pg_walfile_name(pg_current_wal_lsn())")"
log "incremental backup (from the ${BACKUP_FROM} side)"
pgbr_backup_side --type=incr backup
# The backup's stop switched WAL; `check` switches once more and waits for it to be archived.
pgbr_backup_side check
archived=""
for ((i = 0; i < 120; i++)); do
    archived="$(sql postgres -c "SELECT coalesce(substr(last_archived_wal, 1, 24), '') FROM pg_stat_archiver")"
    [[ -n "${archived}" && ! "${archived}" < "${AFTER_WAL}" ]] && break
    sleep 0.5
done
[[ -n "${archived}" && ! "${archived}" < "${AFTER_WAL}" ]] \
    || die "WAL ${AFTER_WAL} was not archived within 60 s (last archived: '${archived}')"

# --- outputs ----------------------------------------------------------------------------------
# agent_config FILE BIN
agent_config() {
    cat >"$1" <<EOF
stanza: ${STANZA}
state_dir: ${DB}/agent-state
pgbackrest:
  bin: $2
  # As in PGO's pods (there /etc/pgbackrest): no pgbackrest.conf, pgBackRest reads conf.d itself.
  config_path: ${DB_CONFIG_PATH}
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
disk:
  live_paths: ${DB}/pgdata/pgbackrest-spool
EOF
}
agent_config "${DIR}/agent.yaml" "${PGBACKREST_BIN}"
agent_config "${DIR}/agent-debian.yaml" "${DEBIAN_PGBACKREST}"

cat >"${DIR}/topology.env" <<EOF
DIR=${DIR}
PGBACKREST_BIN=${PGBACKREST_BIN}
PGBACKREST_VERSION=${PGBACKREST_VERSION}
DEBIAN_PGBACKREST=${DEBIAN_PGBACKREST}
BACKUP_FROM=${BACKUP_FROM}
CLUSTER_UID=${CLUSTER_UID}
DB_CONFIG_PATH=${DB_CONFIG_PATH}
REPO_CONFIG_PATH=${REPO_CONFIG_PATH}
DB_CONFIG=${DB_CONFIG}
REPO_CONFIG=${REPO_CONFIG}
DB_SERVER_PORT=${DB_SERVER_PORT}
REPO_SERVER_PORT=${REPO_SERVER_PORT}
REPO_PATH=${REPO_PATH}
DATA=${DATA}
PORT=${PORT}
SOCKET_DIR=${SOCKET_DIR}
BINDIR=${BINDIR}
STANZA=${STANZA}
TARGET=${TARGET}
ROWS_BEFORE=${ROWS_BEFORE}
ROWS_AFTER=${ROWS_AFTER}
AGENT_CONFIG=${DIR}/agent.yaml
AGENT_CONFIG_DEBIAN=${DIR}/agent-debian.yaml
SCRATCH=${SCRATCH}
SCRATCH_PORT=${SCRATCH_PORT}
OUTPUT_DIR=${OUTPUT_DIR}
POSTGRES_LOG=${POSTGRES_LOG}
EOF
log "ready: ${DIR}/topology.env (TARGET=${TARGET})"
