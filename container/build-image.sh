#!/usr/bin/env bash
# Build the agent's container image offline: no registry, only Debian's package mirror.
#
#   container/build-image.sh [--base-tar PATH] [--output-archive PATH] [--storage-root DIR]
#                            [--tag NAME]
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
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }

BASE_TAR=""
OUTPUT_ARCHIVE=""
STORAGE_ROOT=""
IMAGE="localhost/agent:latest"
BASE_IMAGE="localhost/bookworm-base:latest"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base-tar) [[ $# -ge 2 ]] || bi_die "--base-tar needs a value"; BASE_TAR="$2"; shift 2 ;;
        --output-archive) [[ $# -ge 2 ]] || bi_die "--output-archive needs a value"; OUTPUT_ARCHIVE="$2"; shift 2 ;;
        --storage-root) [[ $# -ge 2 ]] || bi_die "--storage-root needs a value"; STORAGE_ROOT="$2"; shift 2 ;;
        --tag) [[ $# -ge 2 ]] || bi_die "--tag needs a value"; IMAGE="$2"; shift 2 ;;
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

# --- the image ----------------------------------------------------------------------------------
T0=${SECONDS}
bi_log "building ${IMAGE} (compiles the agent: several minutes on 2 cores)"
# Full log to a file; the Containerfile steps to stderr as they start.
set +e
(
    cd -- "${BI_REPO_ROOT}" || exit 1
    buildah_s bud --pull=never --isolation chroot --layers=false \
        --build-arg BASE_IMAGE="${BASE_IMAGE}" \
        -f container/Containerfile -t "${IMAGE}" .
) 2>&1 | tee "${WORK}/bud.log" | grep --line-buffered -E 'STEP [0-9]+/' >&2
bud_rc=${PIPESTATUS[0]}
set -e
if ((bud_rc != 0)); then
    tail -n 60 "${WORK}/bud.log" >&2
    bi_die "buildah bud failed (exit ${bud_rc})"
fi
T_BUILD=$((SECONDS - T0))
if [[ -n "${AGENT_BUILD_LOG:-}" ]]; then
    cp -- "${WORK}/bud.log" "${AGENT_BUILD_LOG}" || true
fi

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

bi_log "image ${IMAGE}: ${size_mb} MB uncompressed"
bi_log "timings: base ${T_BASE} s, import ${T_IMPORT} s, build ${T_BUILD} s, archive ${T_ARCHIVE} s, total $((SECONDS - T_START)) s"
printf 'IMAGE=%s SIZE_MB=%s BUILD_SECONDS=%s TOTAL_SECONDS=%s\n' \
    "${IMAGE}" "${size_mb}" "${T_BUILD}" "$((SECONDS - T_START))"
