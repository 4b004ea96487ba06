#!/usr/bin/env bash
# Builds pgBackRest from its source tarball with meson + ninja, once per version, and prints the
# path of the binary. A cached build whose `pgbackrest version` says VERSION is reused.
#
#   tests/support/build-pgbackrest.sh [--version V] [--source TARBALL] [--cache DIR] [--rebuild]
#
#   --version V       default $AGENT_PGBACKREST_VERSION, else 2.56.0 (what PGO 5.8 and 6.0 ship)
#   --source TARBALL  default $AGENT_PGBACKREST_SOURCE, else
#                     <the checkout's parent>/shared/sources/pgbackrest-V.tar.gz
#                     (the upstream release tarball, github.com/pgbackrest/pgbackrest, tag release/V),
#                     else the copy kept in CACHE/sources from an earlier run
#   --cache DIR       default $AGENT_PGBACKREST_CACHE, else /var/cache/agent-pgbackrest when it is
#                     writable (or can be created), else ${XDG_CACHE_HOME:-~/.cache}/agent/pgbackrest
#   --rebuild         build even when a cached binary works
#
# The binary is CACHE/V/bin/pgbackrest (mode 0755, its directories 0755, so that a build made by
# root serves every user: tests/run-all.sh builds it as root before it drops to agentci). Without
# --cache or $AGENT_PGBACKREST_CACHE, a working build in /var/cache/agent-pgbackrest is used
# before the per-user cache, whoever made it. CACHE/V/BUILD-INFO says what was built from what.
# Concurrent runs wait for each other (flock). Progress goes to stderr; stdout is the path only.
# Needs meson, ninja and the -dev packages of tests/lib/common.sh (AGENT_PGBACKREST_BUILD_PACKAGES).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
AGENT_LOG_TAG="build-pgbackrest"
# shellcheck source=tests/lib/common.sh
source "${HERE}/../lib/common.sh"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
}

VERSION="${AGENT_PGBACKREST_VERSION:-2.56.0}"
SOURCE="${AGENT_PGBACKREST_SOURCE:-}"
CACHE="${AGENT_PGBACKREST_CACHE:-}"
REBUILD=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --version) [[ $# -ge 2 ]] || die "--version needs a value"; VERSION="$2"; shift 2 ;;
        --version=*) VERSION="${1#--version=}"; shift ;;
        --source) [[ $# -ge 2 ]] || die "--source needs a value"; SOURCE="$2"; shift 2 ;;
        --source=*) SOURCE="${1#--source=}"; shift ;;
        --cache) [[ $# -ge 2 ]] || die "--cache needs a value"; CACHE="$2"; shift 2 ;;
        --cache=*) CACHE="${1#--cache=}"; shift ;;
        --rebuild) REBUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage; die "unknown argument: $1" ;;
    esac
