#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, its own build directory) and fuzzes them.
#
#   tests/fuzz/run.sh [options] [TARGET|all] [SECONDS]
#
#   TARGET      one of the tests/fuzz/<TARGET>_fuzz.cpp names (target_time, cron, ...); all: each
#               in turn (the default)
#   SECONDS     how long to fuzz each target (default 60); 0 only replays seeds and regressions
#
#   --build-dir DIR   where to build and where the run writes (default: build-fuzz/ at the top of
#                     the checkout, or $AGENT_FUZZ_BUILD_DIR). The grown corpus is kept in
#                     DIR/corpus/TARGET across runs, crashes go to DIR/artifacts/TARGET/.
#   --cxx PATH        the clang++ to build with (default: clang++)
#   --build-only      configure and build, run nothing
#   --no-build        run what DIR/bin already holds
#   --jobs N          fuzz with N processes (libFuzzer -fork=N)
#   -- ARGS...        further libFuzzer flags, e.g. -- -only_ascii=1
#
# Each target first runs every file of tests/fuzz/regressions/TARGET/ once (inputs that once
# crashed it), then fuzzes for SECONDS starting from DIR/corpus/TARGET, tests/fuzz/corpus/TARGET
# and the regressions, with tests/fuzz/dict/TARGET.dict when there is one. It never writes into
# the checkout. Exits non-zero when any target crashed, leaked, hit undefined behaviour, broke a
# property its harness checks, or timed out on one input.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "${HERE}/../.." && pwd -P)"

log() { printf '[fuzz] %s\n' "$*" >&2; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 2; }

build_dir="${AGENT_FUZZ_BUILD_DIR:-${REPO}/build-fuzz}"
cxx="clang++"
build=1
run=1
jobs=0
positional=()
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --build-dir) build_dir="${2:?--build-dir needs a directory}"; shift 2 ;;
        --cxx) cxx="${2:?--cxx needs a compiler}"; shift 2 ;;
        --build-only) run=0; shift ;;
        --no-build) build=0; shift ;;
        --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --) shift; extra=("$@"); break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) positional+=("$1"); shift ;;
    esac
done
[[ ${#positional[@]} -le 2 ]] || die "too many arguments (see --help)"
which="${positional[0]:-all}"
seconds="${positional[1]:-60}"
[[ "${seconds}" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, not '${seconds}'"
[[ "${jobs}" =~ ^[0-9]+$ ]] || die "--jobs must be a whole number, not '${jobs}'"

mapfile -t all_targets < <(find "${HERE}" -maxdepth 1 -name '*_fuzz.cpp' -printf '%f\n' | sed 's/_fuzz\.cpp$//' | sort)
if [[ "${which}" == "all" ]]; then
    targets=("${all_targets[@]}")
else
    [[ " ${all_targets[*]} " == *" ${which} "* ]] \
        || die "no target '${which}'; there are: ${all_targets[*]}"
    targets=("${which}")
fi

if [[ ${build} -eq 1 ]]; then
    command -v "${cxx}" >/dev/null 2>&1 \
        || die "${cxx} not found; install the Debian packages clang and libclang-rt-14-dev"
    generator=()
    if [[ ! -f "${build_dir}/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
        generator=(-G Ninja)
    fi
    log "configuring ${build_dir} with ${cxx}"
    cmake -S "${HERE}" -B "${build_dir}" -DCMAKE_CXX_COMPILER="${cxx}" "${generator[@]}" >/dev/null \
        || die "configuring the fuzz targets failed"
    log "building"
    cmake --build "${build_dir}" -j "$(nproc)" || die "building the fuzz targets failed"
fi
[[ ${run} -eq 1 ]] || exit 0

# Readable stack traces; a failed UBSan check is reported with its stack.
for symbolizer in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "${symbolizer}" >/dev/null 2>&1; then
        export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v "${symbolizer}")}"
        break
    fi
done
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:${UBSAN_OPTIONS}}"

# Inputs longer than the parsers' own limits, so that the limits are fuzzed too.
max_len_for() {
    case "$1" in
        http) echo 20000 ;;     # past the 16 KiB read buffer (twice the 8 KiB header limit)
        control) echo 17000 ;;  # past the 16 KiB request line
        config) echo 4096 ;;    # a key's "did you mean" costs its length times the option table
        *) echo 8192 ;;
    esac
}

failed=()
for target in "${targets[@]}"; do
    binary="${build_dir}/bin/fuzz_${target}"
    [[ -x "${binary}" ]] || die "${binary} is missing; build first (run without --no-build)"
    work="${build_dir}/corpus/${target}"
    artifacts="${build_dir}/artifacts/${target}"
    mkdir -p -- "${work}" "${artifacts}"
    regressions="${HERE}/regressions/${target}"
    status=0
    touch -- "${artifacts}/.started"  # what the run keeps is newer than this

    mapfile -t regression_files < <(find "${regressions}" -type f 2>/dev/null | sort)
    if [[ ${#regression_files[@]} -gt 0 ]]; then
        log "${target}: replaying ${#regression_files[@]} regression input(s)"
        "${binary}" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="${artifacts}/" "${regression_files[@]}" \
            >"${artifacts}/regressions.log" 2>&1 || status=$?
        if [[ ${status} -ne 0 ]]; then
            tail -n 60 "${artifacts}/regressions.log" >&2
            log "${target}: a regression input fails again (exit ${status}): $(grep '^Running: ' \
                "${artifacts}/regressions.log" | tail -n 1 | cut -d' ' -f2-) (full log ${artifacts}/regressions.log)"
        fi
    fi

    if [[ ${status} -eq 0 ]]; then
        corpora=("${work}")
        for dir in "${HERE}/corpus/${target}" "${regressions}"; do
            [[ -d "${dir}" ]] && corpora+=("${dir}")
        done
        flags=(-max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len_for "${target}")"
            -artifact_prefix="${artifacts}/" -print_final_stats=1)
        [[ -f "${HERE}/dict/${target}.dict" ]] && flags+=(-dict="${HERE}/dict/${target}.dict")
        [[ ${jobs} -gt 0 ]] && flags+=(-fork="${jobs}")
        [[ ${seconds} -eq 0 ]] && flags+=(-runs=0)
        if [[ ${seconds} -eq 0 ]]; then log "${target}: replaying seeds and corpus"; else log "${target}: fuzzing for ${seconds} s"; fi
        "${binary}" "${flags[@]}" "${extra[@]}" "${corpora[@]}" || status=$?
    fi

    if [[ ${status} -ne 0 ]]; then
        failed+=("${target}")
        log "${target}: FAILED (exit ${status}). Inputs it kept:"
        find "${artifacts}" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' -o -name 'slow-unit-*' \) -newer "${artifacts}/.started" -printf '  %p\n' >&2 || true
        log "reproduce: ${binary} FILE; shrink: ${binary} -minimize_crash=1 -runs=100000 FILE;"
        log "once fixed, keep it: cp FILE tests/fuzz/regressions/${target}/"
    else
        log "${target}: ok"
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    log "failed: ${failed[*]}"
    exit 1
fi
log "passed: ${targets[*]}"
