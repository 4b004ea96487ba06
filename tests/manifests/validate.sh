#!/usr/bin/env bash
# Renders every kustomize overlay and the StatefulSet example (container/kustomize/) with
# `kubectl kustomize` and validates each rendered object offline (validate.mjs: schemas from
# the npm packages kubernetes-models and @kubernetes-models/prometheus-operator, plus the
# structure and cross-references the agent relies on). Also fails when
# container/kustomize/base/prometheusrule.yaml is out of date with config/alerts/agent-rules.yaml.
#
#   bash tests/manifests/validate.sh
#
# Needs kubectl (with its built-in kustomize), node and npm. The npm packages are installed with
# `npm ci` from tests/manifests/package-lock.json into a work directory outside the checkout
# (which may be read-only): $AGENT_MANIFEST_WORK, else build/manifests-node of the checkout
# when build/ is writable, else a directory under $TMPDIR. They are reinstalled only when that
# directory has no node_modules or the lock file changed. When $AGENT_BINARY is set (ctest sets
# it to the agent it just built), `agent config check` runs on each rendered agent.yaml.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
kdir="$root/container/kustomize"
renders=(overlays/dev overlays/test overlays/prod examples/statefulset)

die() { echo "validate.sh: $*" >&2; exit 1; }

command -v kubectl >/dev/null 2>&1 ||
  die "kubectl not found in PATH: it renders the manifests (kubectl kustomize). Install kubectl v1.32 or later (kustomize v5 is built in)."
command -v node >/dev/null 2>&1 || die "node not found in PATH (node 20 or later; Debian package nodejs)."
command -v npm >/dev/null 2>&1 || die "npm not found in PATH (Debian package npm)."

# Work directory for node_modules, the npm cache and the rendered files.
if [[ -n "${AGENT_MANIFEST_WORK:-}" ]]; then
  work="$AGENT_MANIFEST_WORK"
elif { [[ -d "$root/build" ]] && [[ -w "$root/build" ]]; } || { [[ ! -e "$root/build" ]] && [[ -w "$root" ]]; }; then
  work="$root/build/manifests-node"
else
  work="${TMPDIR:-/tmp}/agent-manifests-$(id -u)"
fi
mkdir -p "$work" || die "cannot create the work directory $work (set AGENT_MANIFEST_WORK)"
work=$(cd "$work" && pwd)

if [[ ! -d "$work/node_modules" ]] || ! cmp -s "$here/package-lock.json" "$work/package-lock.json"; then
  echo "validate.sh: npm ci in $work"
  rm -rf "$work/node_modules"
  cp "$here/package.json" "$here/package-lock.json" "$work/"
  (
    cd "$work"
    # Cache and logs stay in the work directory; nothing is written to $HOME or the checkout.
    npm ci --no-audit --no-fund --update-notifier=false --loglevel=error \
      --cache "$work/.npm-cache" --logs-dir "$work/.npm-cache/_logs"
  ) || die "npm ci failed in $work"
fi
cp "$here/validate.mjs" "$work/validate.mjs"

# 1. The checked-in PrometheusRule is what the generator makes from the rules file.
echo "validate.sh: generate-prometheusrule.sh --check"
bash "$here/generate-prometheusrule.sh" --check

# 2. Render.
out="$work/rendered"
rm -rf "$out"
mkdir -p "$out"
pairs=()
for r in "${renders[@]}"; do
  f="$out/${r//\//-}.yaml"
  echo "validate.sh: kubectl kustomize container/kustomize/$r"
  kubectl kustomize "$kdir/$r" >"$f" || die "kubectl kustomize container/kustomize/$r failed"
  pairs+=("$r=$f")
done

# 3. Validate.
agent_args=()
if [[ -n "${AGENT_BINARY:-}" ]]; then
  [[ -x "$AGENT_BINARY" ]] || die "AGENT_BINARY=$AGENT_BINARY is not an executable"
  agent_args=(--agent "$AGENT_BINARY")
else
  echo "validate.sh: AGENT_BINARY not set: the rendered agent.yaml files are not run through 'agent config check'"
fi
node "$work/validate.mjs" --rules "$root/config/alerts/agent-rules.yaml" --tmp "$work" \
  "${agent_args[@]}" "${pairs[@]}"
