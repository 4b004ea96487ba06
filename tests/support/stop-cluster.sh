#!/usr/bin/env bash
# Stops a cluster made by make-cluster.sh, and anything else running from it.
#
#   tests/support/stop-cluster.sh --dir DIR [--remove]
#
# 1. pg_ctl -m fast stop on every data directory under DIR with a
#    postmaster.pid (DIR/data; make-pgo-topology.sh's DIR/db/pgdata/pg15),
#    while the pgBackRest servers it may archive through still run;
# 2. any postgres/pgbackrest process whose command line mentions DIR (e.g.
#    scratch restores under DIR, a stuck archive-push, `pgbackrest server`)
#    gets SIGINT/SIGTERM, then SIGQUIT, then SIGKILL; again, until none is
#    left (an asynchronous archive-push can start while the first ones stop);
# 3. with --remove, deletes DIR (only if it was made by make-cluster.sh or is
#    empty).
# Idempotent: succeeds when nothing runs or DIR does not exist.
set -euo pipefail

readonly PROG="stop-cluster"
readonly BINDIR="/usr/lib/postgresql/15/bin"

log() { printf '[%s] %s\n' "${PROG}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${PROG}" "$*" >&2; exit 1; }

DIR=""
REMOVE=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) [[ $# -ge 2 ]] || die "--dir needs a value"; DIR="$2"; shift 2 ;;
        --dir=*) DIR="${1#--dir=}"; shift ;;
        --remove) REMOVE=1; shift ;;
        -h|--help) printf 'usage: stop-cluster.sh --dir DIR [--remove]\n' >&2; exit 0 ;;
        *) die "unknown argument: $1 (usage: stop-cluster.sh --dir DIR [--remove])" ;;
    esac
done
[[ -n "${DIR}" ]] || die "--dir is required"
DIR="$(realpath -m -- "${DIR}")"
[[ "${DIR}" != "/" ]] || die "refusing to work on /"

# pg_ctl refuses root: as root, run it as the owner of the data directory.
pg_ctl_stop() {
    local data="$1" owner
    local -a as_owner=()
    if [[ "${EUID}" -eq 0 ]]; then
        owner="$(stat -c %U -- "${data}" 2>/dev/null || true)"
        if [[ -z "${owner}" || "${owner}" == "root" || "${owner}" == "UNKNOWN" ]]; then
            return 1
        fi
        as_owner=(runuser -u "${owner}" --)
    fi
    "${as_owner[@]}" "${BINDIR}/pg_ctl" -D "${data}" -m fast -w -t 30 stop >/dev/null 2>&1
}

if [[ -d "${DIR}" ]]; then
    while IFS= read -r pid_file; do
        data="$(dirname -- "${pid_file}")"
        if pg_ctl_stop "${data}"; then
            log "stopped server of ${data}"
        fi
    done < <(find "${DIR}" -maxdepth 5 -name postmaster.pid -type f 2>/dev/null | sort)
fi

# PIDs of postgres/pgbackrest processes whose command line contains DIR as a
# path (followed by '/', a space or the end), excluding ourselves.
matching_pids() {
    local proc pid comm cmd
    for proc in /proc/[0-9]*; do
        pid="${proc#/proc/}"
        [[ "${pid}" != "$$" && "${pid}" != "${BASHPID}" ]] || continue
        comm=""
        read -r comm <"${proc}/comm" 2>/dev/null || continue  # a builtin: no fork per process
        case "${comm}" in
            postgres|postmaster|pgbackrest) ;;
            *) continue ;;
        esac
        cmd="$(tr '\0' ' ' <"${proc}/cmdline" 2>/dev/null)" || continue
        cmd=" ${cmd} "
        if [[ "${cmd}" == *[\ =]"${DIR}"[/\ ]* ]]; then
            printf '%s %s\n' "${pid}" "${comm}"
        fi
    done
}

# is_running PID: exists and is not a zombie (an orphaned postmaster stays a
# zombie until init reaps it, and kill -0 succeeds on zombies).
is_running() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != "Z" && "${stat:0:1}" != "X" ]]
}

# wait_gone SECONDS PID...: returns 0 once none of the PIDs is running.
wait_gone() {
    local deadline=$((SECONDS + $1)) pid alive
    shift
    while :; do
        alive=0
        for pid in "$@"; do
            if is_running "${pid}"; then
                alive=1
                break
            fi
        done
        ((alive)) || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

for ((round = 1; round <= 5; round++)); do
    mapfile -t found < <(matching_pids)
    [[ ${#found[@]} -gt 0 ]] || break
    pids=()
    for entry in "${found[@]}"; do
        pid="${entry%% *}"
        comm="${entry#* }"
        pids+=("${pid}")
        # postgres: SIGINT = fast shutdown; pgbackrest: SIGTERM.
        if [[ "${comm}" == "pgbackrest" ]]; then
            kill -TERM "${pid}" 2>/dev/null || true
        else
            kill -INT "${pid}" 2>/dev/null || true
        fi
    done
    log "signalled ${#pids[@]} process(es) using ${DIR}: ${pids[*]}"
    if ! wait_gone 15 "${pids[@]}"; then
        for pid in "${pids[@]}"; do kill -QUIT "${pid}" 2>/dev/null || true; done
        if ! wait_gone 5 "${pids[@]}"; then
            for pid in "${pids[@]}"; do kill -KILL "${pid}" 2>/dev/null || true; done
            wait_gone 5 "${pids[@]}" || log "warning: some processes survived SIGKILL: ${pids[*]}"
        fi
    fi
done

if [[ ${REMOVE} -eq 1 && -e "${DIR}" ]]; then
    if [[ ! -d "${DIR}" ]]; then
        die "${DIR} is not a directory; not removing it"
    fi
    if [[ -e "${DIR}/.make-cluster" || -z "$(ls -A -- "${DIR}")" ]]; then
        rm -rf -- "${DIR}"
        log "removed ${DIR}"
    else
        die "${DIR} was not made by make-cluster.sh (no .make-cluster marker); not removing it"
    fi
fi
exit 0
