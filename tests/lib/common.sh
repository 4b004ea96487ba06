# shellcheck shell=bash
# Helpers shared by tests/run-all.sh and tests/demo.sh. Source it, do not run it.
#
#   ensure_packages            install missing Debian packages (apt-get / sudo -n)
#   drop_privileges_if_root    as root: re-exec the calling script as user agentci
#   build_agent                configure + build into build/ (binary: build/bin/agent)
#   read_cluster_env FILE      load a make-cluster.sh cluster.env into CLUSTER[KEY]
#   check_dump DUMP [B] [A]    verify events ids 1..B 'before' present, B+1..B+A absent

if [[ -n "${AGENT_COMMON_SH_LOADED:-}" ]]; then
    return 0
fi
AGENT_COMMON_SH_LOADED=1

# Checkout root (this file is tests/lib/common.sh) and the script that sourced
# us, resolved now, before the caller has a chance to cd elsewhere.
AGENT_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
AGENT_CALLER_SCRIPT="$(realpath -e -- "${BASH_SOURCE[1]:-$0}" 2>/dev/null || true)"
AGENT_CI_USER="agentci"
AGENT_CI_HOME="/home/${AGENT_CI_USER}"
AGENT_SAFE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# pgBackRest from source (tests/support/build-pgbackrest.sh): PGO ships 2.56.0, Debian 2.45.
AGENT_PGBACKREST_BUILD_PACKAGES=(
    meson ninja-build libpq-dev libssl-dev libxml2-dev libyaml-dev zlib1g-dev liblz4-dev
    libzstd-dev libbz2-dev libssh2-1-dev
)

AGENT_PACKAGES=(
    build-essential cmake pkg-config postgresql-15 pgbackrest libpqxx-dev libpq-dev
    prometheus-cpp-dev libyaml-cpp-dev libspdlog-dev libboost-dev
    libboost-system-dev libboost-filesystem-dev nlohmann-json3-dev
    libhowardhinnant-date-dev libcli11-dev libgtest-dev libgmock-dev libssl-dev libxxhash-dev
    libzstd-dev zstd  # --compress zstd, and the test that decompresses it
    xxhash libeatmydata1
    clang-format tzdata util-linux procps prometheus
    kubectl nodejs  # the manifests test: kubectl kustomize, then schema checks with node (and its npm)
    clang libclang-rt-14-dev llvm-14  # the fuzz tests: clang++, libFuzzer and the sanitizers, llvm-symbolizer
    openssl  # the PGO topology test makes its TLS certificates
    ccache  # every build the tests make recompiles only what changed since the last run
    "${AGENT_PGBACKREST_BUILD_PACKAGES[@]}"
)

log() { printf '[%s] %s\n' "${AGENT_LOG_TAG:-agent-tests}" "$*" >&2; }
die() { printf '%s: error: %s\n' "${AGENT_LOG_TAG:-agent-tests}" "$*" >&2; exit 1; }

