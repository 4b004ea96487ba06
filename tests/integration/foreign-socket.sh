#!/usr/bin/env bash
# Another local user listens on the agent's control socket path first (a shared, sticky
# directory like /tmp): `agent run` refuses to start and the clients refuse to talk to it, each
# with a message naming the owner, and no client reports success. Needs root to act as two
# users; tests/run-all.sh runs it as root before it drops privileges.
#
#   tests/integration/foreign-socket.sh AGENT_BINARY
set -euo pipefail

AGENT="$(realpath -e -- "${1:?usage: foreign-socket.sh AGENT_BINARY}")"
OWNER_USER="agentci"   # the agent's user
OTHER_USER="nobody"    # somebody else on the machine
[[ ${EUID} -eq 0 ]] || { echo "foreign-socket.sh: needs root (it acts as two users)" >&2; exit 2; }
id -u "${OWNER_USER}" >/dev/null && id -u "${OTHER_USER}" >/dev/null

work="$(mktemp -d /tmp/agent-foreign-XXXXXX)"
chmod 1777 "${work}"  # shared and sticky, like /tmp
impostor_pid=""
cleanup() {
    [[ -n "${impostor_pid}" ]] && kill "${impostor_pid}" 2>/dev/null && wait "${impostor_pid}" 2>/dev/null
    rm -rf -- "${work}"
}
trap cleanup EXIT

failures=0
check() {  # check DESCRIPTION COMMAND...: the command must succeed
    local what="$1"; shift
    if "$@"; then echo "ok: ${what}"; else echo "FAILED: ${what}" >&2; failures=$((failures + 1)); fi
}

# The impostor: another user's `agent run` (any program would do) on the shared path.
# agent_config NAME USER: a config for USER's agent whose control socket is the shared path.
agent_config() {
    mkdir -m 0700 "${work}/$1" && chown "$2" "${work}/$1"
    cat >"${work}/$1/agent.yaml" <<EOF
state_dir: ${work}/$1/state
control:
  socket: ${work}/agent.sock
http:
  listen: ""
manual:
  annotations_file: ""
EOF
    chmod 0644 "${work}/$1/agent.yaml"
}
agent_config other "${OTHER_USER}"
runuser -u "${OTHER_USER}" -- "${AGENT}" run --config "${work}/other/agent.yaml" >"${work}/impostor.log" 2>&1 &
impostor_pid=$!
for _ in $(seq 1 100); do [[ -S "${work}/agent.sock" ]] && break; sleep 0.1; done
[[ -S "${work}/agent.sock" ]] || { cat "${work}/impostor.log" >&2; echo "the impostor did not listen" >&2; exit 1; }
# An impostor that lets anyone connect, as a hostile one would.
chmod 0666 "${work}/agent.sock"

agent_config mine "${OWNER_USER}"

refuses_naming_owner() {  # refuses_naming_owner ARGS...: non-zero exit, the owner named, no success
    local out rc=0
    out="$(timeout 60 runuser -u "${OWNER_USER}" -- "${AGENT}" "$@" --config "${work}/mine/agent.yaml" 2>&1)" || rc=$?
    printf '    %s\n' "${out//$'\n'/$'\n'    }"
    [[ ${rc} -ne 0 && ${rc} -ne 124 ]] || return 1
    [[ "${out}" == *"${OTHER_USER}"* ]] || return 1
    [[ "${out}" != *succeeded* ]] || return 1
}
check "agent run refuses a socket path held by ${OTHER_USER}" refuses_naming_owner run
check "agent backup --wait refuses to talk to ${OTHER_USER}'s server" refuses_naming_owner backup --type full --wait
check "agent status refuses to talk to ${OTHER_USER}'s server" refuses_naming_owner status
check "the impostor got no backup request" bash -c "! grep -q 'backup queued' '${work}/impostor.log'"

# The impostor's socket left behind by a dead process is still not ours to remove.
kill "${impostor_pid}"; wait "${impostor_pid}" 2>/dev/null || true; impostor_pid=""
if [[ ! -S "${work}/agent.sock" ]]; then
    # It cleaned up after itself; leave a stale one of its own the way a kill -9 would.
    runuser -u "${OTHER_USER}" -- python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" \
        "${work}/agent.sock"
fi
check "a stale socket of ${OTHER_USER} is refused, not removed" refuses_naming_owner run
check "the stale socket is still there" test -S "${work}/agent.sock"

if [[ ${failures} -ne 0 ]]; then
    echo "foreign-socket: ${failures} check(s) failed" >&2
    exit 1
fi
echo "foreign-socket: all checks passed"