done
[[ "${VERSION}" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "--version must look like 2.56.0, got '${VERSION}'"
[[ -n "${SOURCE}" ]] || SOURCE="$(dirname -- "${AGENT_REPO_ROOT}")/shared/sources/pgbackrest-${VERSION}.tar.gz"

readonly SYSTEM_CACHE="/var/cache/agent-pgbackrest"
# runuser and sudo may keep the caller's HOME: then the user's own home from passwd.
home="${HOME:-}"
if [[ -z "${home}" || ! -w "${home}" ]]; then
    home="$(getent passwd "$(id -u)" | cut -d: -f6)"
fi
USER_CACHE="${XDG_CACHE_HOME:-${home:-/nonexistent}/.cache}/agent/pgbackrest"

# works BINARY: the binary runs and says it is VERSION.
works() {
    local out
    [[ -x "$1" ]] || return 1
    out="$("$1" version 2>/dev/null)" || return 1
    [[ "${out}" == "pgBackRest ${VERSION}" ]]
}

# writable_cache DIR: DIR exists and is writable, or can be created.
writable_cache() {
    local dir="$1" parent
    if [[ -d "${dir}" ]]; then
        [[ -w "${dir}" ]]
        return
    fi
    parent="$(dirname -- "${dir}")"
    while [[ ! -d "${parent}" ]]; do parent="$(dirname -- "${parent}")"; done
    [[ -w "${parent}" ]]
}

# --- a cached build ---------------------------------------------------------------------------
if [[ -n "${CACHE}" ]]; then
    candidates=("${CACHE}")
else
    candidates=("${SYSTEM_CACHE}" "${USER_CACHE}")
fi

# --- the source, kept beside the builds -------------------------------------------------------
# A copy of the tarball stays in CACHE/sources, where a clone without ../shared (and
# container/build-image.sh, which builds the image's pgBackRest from it) finds it later.
source_name="pgbackrest-${VERSION}.tar.gz"
if [[ -r "${SOURCE}" ]]; then
    for dir in "${candidates[@]}"; do
        if [[ ! -f "${dir}/sources/${source_name}" ]] && writable_cache "${dir}"; then
            (umask 022 && mkdir -p -- "${dir}/sources" \
                && cp -- "${SOURCE}" "${dir}/sources/.${source_name}.$$" \
                && mv -- "${dir}/sources/.${source_name}.$$" "${dir}/sources/${source_name}") 2>/dev/null || true
            break
        fi
    done
else
    for dir in "${candidates[@]}"; do
        if [[ -r "${dir}/sources/${source_name}" ]]; then
            log "${SOURCE} not found; using the copy kept in ${dir}/sources"
            SOURCE="${dir}/sources/${source_name}"
            break
        fi
    done
fi
if ((REBUILD == 0)); then
    for dir in "${candidates[@]}"; do
        if works "${dir}/${VERSION}/bin/pgbackrest"; then
            printf '%s\n' "${dir}/${VERSION}/bin/pgbackrest"
            exit 0
        fi
    done
fi

# --- where to build ---------------------------------------------------------------------------
[[ -r "${SOURCE}" ]] \
    || die "pgBackRest ${VERSION} source not found: ${SOURCE}. Pass --source TARBALL or set AGENT_PGBACKREST_SOURCE to the release tarball (https://github.com/pgbackrest/pgbackrest/archive/release/${VERSION}.tar.gz)"
SOURCE="$(realpath -e -- "${SOURCE}")"
if [[ -z "${CACHE}" ]]; then
    if writable_cache "${SYSTEM_CACHE}"; then
        CACHE="${SYSTEM_CACHE}"
    else
        CACHE="${USER_CACHE}"
    fi
fi
writable_cache "${CACHE}" || die "cache directory ${CACHE} is not writable by $(id -un); pass --cache DIR or set AGENT_PGBACKREST_CACHE"
umask 022
mkdir -p -- "${CACHE}"
CACHE="$(cd "${CACHE}" && pwd -P)"
readonly DEST="${CACHE}/${VERSION}"
readonly BINARY="${DEST}/bin/pgbackrest"

missing_tools=()
for tool in meson ninja cc pkg-config tar; do
    command -v "${tool}" >/dev/null 2>&1 || missing_tools+=("${tool}")
done
if ((${#missing_tools[@]} > 0)); then
    die "missing build tools: ${missing_tools[*]}. Install: apt-get install ${AGENT_PGBACKREST_BUILD_PACKAGES[*]} (tests/run-all.sh does as root)"
fi
command -v flock >/dev/null 2>&1 || die "flock not found (package util-linux)"

# One build per cache and version at a time; whoever waited finds the other's build.
exec 9>"${CACHE}/.${VERSION}.lock"
if ! flock -n 9; then
    log "another build of pgBackRest ${VERSION} into ${CACHE} is running; waiting for it"
    flock 9
fi
if ((REBUILD == 0)) && works "${BINARY}"; then
    printf '%s\n' "${BINARY}"
    exit 0
fi

WORK="$(mktemp -d "${CACHE}/.build-${VERSION}.XXXXXX")"
cleanup() { rm -rf -- "${WORK}"; }
trap cleanup EXIT

BUILD_LOG="${WORK}/build.log"
# run_logged STEP CMD...: the command's output goes to the build log, shown only on failure.
run_logged() {
    local step="$1"
    shift
    if ! "$@" >>"${BUILD_LOG}" 2>&1; then
        printf '%s: error: %s failed: %s\n--- last lines of its output:\n' "${AGENT_LOG_TAG}" "${step}" "$*" >&2
        tail -n 40 "${BUILD_LOG}" >&2
        exit 1
    fi
}

started=${SECONDS}
jobs="${AGENT_PGBACKREST_JOBS:-$(nproc)}"
log "building pgBackRest ${VERSION} from ${SOURCE} into ${DEST} (meson + ninja, ${jobs} jobs; under a minute of CPU)"
mkdir -p -- "${WORK}/src"
run_logged "unpacking" tar -xzf "${SOURCE}" -C "${WORK}/src" --strip-components=1 --no-same-owner
[[ -f "${WORK}/src/meson.build" ]] || die "${SOURCE} has no meson.build at its top: not a pgBackRest release tarball (>= 2.51)"
run_logged "meson setup" meson setup --buildtype=release "${WORK}/build" "${WORK}/src"
run_logged "ninja" nice -n 10 ninja -C "${WORK}/build" -j "${jobs}"
built="${WORK}/build/src/pgbackrest"
works "${built}" || die "the build did not produce a pgBackRest ${VERSION}: '$("${built}" version 2>&1 || true)'"

mkdir -p -- "${WORK}/out/bin"
install -m 0755 "${built}" "${WORK}/out/bin/pgbackrest"
cat >"${WORK}/out/BUILD-INFO" <<EOF
version=${VERSION}
source=${SOURCE}
source_sha256=$(sha256sum "${SOURCE}" | cut -d' ' -f1)
built_by=$(id -un)
built_at=$(date -u '+%Y-%m-%dT%H:%M:%SZ')
host=$(uname -srm)
meson=$(meson --version)
compiler=$(cc --version | head -n 1)
EOF
chmod 0755 "${WORK}/out" "${WORK}/out/bin"
chmod 0644 "${WORK}/out/BUILD-INFO"
rm -rf -- "${DEST}"
mv -T -- "${WORK}/out" "${DEST}"
log "built in $((SECONDS - started)) s: ${BINARY}"
printf '%s\n' "${BINARY}"
