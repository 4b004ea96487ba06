#!/usr/bin/env bash
# Build the agent's container image offline: no registry, only Debian's package mirror.
#
#   container/build-image.sh [--base-tar PATH] [--output-archive PATH] [--storage-root DIR]
#                            [--tag NAME] [--pgbackrest-version V] [--pgbackrest-source FILE|URL]
#                            [--rebuild-pgbackrest]
#
#   --base-tar PATH        root filesystem tarball of Debian bookworm to import as the base image
#                          (default: debootstrap --variant=minbase, cached at
#                          ${AGENT_IMAGE_CACHE:-/var/cache/agent-image}/bookworm-minbase.tar)
#   --output-archive PATH  also write the image to PATH as an OCI archive
#                          (load it with: podman pull oci-archive:PATH)
#   --storage-root DIR     container storage to build in and LEAVE in place (the caller removes
#                          it; container/smoke-test.sh does). Default: a temporary storage root
#                          that is removed on exit, so only --output-archive survives.
#   --tag NAME             image name (default localhost/agent:latest)
#   --pgbackrest-version V the pgBackRest the image carries (default $AGENT_PGBACKREST_VERSION,
#                          else 2.56.0: what PGO 5.8 and 6.0 ship), built from source
#   --pgbackrest-source S  its release tarball, a file or a URL (default $AGENT_PGBACKREST_SOURCE,
#                          else <the checkout's parent>/shared/sources/pgbackrest-V.tar.gz or
#                          /var/cache/agent-pgbackrest/sources/pgbackrest-V.tar.gz when it
#                          exists, else https://github.com/pgbackrest/pgbackrest/archive/release/V.tar.gz)
#   --rebuild-pgbackrest   build pgBackRest even when a cached build matches, and replace it
#
# pgBackRest is built once per (version, source sha256, base tarball sha256, the text of the
# Containerfile's pgbackrest stages): the image of `--target pgbackrest` (the binary and its
# licence: a 0.6 MB archive) is kept in the cache directory as pgbackrest-V-KEY.oci.tar, loaded on
# later builds and passed to the image build as --build-context pgbackrest=container-image://...,
# so the build copies it instead of compiling it. The log says "cache hit" or "cache miss". The
# $PGBR_CACHE_KEEP (default 3) most recently used archives are kept, older ones removed.
#
# Runs as root. Installs debootstrap, buildah, podman and runc with apt-get if missing.
# Storage is vfs in a private directory: nothing touches the machine's own container storage,
# and vfs leaves no mounts behind (overlay does).
#
# Helpers for other scripts: source this file with AGENT_BUILD_IMAGE_LIB=1 to get
# ctr_storage_init DIR, buildah_s, podman_s and ctr_storage_remove DIR without running a build.
set -euo pipefail

BI_PROG="build-image"
BI_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

bi_log() { printf '[%s %(%H:%M:%S)T] %s\n' "${BI_PROG}" -1 "$*" >&2; }
bi_die() { printf '%s: error: %s\n' "${BI_PROG}" "$*" >&2; exit 1; }

# --- private container storage ------------------------------------------------------------------
CTR_ROOT=""
# ctr_storage_init DIR: DIR/{graph,run,tmp} and a storage.conf that both buildah and podman read.
ctr_storage_init() {
    CTR_ROOT="$1"
    mkdir -p -- "${CTR_ROOT}/graph" "${CTR_ROOT}/run" "${CTR_ROOT}/tmp"
    cat >"${CTR_ROOT}/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "${CTR_ROOT}/graph"
runroot = "${CTR_ROOT}/run"
EOF
    export CONTAINERS_STORAGE_CONF="${CTR_ROOT}/storage.conf"
    export TMPDIR="${CTR_ROOT}/tmp"   # buildah/podman stage layers and archives in TMPDIR
    ctr_set_commands
}
# BUILDAH_CMD / PODMAN_CMD: argv prefixes on the private storage (usable under `timeout`).
BUILDAH_CMD=()
PODMAN_CMD=()
ctr_set_commands() {
    BUILDAH_CMD=(buildah --root "${CTR_ROOT}/graph" --runroot "${CTR_ROOT}/run" --storage-driver vfs)
    PODMAN_CMD=(podman --root "${CTR_ROOT}/graph" --runroot "${CTR_ROOT}/run" --storage-driver vfs
        --runtime runc --cgroup-manager cgroupfs --events-backend file
        --tmpdir "${CTR_ROOT}/run/libpod-tmp")
}
buildah_s() { "${BUILDAH_CMD[@]}" "$@"; }
podman_s() { "${PODMAN_CMD[@]}" "$@"; }
# ctr_storage_remove DIR: removes every container and image in DIR's storage, unmounts anything
# left under DIR (vfs should leave nothing), and deletes DIR. Never fails.
ctr_storage_remove() {
    local root="$1" mnt
    [[ -n "${root}" && -d "${root}" ]] || return 0
    CTR_ROOT="${root}"
    ctr_set_commands
    podman_s rm --all --force --time 0 >/dev/null 2>&1 || true
    buildah_s rm --all >/dev/null 2>&1 || true
    podman_s rmi --all --force >/dev/null 2>&1 || true
    # Anything still mounted below the root (a shm or a layer after a crash): deepest first.
    while IFS= read -r mnt; do
        umount -l -- "${mnt}" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET 2>/dev/null | awk -v r="${root}/" 'index($0 "/", r) == 1' | sort -r)
    rm -rf --one-file-system -- "${root}" 2>/dev/null || rm -rf -- "${root}" || true
}

