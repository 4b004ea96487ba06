#!/usr/bin/env bash
# Builds the agent and its tests with AddressSanitizer + UndefinedBehaviorSanitizer (CMake option
# AGENT_SANITIZE, a build directory of its own) and runs a test binary from there.
#
#   tests/sanitize/run.sh [options] [BINARY [ARGS...]]
#
#   BINARY            unit_tests or integration_tests, run from DIR/bin with ARGS, e.g.
#                     integration_tests --gtest_filter='DumpIntegration.*' (the integration tests
#                     start DIR/bin/agent, sanitized too). Without one it only builds.
#   --build-dir DIR   where to build (default: build-asan/ at the top of the checkout)
#   --cxx PATH        the compiler (default: clang++, which builds this tree in less than half the
#                     time g++ takes)
#   --werror          warnings are errors (AGENT_WARNINGS_AS_ERRORS=ON)
#   --integration FILE  compile only this suite (tests/integration/FILE, e.g. dump_test.cpp) into
#                     integration_tests, besides the harness; default: all of them
#   --no-build        run what DIR/bin already holds
#
# -O0 -g1: the sanitizers check as much at -O0, the stacks keep file:line, and the build (most of
# the cost) takes about a third of the CPU time of -O1 -g. No recovery: the first error ends the
# process.
# Every report of every sanitized process of the run (the test binary and each agent it starts)
# is written to DIR/reports/; when there is one, the run prints them and fails, whatever the
# test's own verdict (a test may not look at how an agent ended). Leaks in libraries the agent
# cannot free are suppressed, each with its reason, in tests/sanitize/lsan.supp.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "${HERE}/../.." && pwd -P)"

log() { printf '[sanitize] %s\n' "$*" >&2; }
die() { printf 'sanitize: error: %s\n' "$*" >&2; exit 2; }

build_dir="${REPO}/build-asan"
cxx="clang++"
werror=OFF
integration=""
build=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --build-dir) build_dir="${2:?--build-dir needs a directory}"; shift 2 ;;
        --cxx) cxx="${2:?--cxx needs a compiler}"; shift 2 ;;
        --werror) werror=ON; shift ;;
        --integration) integration="${2:?--integration needs a file name}"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done

if [[ ${build} -eq 1 ]]; then
    command -v "${cxx}" >/dev/null 2>&1 || die "${cxx} not found (Debian packages clang, libclang-rt-14-dev)"
    generator=()
    if [[ ! -f "${build_dir}/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1; then
        generator=(-G Ninja)
    fi
    log "configuring ${build_dir} with ${cxx}"
    mkdir -p -- "${build_dir}"
    cmake -S "${REPO}" -B "${build_dir}" "${generator[@]}" -DCMAKE_CXX_COMPILER="${cxx}" -DAGENT_SANITIZE=ON \
        -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" -DAGENT_WARNINGS_AS_ERRORS="${werror}" \
        -DAGENT_INTEGRATION_ONLY="${integration}" >"${build_dir}/configure.log" 2>&1 \
        || { cat "${build_dir}/configure.log" >&2; die "configuring ${build_dir} failed"; }
    log "building agent, unit_tests, integration_tests"
    cmake --build "${build_dir}" -j "$(nproc)" --target agent unit_tests integration_tests \
        || die "building ${build_dir} failed"
fi
[[ $# -gt 0 ]] || exit 0

binary="${build_dir}/bin/$1"
shift
[[ -x "${binary}" ]] || die "${binary} is missing; build first (run without --no-build)"

reports="${build_dir}/reports"
rm -rf -- "${reports}"
mkdir -p -- "${reports}"
for symbolizer in llvm-symbolizer llvm-symbolizer-14 /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if command -v "${symbolizer}" >/dev/null 2>&1; then
        export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$(command -v "${symbolizer}")}"
        break
    fi
done
# Options given in the environment come after ours, so they win (but for log_path, which this
# script reads).
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:print_legend=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:${ASAN_OPTIONS}}:log_path=${reports}/report"
# Leaks other projects' code makes and the agent cannot free, each with its reason: lsan.supp.
export LSAN_OPTIONS="suppressions=${HERE}/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:${LSAN_OPTIONS}}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:${UBSAN_OPTIONS}}:log_path=${reports}/report"

# A filter that selects nothing passes in gtest: refuse it (a suite left out of the build, a typo).
selected="$("${binary}" --gtest_list_tests "$@" | grep -c '^  ' || true)"
status=0
if [[ "${selected}" -gt 0 ]]; then
    log "running ${selected} test(s): $(basename "${binary}") $*"
    "${binary}" "$@" || status=$?
elif [[ -z "$(find "${reports}" -type f -size +0)" ]]; then
    die "$(basename "${binary}") $* selects no test (a suite left out with --integration?)"
fi

mapfile -t found < <(find "${reports}" -type f -size +0 | sort)
if [[ ${#found[@]} -gt 0 ]]; then
    for report in "${found[@]}"; do
        printf '=== sanitizer report %s\n' "${report}" >&2
        head -n 200 -- "${report}" >&2
    done
    log "FAILED: ${#found[@]} sanitizer report(s) (process ids in the file names):"
    for report in "${found[@]}"; do
        printf '  %s: %s\n' "$(basename "${report}")" \
            "$(grep -m1 -E '^SUMMARY: |runtime error: ' "${report}" | cut -c1-300 || echo 'see above')" >&2
    done
    exit 1
fi
if [[ ${status} -ne 0 ]]; then
    log "FAILED: $(basename "${binary}") exited ${status} (no sanitizer report)"
    exit "${status}"
fi
log "clean: $(basename "${binary}") passed with no sanitizer report"
