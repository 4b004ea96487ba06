#!/usr/bin/env bash
# The help users find outside --help is generated from the parser, and this checks it against
# --help itself: every command and every option that `agent COMMAND --help` lists is offered by
# the bash completion (driven through bash's own completion variables) and described in the man
# page, and `agent help COMMAND` prints what `agent COMMAND --help` prints.
#
#   tests/support/check-cli-help.sh AGENT_BINARY
set -euo pipefail
AGENT="${1:?usage: $0 AGENT_BINARY}"
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

completion="$("${AGENT}" completion bash)"
bash -n <<<"${completion}" || fail "the completion script is not valid bash"
man_page="$("${AGENT}" man)"

# What the completion offers for the words of a command line, the last one being completed.
complete_words() {
    bash -c '
        eval "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _agent
        printf "%s\n" "${COMPREPLY[@]}"' _ "${completion}" "$@"
}

# The commands in a --help text's SUBCOMMANDS section.
subcommands_in() { awk '/^Subcommands:/ {on = 1; next} /^[^ ]/ {on = 0} on && NF {print $1}'; }
# The long options in a --help text's Options section.
options_in() { grep -oE '^ +(-[a-zA-Z],)?--[a-z][a-z-]*' | sed -E 's/.*(--[a-z-]+)$/\1/'; }

commands=()
top="$("${AGENT}" --help)"
while read -r command; do
    commands+=("${command}")
    while read -r sub; do commands+=("${command} ${sub}"); done < <("${AGENT}" "${command}" --help | subcommands_in)
done < <(subcommands_in <<<"${top}")
((${#commands[@]} >= 10)) || fail "found only ${#commands[@]} commands in agent --help: ${commands[*]}"

offered_top="$(complete_words agent '')"
for command in "${commands[@]}"; do
    read -r -a words <<<"${command}"
    [[ ${#words[@]} -eq 1 ]] && ! grep -qx -- "${command}" <<<"${offered_top}" &&
        fail "completion of 'agent ' does not offer ${command}"
    help_text="$("${AGENT}" "${words[@]}" --help)"
    [[ "$("${AGENT}" help "${words[@]}")" == "${help_text}" ]] ||
        fail "agent help ${command} differs from agent ${command} --help"
    grep -qF ".SS \"agent ${command}\"" <<<"${man_page}" || fail "the man page has no section for agent ${command}"
    offered="$(complete_words agent "${words[@]}" --)"
    while read -r option; do
        grep -qx -- "${option}" <<<"${offered}" || fail "completion of 'agent ${command} --' does not offer ${option}"
        grep -qF -- "${option//-/\\-}" <<<"${man_page}" || fail "the man page does not mention ${option} (agent ${command})"
    done < <(options_in <<<"${help_text}")
done

# Values: a fixed set, and file names.
[[ "$(complete_words agent backup --type '' | sort | tr '\n' ' ')" == "diff full incr " ]] ||
    fail "agent backup --type does not complete to full, diff, incr"
scratch="$(mktemp -d)"
trap 'rm -rf -- "${scratch}"' EXIT
touch "${scratch}/agent-config.yaml"
[[ "$(complete_words agent dump --config "${scratch}/agent-c")" == "${scratch}/agent-config.yaml" ]] ||
    fail "agent dump --config does not complete file names"
[[ -z "$(complete_words agent dump --target '')" ]] || fail "agent dump --target offers words for a free value"
if "${AGENT}" help no-such-command >/dev/null 2>&1; then fail "agent help no-such-command succeeded"; fi

echo "checked ${#commands[@]} commands: completion, man page and agent help agree with --help"
((failures == 0))
