#!/usr/bin/env bash
# The include graph of agent/ and probes/: no cycles between files or between directories,
# and the layers below the wiring never include it: metrics/, http/ and probes/ know nothing
# of pipelines/, daemon/ or cli/; pipelines/ knows nothing of daemon/ or cli/.
#
#   tests/support/check-include-graph.sh [REPO_ROOT]
set -euo pipefail
shopt -s extglob
ROOT="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)}"
cd "${ROOT}"

file_edges="$(mktemp)"
dir_edges="$(mktemp)"
trap 'rm -f -- "${file_edges}" "${dir_edges}"' EXIT

# "from to" pairs: a file and each project header it includes (paths relative to agent/).
while IFS= read -r -d '' file; do
    from="${file#agent/}"
    while IFS= read -r included; do
        [[ -f "agent/${included}" || -f "${included}" ]] || continue
        printf '%s %s\n' "${from}" "${included}" >>"${file_edges}"
        from_dir="${from%%/*}"
        to_dir="${included%%/*}"
        [[ "${from}" == */* && "${from_dir}" != "${to_dir}" ]] && printf '%s %s\n' "${from_dir}" "${to_dir}" >>"${dir_edges}"
    done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "${file}")
done < <(find agent probes -name '*.[ch]pp' -print0)

status=0
for graph in "${file_edges}" "${dir_edges}"; do
    if ! tsort "${graph}" >/dev/null 2>"${graph}.err"; then
        echo "include cycle:" >&2
        cat "${graph}.err" >&2
        status=1
    fi
    rm -f -- "${graph}.err"
done
forbidden=0
while read -r from to; do
    case "${from} ${to}" in
        "metrics "@(pipelines|daemon|cli) | "http "@(pipelines|daemon|cli) | "probes "@(pipelines|daemon|cli) | \
            "pipelines "@(daemon|cli) | "jobs "@(pipelines|daemon|cli))
            echo "forbidden include: ${from}/ -> ${to}/" >&2
            grep -E "^${from}/[^ ]+ ${to}/" "${file_edges}" | sed 's/^/    /' >&2
            forbidden=1
            ;;
    esac
done < <(sort -u "${dir_edges}")
((forbidden == 0)) || status=1
if ((status == 0)); then
    echo "include graph: $(sort -u "${file_edges}" | wc -l) file edges, $(sort -u "${dir_edges}" | wc -l) directory edges, no cycles, no forbidden edges"
fi
exit "${status}"