# install_container_tools: apt-get installs whatever of debootstrap buildah podman runc is missing.
install_container_tools() {
    local missing=() tool
    for tool in debootstrap buildah podman runc; do
        command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
    done
    ((${#missing[@]} == 0)) && return 0
    bi_log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || bi_die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        >/dev/null || bi_die "apt-get install ${missing[*]} failed"
}

if [[ -n "${AGENT_BUILD_IMAGE_LIB:-}" ]]; then
    # shellcheck disable=SC2317  # reached when executed rather than sourced
    return 0 2>/dev/null || exit 0
fi

# --- arguments ----------------------------------------------------------------------------------
usage() { sed -n '2,/^# Helpers for other scripts/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; }

BASE_TAR=""
OUTPUT_ARCHIVE=""
STORAGE_ROOT=""
IMAGE="localhost/agent:latest"
BASE_IMAGE="localhost/bookworm-base:latest"
PGBR_VERSION="${AGENT_PGBACKREST_VERSION:-2.56.0}"
PGBR_SOURCE="${AGENT_PGBACKREST_SOURCE:-}"
PGBR_REBUILD=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base-tar) [[ $# -ge 2 ]] || bi_die "--base-tar needs a value"; BASE_TAR="$2"; shift 2 ;;
        --output-archive) [[ $# -ge 2 ]] || bi_die "--output-archive needs a value"; OUTPUT_ARCHIVE="$2"; shift 2 ;;
        --storage-root) [[ $# -ge 2 ]] || bi_die "--storage-root needs a value"; STORAGE_ROOT="$2"; shift 2 ;;
        --tag) [[ $# -ge 2 ]] || bi_die "--tag needs a value"; IMAGE="$2"; shift 2 ;;
        --pgbackrest-version) [[ $# -ge 2 ]] || bi_die "--pgbackrest-version needs a value"; PGBR_VERSION="$2"; shift 2 ;;
        --pgbackrest-source) [[ $# -ge 2 ]] || bi_die "--pgbackrest-source needs a value"; PGBR_SOURCE="$2"; shift 2 ;;
        --rebuild-pgbackrest) PGBR_REBUILD=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage; bi_die "unknown argument: $1" ;;
    esac
done

[[ "${EUID}" -eq 0 ]] || bi_die "run as root (debootstrap and the vfs storage root need it)"
[[ -f "${BI_REPO_ROOT}/CMakeLists.txt" && -f "${BI_REPO_ROOT}/container/Containerfile" ]] \
    || bi_die "cannot find the checkout (looked in ${BI_REPO_ROOT})"
if [[ -n "${BASE_TAR}" ]]; then
    BASE_TAR="$(realpath -e -- "${BASE_TAR}")" || bi_die "--base-tar: no such file"
fi
if [[ -n "${OUTPUT_ARCHIVE}" ]]; then
    OUTPUT_ARCHIVE="$(realpath -m -- "${OUTPUT_ARCHIVE}")"
    [[ -d "$(dirname -- "${OUTPUT_ARCHIVE}")" ]] || bi_die "directory of ${OUTPUT_ARCHIVE} does not exist"
fi
[[ "${PGBR_VERSION}" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] \
    || bi_die "--pgbackrest-version must look like 2.56.0, got '${PGBR_VERSION}'"
# The source: the upstream release tarball, from the shared sources beside the checkout when they
# have it (no network needed), else from the project's release URL.
if [[ -z "${PGBR_SOURCE}" ]]; then
    # Beside the checkout, else the copy tests/support/build-pgbackrest.sh keeps of the last
    # tarball it was given (a clone elsewhere finds it there), else the release itself.
    for candidate in "$(dirname -- "${BI_REPO_ROOT}")/shared/sources/pgbackrest-${PGBR_VERSION}.tar.gz" \
        "/var/cache/agent-pgbackrest/sources/pgbackrest-${PGBR_VERSION}.tar.gz"; do
        if [[ -f "${candidate}" ]]; then
            PGBR_SOURCE="${candidate}"
            break
        fi
    done
    [[ -n "${PGBR_SOURCE}" ]] \
        || PGBR_SOURCE="https://github.com/pgbackrest/pgbackrest/archive/release/${PGBR_VERSION}.tar.gz"
fi
if [[ ! "${PGBR_SOURCE}" =~ ^https?:// ]]; then
    PGBR_SOURCE="$(realpath -e -- "${PGBR_SOURCE}")" || bi_die "--pgbackrest-source: no such file"
    [[ -f "${PGBR_SOURCE}" ]] || bi_die "--pgbackrest-source must be a tarball or a URL: ${PGBR_SOURCE}"
fi

CACHE_DIR="${AGENT_IMAGE_CACHE:-/var/cache/agent-image}"
MIRROR="${AGENT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
T_START=${SECONDS}

# --- cleanup ------------------------------------------------------------------------------------
WORK="$(mktemp -d /var/tmp/agent-image-build.XXXXXX)"
OWN_STORAGE=0
if [[ -z "${STORAGE_ROOT}" ]]; then
    STORAGE_ROOT="${WORK}/storage"
    OWN_STORAGE=1
fi
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    if ((OWN_STORAGE)); then
        ctr_storage_remove "${STORAGE_ROOT}"
    else
        # The caller keeps the storage; only drop a half-built working container.
        buildah_s rm --all >/dev/null 2>&1 || true
    fi
    # The debootstrap tree may still have /proc etc. mounted if it was interrupted.
    local mnt
    while IFS= read -r mnt; do
        umount -l -- "${mnt}" 2>/dev/null || true
    done < <(findmnt -rn -o TARGET 2>/dev/null | awk -v r="${WORK}/" 'index($0 "/", r) == 1' | sort -r)
    rm -rf --one-file-system -- "${WORK}" 2>/dev/null || true
    ((rc == 0)) || printf '%s: FAILED (exit %s)\n' "${BI_PROG}" "${rc}" >&2
    exit "${rc}"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_container_tools
ctr_storage_init "${STORAGE_ROOT}"

# --- base image: debootstrap bookworm minbase (cached tarball) -----------------------------------
T0=${SECONDS}
if [[ -z "${BASE_TAR}" ]]; then
    BASE_TAR="${CACHE_DIR}/bookworm-minbase.tar"
    if [[ -s "${BASE_TAR}" ]]; then
        bi_log "base: cached ${BASE_TAR} ($(du -h "${BASE_TAR}" | cut -f1))"
    else
        bi_log "base: debootstrap --variant=minbase bookworm from ${MIRROR} (about a minute)"
        mkdir -p -- "${CACHE_DIR}"
        rootfs="${WORK}/rootfs"
        debootstrap --variant=minbase bookworm "${rootfs}" "${MIRROR}" >"${WORK}/debootstrap.log" 2>&1 \
            || { tail -n 30 "${WORK}/debootstrap.log" >&2; bi_die "debootstrap failed"; }
        # The same sources as the official debian:bookworm image (security and updates too).
        rm -f -- "${rootfs}/etc/apt/sources.list"
        cat >"${rootfs}/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: ${MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        # Container-friendly apt: no recommends, no caches kept.
        printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\nAcquire::Languages "none";\n' \
            >"${rootfs}/etc/apt/apt.conf.d/90-container"
        # Smaller base: no docs, man pages or translations, now or from later installs.
        printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
            'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' \
            'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/lintian/*' \
            >"${rootfs}/etc/dpkg/dpkg.cfg.d/01-nodoc"
        find "${rootfs}/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
        find "${rootfs}/usr/share/doc" -mindepth 1 -type d -empty -delete
        rm -rf -- "${rootfs}/usr/share/man/"* "${rootfs}/usr/share/info/"* "${rootfs}/usr/share/locale/"*
        rm -rf -- "${rootfs}/var/lib/apt/lists/"* "${rootfs}/var/cache/apt/"*.bin \
            "${rootfs}/var/cache/apt/archives/"*.deb "${rootfs}/var/log/"*.log
        tar -C "${rootfs}" --numeric-owner --xattrs -cf "${BASE_TAR}.partial" . \
            || bi_die "tar of the debootstrap tree failed"
        mv -f -- "${BASE_TAR}.partial" "${BASE_TAR}"
        rm -rf --one-file-system -- "${rootfs}"
        bi_log "base: cached ${BASE_TAR} ($(du -h "${BASE_TAR}" | cut -f1))"
    fi
fi
T_BASE=$((SECONDS - T0))

T0=${SECONDS}
podman_s import --quiet "${BASE_TAR}" "${BASE_IMAGE}" >/dev/null || bi_die "podman import of ${BASE_TAR} failed"
T_IMPORT=$((SECONDS - T0))
bi_log "base: imported as ${BASE_IMAGE} (${T_IMPORT} s)"

# --- pgBackRest: the image of --target pgbackrest, built once and kept as an OCI archive --------
# The image storage is a new vfs root on every run, so buildah's layer cache never survives; this
# cache does, in CACHE_DIR, keyed by everything that decides what the stage builds.

# bud_logged LOG ARGS...: buildah bud ARGS with the full output in LOG and the Containerfile steps
# on stderr as they start; on failure the last 60 lines of LOG, then exit.
bud_logged() {
    local log="$1" rc
    shift
    set +e
    buildah_s bud "$@" 2>&1 | tee "${log}" | grep --line-buffered -E 'STEP [0-9]+/' >&2
    rc=${PIPESTATUS[0]}
    set -e
    if ((rc != 0)); then
        [[ -n "${AGENT_BUILD_LOG:-}" ]] && cat -- "${log}" >>"${AGENT_BUILD_LOG}" 2>/dev/null
        tail -n 60 "${log}" >&2
        bi_die "buildah bud failed (exit ${rc}); the full log is kept in \$AGENT_BUILD_LOG when it is set"
    fi
    [[ -z "${AGENT_BUILD_LOG:-}" ]] || cat -- "${log}" >>"${AGENT_BUILD_LOG}" || true
}

# pgbackrest_stage_text: the Containerfile lines that decide what --target pgbackrest builds (the
# global ARGs and the stages pgbackrest-build and pgbackrest) without comments and blank lines:
# part of the cache key, so that editing those stages rebuilds pgBackRest and editing the agent's
# stages or a comment does not.
pgbackrest_stage_text() {
    awk '
        /^[[:space:]]*(#|$)/ { next }
        /^FROM[[:space:]]/ { seen_from = 1; in_stage = ($NF == "pgbackrest-build" || $NF == "pgbackrest") }
        !seen_from || in_stage { print }
    ' "${BI_REPO_ROOT}/container/Containerfile"
}

# pgbackrest_fetch: a URL source is downloaded into WORK once (its sha256 is part of the key, and
# the stage then builds from a local file like any other); sets PGBR_TARBALL.
PGBR_TARBALL=""
pgbackrest_fetch() {
    if [[ "${PGBR_SOURCE}" =~ ^https?:// ]]; then
        command -v curl >/dev/null 2>&1 || bi_die "curl is needed to download ${PGBR_SOURCE}"
        PGBR_TARBALL="${WORK}/pgbackrest-${PGBR_VERSION}.download"
        bi_log "pgbackrest: downloading ${PGBR_SOURCE}"
        curl -fsSL --retry 3 -o "${PGBR_TARBALL}" "${PGBR_SOURCE}" \
            || bi_die "cannot download ${PGBR_SOURCE} (offline? pass --pgbackrest-source FILE)"
    else
        PGBR_TARBALL="${PGBR_SOURCE}"
    fi
}

# pgbackrest_build: buildah bud --target pgbackrest in a context that holds only the source
# tarball (the checkout stays untouched), then the image into the cache as an OCI archive.
pgbackrest_build() {
    local ctx="${WORK}/pgbackrest-context"
    mkdir -p -- "${ctx}"
    cp -- "${PGBR_TARBALL}" "${ctx}/pgbackrest-${PGBR_VERSION}.tar.gz"
    bi_log "pgbackrest: cache miss: building ${PGBR_VERSION} from source (meson + ninja, about 2 minutes)"
    bud_logged "${WORK}/pgbackrest-bud.log" --pull=never --isolation chroot --layers=false \
        --target pgbackrest \
        --build-arg BASE_IMAGE="${BASE_IMAGE}" \
        --build-arg PGBACKREST_VERSION="${PGBR_VERSION}" \
        --build-arg PGBACKREST_SOURCE="pgbackrest-${PGBR_VERSION}.tar.gz" \
        --label "org.opencontainers.image.version=${PGBR_VERSION}" \
        --label "org.opencontainers.image.source=https://github.com/pgbackrest/pgbackrest" \
        --label "agent.pgbackrest.source-sha256=${PGBR_SOURCE_SHA}" \
        --label "agent.pgbackrest.cache-key=${PGBR_KEY}" \
        -f "${BI_REPO_ROOT}/container/Containerfile" -t "${PGBR_IMAGE}" "${ctx}"
    grep -m 1 '^built: ' "${WORK}/pgbackrest-bud.log" | sed 's/^/[pgbackrest stage] /' >&2 || true
    mkdir -p -- "${CACHE_DIR}"
    rm -f -- "${PGBR_ARCHIVE}.partial"
    buildah_s push --quiet "${PGBR_IMAGE}" "oci-archive:${PGBR_ARCHIVE}.partial:${PGBR_IMAGE}" >/dev/null \
        || bi_die "buildah push to oci-archive:${PGBR_ARCHIVE}.partial failed"
    mv -f -- "${PGBR_ARCHIVE}.partial" "${PGBR_ARCHIVE}"
    bi_log "pgbackrest: cached ${PGBR_ARCHIVE} ($(du -h "${PGBR_ARCHIVE}" | cut -f1))"
}

# pgbackrest_load: the cached archive into the storage; fails when it is unreadable.
pgbackrest_load() {
    podman_s pull --quiet "oci-archive:${PGBR_ARCHIVE}" >/dev/null 2>&1 \
        && podman_s image exists "${PGBR_IMAGE}"
}

T0=${SECONDS}
[[ -z "${AGENT_BUILD_LOG:-}" ]] || : >"${AGENT_BUILD_LOG}"   # both builds' logs are appended
pgbackrest_fetch
PGBR_SOURCE_SHA="$(sha256sum -- "${PGBR_TARBALL}" | cut -d' ' -f1)"
base_sha="$(sha256sum -- "${BASE_TAR}" | cut -d' ' -f1)"
PGBR_KEY="$(printf 'key-format=1\nversion=%s\nsource-sha256=%s\nbase-sha256=%s\n%s\n' \
    "${PGBR_VERSION}" "${PGBR_SOURCE_SHA}" "${base_sha}" "$(pgbackrest_stage_text)" \
    | sha256sum | cut -c1-16)"
PGBR_IMAGE="localhost/agent-pgbackrest:${PGBR_VERSION}-${PGBR_KEY}"
PGBR_ARCHIVE="${CACHE_DIR}/pgbackrest-${PGBR_VERSION}-${PGBR_KEY}.oci.tar"
bi_log "pgbackrest: ${PGBR_VERSION} from ${PGBR_SOURCE} (sha256 ${PGBR_SOURCE_SHA:0:16}...), cache key ${PGBR_KEY}"
# One build per key at a time (CI jobs or colleagues sharing the cache): whoever waited finds it.
mkdir -p -- "${CACHE_DIR}"
exec 8>"${CACHE_DIR}/.pgbackrest-${PGBR_VERSION}-${PGBR_KEY}.lock"
if ! flock -n 8; then
    bi_log "pgbackrest: another build of this key is running; waiting for it"
    flock 8
fi
PGBR_CACHE="miss"
if ((PGBR_REBUILD)); then
    bi_log "pgbackrest: --rebuild-pgbackrest: not using ${PGBR_ARCHIVE}"
    pgbackrest_build
elif [[ -s "${PGBR_ARCHIVE}" ]] && pgbackrest_load; then
    PGBR_CACHE="hit"
    bi_log "pgbackrest: cache hit: ${PGBR_ARCHIVE} loaded as ${PGBR_IMAGE}; not compiled"
else
    [[ -e "${PGBR_ARCHIVE}" ]] && bi_log "pgbackrest: ${PGBR_ARCHIVE} is unreadable; rebuilding it"
    pgbackrest_build
fi
exec 8>&-
T_PGBR=$((SECONDS - T0))

# Cache housekeeping: every key (new version, new base, edited stage) leaves an archive; keep the
# PGBR_CACHE_KEEP most recently used (a hit touches its archive) and remove older ones, except one
# whose build or load holds its lock right now.
pgbackrest_prune_cache() {
    local keep="${PGBR_CACHE_KEEP:-3}" archive lock
    [[ -f "${PGBR_ARCHIVE}" ]] && touch -- "${PGBR_ARCHIVE}"
    while IFS= read -r archive; do
        lock="${CACHE_DIR}/.$(basename -- "${archive}" .oci.tar).lock"
        if [[ -e "${lock}" ]]; then
            exec 9>"${lock}"
            if ! flock -n 9; then
                exec 9>&-
                continue
            fi
        fi
        rm -f -- "${archive}" "${lock}"
        [[ -e /proc/self/fd/9 ]] && exec 9>&-
        bi_log "pgbackrest: removed the unused cached build ${archive}"
    done < <(ls -1t -- "${CACHE_DIR}"/pgbackrest-*.oci.tar 2>/dev/null | tail -n +$((keep + 1)))
}
pgbackrest_prune_cache

# --- the image ----------------------------------------------------------------------------------
T0=${SECONDS}
# The build stage's compiler cache (the Containerfile's /ccache), kept between builds.
CCACHE_DIR_HOST="${CACHE_DIR}/ccache"
mkdir -p -- "${CCACHE_DIR_HOST}"
bi_log "building ${IMAGE} (compiles the agent: several minutes on 2 cores; copies pgBackRest from ${PGBR_IMAGE})"
# The named context replaces the Containerfile's stage "pgbackrest" (and so pgbackrest-build,
# which only it uses): buildah 1.28 skips both.
(
    cd -- "${BI_REPO_ROOT}" || exit 1
    bud_logged "${WORK}/bud.log" --pull=never --isolation chroot --layers=false \
        --build-arg BASE_IMAGE="${BASE_IMAGE}" \
        --build-arg PGBACKREST_VERSION="${PGBR_VERSION}" \
        --volume "${CCACHE_DIR_HOST}:/ccache" \
        --build-context pgbackrest="container-image://${PGBR_IMAGE}" \
        -f container/Containerfile -t "${IMAGE}" .
)
if grep -q 'AS pgbackrest-build' "${WORK}/bud.log"; then
    bi_log "warning: the image build ran the Containerfile's pgbackrest stages despite --build-context"
fi
image_pgbr="$(sed -n 's/^image: //p' "${WORK}/bud.log" | head -n 1)"
[[ "${image_pgbr}" == "pgBackRest ${PGBR_VERSION}" ]] \
    || bi_die "the image's pgbackrest version says '${image_pgbr}', not pgBackRest ${PGBR_VERSION}"
bi_log "image carries ${image_pgbr} (checked by the build as uid 26)"
T_BUILD=$((SECONDS - T0))

size_bytes="$(podman_s image inspect --format '{{.Size}}' "${IMAGE}")"
size_mb="$(awk -v b="${size_bytes}" 'BEGIN { printf "%.0f", b / 1000000 }')"

T_ARCHIVE=0
if [[ -n "${OUTPUT_ARCHIVE}" ]]; then
    T0=${SECONDS}
    rm -f -- "${OUTPUT_ARCHIVE}"
    buildah_s push --quiet "${IMAGE}" "oci-archive:${OUTPUT_ARCHIVE}:${IMAGE}" >/dev/null \
        || bi_die "buildah push to oci-archive:${OUTPUT_ARCHIVE} failed"
    T_ARCHIVE=$((SECONDS - T0))
    bi_log "archive: ${OUTPUT_ARCHIVE} ($(du -h "${OUTPUT_ARCHIVE}" | cut -f1), ${T_ARCHIVE} s)"
fi

bi_log "image ${IMAGE}: ${size_mb} MB uncompressed, pgBackRest ${PGBR_VERSION}"
bi_log "timings: base ${T_BASE} s, import ${T_IMPORT} s, pgbackrest ${T_PGBR} s (cache ${PGBR_CACHE}), build ${T_BUILD} s, archive ${T_ARCHIVE} s, total $((SECONDS - T_START)) s"
printf 'IMAGE=%s SIZE_MB=%s PGBACKREST=%s PGBACKREST_CACHE=%s PGBACKREST_SECONDS=%s BUILD_SECONDS=%s TOTAL_SECONDS=%s\n' \
    "${IMAGE}" "${size_mb}" "${PGBR_VERSION}" "${PGBR_CACHE}" "${T_PGBR}" "${T_BUILD}" "$((SECONDS - T_START))"