# ensure_packages: installs whatever dpkg-query does not report as installed.
ensure_packages() {
    local missing=() pkg status
    for pkg in "${AGENT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null || true)"
        [[ "${status}" == "installed" ]] || missing+=("${pkg}")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi

    local -a elevate=()
    if [[ "${EUID}" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
            elevate=(sudo -n)
        else
            printf '%s: error: missing Debian packages: %s\n' "${AGENT_LOG_TAG:-agent-tests}" "${missing[*]}" >&2
            printf 'Install them as root, then re-run:\n  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y %s\n' \
                "${missing[*]}" >&2
            exit 1
        fi
    fi

    log "installing missing packages: ${missing[*]}"
    "${elevate[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
        || die "apt-get update failed"
    "${elevate[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
        || die "apt-get install failed for: ${missing[*]}"
}

# use_compiler_cache: every build the tests make (build/, build/asan, build/fuzz) goes through
# ccache. CMake takes a fresh build directory's compiler launcher from these variables, so a
# clean clone recompiles only what changed since the last run. Paths are taken relative to the
# checkout, so a clone elsewhere hits the same entries. AGENT_CCACHE=0 turns it off.
use_compiler_cache() {
    [[ "${AGENT_CCACHE:-1}" != "0" ]] && command -v ccache >/dev/null 2>&1 || return 0
    export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache
    export CCACHE_BASEDIR="${AGENT_REPO_ROOT}" CCACHE_NOHASHDIR=1
}

# compiler_cache_counts: "HITS MISSES" of the compiler cache so far ("0 0" without one).
compiler_cache_counts() {
    if [[ -z "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]]; then
        echo "0 0"
        return 0
    fi
    ccache --print-stats 2>/dev/null | awk -F'\t' '
        $1 == "direct_cache_hit" || $1 == "preprocessed_cache_hit" { hits += $2 }
        $1 == "cache_miss" { misses += $2 }
        END { printf "%d %d\n", hits, misses }'
}

# compiler_cache_summary "HITS MISSES": one line on what the cache saved since those counts.
compiler_cache_summary() {
    [[ -n "${CMAKE_CXX_COMPILER_LAUNCHER:-}" ]] || return 0
    local before_hits before_misses hits misses
    read -r before_hits before_misses <<<"$1"
    read -r hits misses < <(compiler_cache_counts)
    log "compiler cache $(ccache --get-config cache_dir): $((hits - before_hits)) compilations reused, $((misses - before_misses)) compiled"
}

# ensure_ci_user: as root, creates the unprivileged user the tests run as.
ensure_ci_user() {
    if ! id -u "${AGENT_CI_USER}" >/dev/null 2>&1; then
        log "creating system user ${AGENT_CI_USER}"
        useradd --system --user-group --create-home --home-dir "${AGENT_CI_HOME}" \
            --shell /bin/bash "${AGENT_CI_USER}" \
            || die "useradd ${AGENT_CI_USER} failed"
    fi
}

# drop_privileges_if_root "$@": as root, re-execs the calling script as
# ${AGENT_CI_USER} with the same arguments (never returns). Otherwise no-op.
drop_privileges_if_root() {
    if [[ "${EUID}" -ne 0 ]]; then
        return 0
    fi
    if [[ -n "${AGENT_CI_DROPPED:-}" ]]; then
        die "still root after re-executing as ${AGENT_CI_USER}; refusing to loop"
    fi
    [[ -n "${AGENT_CALLER_SCRIPT}" && -f "${AGENT_CALLER_SCRIPT}" ]] \
        || die "cannot tell which script to re-execute (got '${AGENT_CALLER_SCRIPT}')"
    command -v runuser >/dev/null 2>&1 || die "runuser not found (package util-linux)"

    ensure_ci_user
    local home
    home="$(getent passwd "${AGENT_CI_USER}" | cut -d: -f6)"
    [[ -n "${home}" ]] || home="${AGENT_CI_HOME}"
    if [[ ! -d "${home}" ]]; then
        mkdir -p -- "${home}"
        chown "${AGENT_CI_USER}:" "${home}"
    fi

    as_ci() { runuser -u "${AGENT_CI_USER}" -- "$@"; }

    # Every directory from / down to the checkout must be traversable; check
    # top-down so the message names the first one that is not.
    local dir="${AGENT_REPO_ROOT}"
    local -a chain=()
    while :; do
        chain=("${dir}" "${chain[@]}")
        [[ "${dir}" != "/" ]] || break
        dir="$(dirname -- "${dir}")"
    done
    for dir in "${chain[@]}"; do
        if ! as_ci test -x "${dir}"; then
            die "user ${AGENT_CI_USER} cannot traverse ${dir} (mode $(stat -c '%A %U:%G' "${dir}")); the checkout ${AGENT_REPO_ROOT} must be reachable by other users, e.g. chmod o+x ${dir}, or clone it somewhere else such as /srv or /tmp"
        fi
    done
    # ...and everything in it (but build/ and .git/) readable.
    local bad
    bad="$(as_ci find "${AGENT_REPO_ROOT}" \
        \( -path "${AGENT_REPO_ROOT}/build" -o -path "${AGENT_REPO_ROOT}/.git" \) -prune -o \
        \( ! -readable -o \( -type d ! -executable \) \) -print -quit 2>&1 || true)"
    if [[ -n "${bad}" ]]; then
        die "user ${AGENT_CI_USER} cannot read ${bad} in the checkout; make the checkout world-readable (chmod -R o+rX ${AGENT_REPO_ROOT})"
    fi

    mkdir -p -- "${AGENT_REPO_ROOT}/build"
    chown -R "${AGENT_CI_USER}:" "${AGENT_REPO_ROOT}/build"

    local -a unset_env=(-u XDG_RUNTIME_DIR -u MAIL)
    if [[ -n "${TMPDIR:-}" ]] && ! as_ci test -w "${TMPDIR}"; then
        unset_env+=(-u TMPDIR)
    fi

    log "running ${AGENT_CALLER_SCRIPT#"${AGENT_REPO_ROOT}/"} as ${AGENT_CI_USER}"
    cd "${AGENT_REPO_ROOT}" || die "cannot cd to ${AGENT_REPO_ROOT}"
    exec runuser -u "${AGENT_CI_USER}" -- env "${unset_env[@]}" \
        HOME="${home}" USER="${AGENT_CI_USER}" LOGNAME="${AGENT_CI_USER}" \
        PATH="${AGENT_SAFE_PATH}" CI="${CI:-}" AGENT_CI_DROPPED=1 \
        bash "${AGENT_CALLER_SCRIPT}" "$@"
}

# build_agent [TARGET]: configures and builds the checkout (or one target) into build/.
build_agent() {
    local jobs
    jobs="$(nproc)"
    local -a generator=()
    # Only pick a generator for a fresh build dir: CMake refuses to switch.
    if [[ ! -f "${AGENT_REPO_ROOT}/build/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
        generator=(-G Ninja)
    fi
    log "configuring (build/)"
    cmake -S "${AGENT_REPO_ROOT}" -B "${AGENT_REPO_ROOT}/build" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAGENT_WARNINGS_AS_ERRORS=ON "${generator[@]}" \
        || die "cmake configure failed"
    log "building ${1:-everything} with ${jobs} jobs"
    cmake --build "${AGENT_REPO_ROOT}/build" -j "${jobs}" ${1:+--target "$1"} || die "build failed"
    [[ -x "${AGENT_REPO_ROOT}/build/bin/agent" ]] \
        || die "build succeeded but ${AGENT_REPO_ROOT}/build/bin/agent is missing"
}

# read_cluster_env FILE: fills the global associative array CLUSTER from
# KEY=VALUE lines (split at the first '=', no quoting, # comments ignored).
read_cluster_env() {
    local file="$1" key value
    [[ -r "${file}" ]] || die "cannot read ${file}"
    # shellcheck disable=SC2034  # used by the scripts that source this file
    declare -gA CLUSTER=()
    while IFS='=' read -r key value || [[ -n "${key}" ]]; do
        [[ -n "${key}" && "${key}" != \#* ]] || continue
        # shellcheck disable=SC2034
        CLUSTER["${key}"]="${value}"
    done <"${file}"
}

# check_dump DUMP [ROWS_BEFORE] [ROWS_AFTER]
# Reads the COPY block of public.events in a plain pg_dump: every id
# 1..ROWS_BEFORE must be there with phase 'before'; no id in
# ROWS_BEFORE+1..ROWS_BEFORE+ROWS_AFTER and no phase 'after' may be.
# Prints one summary line on stdout; returns 1 (with reasons on stderr) if not.
check_dump() {
    local dump="$1" before="${2:-100}" after="${3:-100}"
    [[ -r "${dump}" ]] || { printf 'check_dump: cannot read %s\n' "${dump}" >&2; return 1; }
    awk -v nb="${before}" -v na="${after}" -v file="${dump}" '
        function csv_index(cols, name,    n, i, parts) {
            n = split(cols, parts, /, */)
            for (i = 1; i <= n; i++) if (parts[i] == name) return i
            return 0
        }
        /^COPY (public\.)?"?events"? \(/ && !done {
            cols = $0
            sub(/^[^(]*\(/, "", cols); sub(/\).*$/, "", cols)
            id_col = csv_index(cols, "id"); phase_col = csv_index(cols, "phase")
            in_copy = 1; found_block = 1
            next
        }
        in_copy && /^\\\.$/ { in_copy = 0; done = 1; next }
        in_copy {
            split($0, f, "\t")
            rows++
            id = f[id_col]; phase = f[phase_col]
            if (id in seen) dup++
            seen[id] = phase
            if (phase == "before") n_before++
            else if (phase == "after") n_after++
            else other++
        }
        END {
            bad = 0
            if (!found_block) { print "check_dump: no COPY block for table events in " file > "/dev/stderr"; exit 1 }
            if (!id_col || !phase_col) { print "check_dump: events COPY block lacks id/phase columns" > "/dev/stderr"; exit 1 }
            if (in_copy) { print "check_dump: events COPY block is not terminated (truncated dump?)" > "/dev/stderr"; bad = 1 }
            missing = 0; wrong = 0; present_after = 0; list = ""
            for (i = 1; i <= nb; i++) {
                if (!(i in seen)) { missing++; if (missing <= 10) list = list " " i }
                else if (seen[i] != "before") wrong++
            }
            if (missing) { printf "check_dump: %d of ids 1..%d missing:%s%s\n", missing, nb, list, (missing > 10 ? " ..." : "") > "/dev/stderr"; bad = 1 }
            if (wrong) { printf "check_dump: %d of ids 1..%d do not have phase before\n", wrong, nb > "/dev/stderr"; bad = 1 }
            list = ""
            for (i = nb + 1; i <= nb + na; i++) if (i in seen) { present_after++; if (present_after <= 10) list = list " " i }
            if (present_after) { printf "check_dump: %d ids from after the target present:%s%s\n", present_after, list, (present_after > 10 ? " ..." : "") > "/dev/stderr"; bad = 1 }
            if (n_after) { printf "check_dump: %d rows with phase after\n", n_after > "/dev/stderr"; bad = 1 }
            if (dup) { printf "check_dump: %d duplicate ids\n", dup > "/dev/stderr"; bad = 1 }
            if (bad) exit 1
            printf "events: %d rows, %d before (ids 1..%d all present), 0 after\n", rows, n_before, nb
        }
    ' "${dump}"
}
