// Validates the rendered kustomize manifests of the agent offline (run by validate.sh, which
// renders them with `kubectl kustomize` and copies this file next to its node_modules).
//
//   node validate.mjs --rules config/alerts/agent-rules.yaml [--agent BIN] [--tmp DIR] NAME=FILE...
//
// NAME is the rendered directory relative to container/kustomize (overlays/dev, ...), FILE the
// output of `kubectl kustomize` for it. For every object:
// - its schema: Kubernetes kinds with kubernetes-models, Prometheus Operator kinds with
//   @kubernetes-models/prometheus-operator, each model's validate(); plus a strict check that
//   reports fields the schema does not know (validate() alone accepts a typo'd field);
// - PostgresCluster (no schema package exists): the structure the component relies on, with
//   its containers, volume claim specs and config projections validated as the core types;
// and across objects: the PrometheusRule's groups deep-equal the rules file's, the PodMonitor
// selects the pods and their `metrics` port, the agent container's probes, ports, security
// context, volumes and config (parsed, checked with `agent config check` when --agent is given,
// and compared with what each overlay is meant to set).
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import YAML from "yaml";

// ---------------------------------------------------------------- what each render must be
const BASE_SCHEDULES = { timezone: "America/Vancouver", full: "0 2 * * *", diff: "", incr: "*/15 * * * *" };
const EXPECT = {
  "overlays/dev": {
    namespace: "db-dev", image: "agent:dev", workload: "PostgresCluster",
    schedules: { ...BASE_SCHEDULES, full: "0 3 * * *" },
    limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "50m", memory: "64Mi" },
  },
  "overlays/test": {
    namespace: "db-test", image: "agent:1.0.0-rc", workload: "PostgresCluster",
    schedules: { ...BASE_SCHEDULES, full: "0 1 * * *", diff: "0 13 * * *", incr: "*/10 * * * *" },
    limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "50m", memory: "64Mi" },
  },
  "overlays/prod": {
    namespace: "db-prod", image: "agent:1.0.0", workload: "PostgresCluster",
    schedules: BASE_SCHEDULES,
    limits: { cpu: "2", memory: "1Gi" }, requests: { cpu: "100m", memory: "128Mi" },
  },
  "examples/statefulset": {
    namespace: undefined, image: "agent:latest", workload: "StatefulSet",
    schedules: BASE_SCHEDULES,
    limits: { cpu: "500m", memory: "256Mi" }, requests: { cpu: "50m", memory: "64Mi" },
  },
};
const SCRAPE_LABEL = ["backup-agent/scrape", "true"];
// Volumes PGO puts in every instance pod (and what the agent needs from them).
const PGO_VOLUMES = {
  "postgres-data": "the data PVC",
  "pgbackrest-config": "the projected pgBackRest config",
  "database-containerinfo": "Downward API with the file `annotations` (metadata.annotations)",
  "postgres-config": "projected from spec.config.files",
};

// ---------------------------------------------------------------- arguments
const args = process.argv.slice(2);
let rulesFile, agentBin, tmpBase = tmpdir();
const renders = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--rules") rulesFile = args[++i];
  else if (args[i] === "--agent") agentBin = args[++i];
  else if (args[i] === "--tmp") tmpBase = args[++i];
  else if (args[i].includes("=")) { const [n, f] = args[i].split(/=(.*)/s); renders.push({ name: n, file: f }); }
  else { console.error(`validate.mjs: unexpected argument ${args[i]}`); process.exit(2); }
}
if (!rulesFile || renders.length === 0) {
  console.error("usage: node validate.mjs --rules RULES.yaml [--agent BIN] [--tmp DIR] NAME=FILE...");
  process.exit(2);
}

// ---------------------------------------------------------------- reporting
let failures = 0, checks = 0;
let current = "";
function fail(msg) { failures++; console.log(`FAIL ${current}: ${msg}`); }
function check(cond, msg) { checks++; if (!cond) fail(msg); return !!cond; }

// ---------------------------------------------------------------- schemas
const MODELS = {
  "v1/ConfigMap": "kubernetes-models/v1/ConfigMap",
  "v1/Service": "kubernetes-models/v1/Service",
  "v1/Secret": "kubernetes-models/v1/Secret",
  "apps/v1/StatefulSet": "kubernetes-models/apps/v1/StatefulSet",
  "apps/v1/Deployment": "kubernetes-models/apps/v1/Deployment",
  "monitoring.coreos.com/v1/PodMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
  "monitoring.coreos.com/v1/ServiceMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor",
  "monitoring.coreos.com/v1/PrometheusRule": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule",
};
async function model(spec) {
  const mod = await import(spec);
  const name = spec.split("/").pop();
  return mod[name];
}
const Container = await model("kubernetes-models/v1/Container");
const PVCSpec = await model("kubernetes-models/v1/PersistentVolumeClaimSpec");
const VolumeProjection = await model("kubernetes-models/v1/VolumeProjection");

// Runs the model's compiled schema on a Proxy of the data that records which properties the
// validator looks up. The compiled validators read every property their schema declares and
// enumerate the keys of maps (additionalProperties), so a key of an object the validator
// visited that it neither read nor enumerated is unknown to the schema: a typo, or a field at
// the wrong level. Objects it never visited (free-form fields) are not judged.
function strictValidate(Model, data, where) {
  const records = new Map();
  const wrap = (v) => {
    if (v === null || typeof v !== "object") return v;
    let rec = records.get(v);
    if (!rec) { rec = { keys: new Set(), enumerated: false, touched: false }; records.set(v, rec); }
    return new Proxy(v, {
      get(t, k, r) { rec.touched = true; if (typeof k === "string") rec.keys.add(k); return wrap(Reflect.get(t, k, r)); },
      has(t, k) { rec.touched = true; if (typeof k === "string") rec.keys.add(k); return Reflect.has(t, k); },
      ownKeys(t) { rec.touched = true; rec.enumerated = true; return Reflect.ownKeys(t); },
    });
  };
  checks++;
  try {
    Model.prototype.validate.call(wrap(data));
  } catch (e) {
    fail(`${where}: schema: ${String(e.message).split("\n").join("; ")}`);
    return false;
  }
  let ok = true;
  const walk = (v, p) => {
    if (v === null || typeof v !== "object") return;
    if (Array.isArray(v)) { v.forEach((x, i) => walk(x, `${p}[${i}]`)); return; }
    const rec = records.get(v);
    if (rec && rec.touched && !rec.enumerated) {
      for (const k of Object.keys(v)) {
        if (!rec.keys.has(k)) { ok = false; fail(`${where}: unknown field ${p}.${k}`); }
      }
    }
    for (const [k, x] of Object.entries(v)) walk(x, `${p}.${k}`);
  };
  walk(data, "");
  return ok;
}

// ---------------------------------------------------------------- helpers
const get = (o, ...ks) => ks.reduce((x, k) => (x == null ? undefined : x[k]), o);
const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);
const rulesGroups = YAML.parse(readFileSync(rulesFile, "utf8")).groups;
const scratch = mkdtempSync(path.join(tmpBase, "agent-manifests-"));

function checkPostgresCluster(pc, where) {
  check(pc.apiVersion === "postgres-operator.crunchydata.com/v1beta1", `${where}: apiVersion ${pc.apiVersion}`);
  check(typeof get(pc, "metadata", "name") === "string" && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(pc.metadata.name),
    `${where}: metadata.name must be a DNS label`);
  check(get(pc, "spec", "postgresVersion") === 15, `${where}: spec.postgresVersion must be 15`);
  const instances = get(pc, "spec", "instances");
  if (!check(Array.isArray(instances) && instances.length > 0, `${where}: spec.instances must be a non-empty list`)) return;
  instances.forEach((inst, i) => {
    const w = `${where}: spec.instances[${i}]`;
    check(inst.dataVolumeClaimSpec && typeof inst.dataVolumeClaimSpec === "object", `${w}.dataVolumeClaimSpec is required`);
    if (inst.dataVolumeClaimSpec) strictValidate(PVCSpec, inst.dataVolumeClaimSpec, `${w}.dataVolumeClaimSpec`);
    if (inst.containers !== undefined) {
      if (check(Array.isArray(inst.containers), `${w}.containers must be a list`))
        inst.containers.forEach((c, j) => strictValidate(Container, c, `${w}.containers[${j}]`));
    }
  });
  const files = get(pc, "spec", "config", "files");
  if (files !== undefined && check(Array.isArray(files), `${where}: spec.config.files must be a list`))
    files.forEach((f, j) => strictValidate(VolumeProjection, f, `${where}: spec.config.files[${j}]`));
}

// Returns { container, volumes (name -> volume | description), podLabels, configMapFor(mount) }.
function findAgent(objs, expect) {
  if (expect.workload === "StatefulSet") {
    const sts = byKind(objs, "StatefulSet");
    if (!check(sts.length === 1, `expected one StatefulSet, found ${sts.length}`)) return null;
    const pod = sts[0].spec.template;
    const volumes = Object.fromEntries((pod.spec.volumes || []).map((v) => [v.name, v]));
    for (const t of sts[0].spec.volumeClaimTemplates || []) volumes[t.metadata.name] = { persistentVolumeClaim: t };
    return { workload: sts[0], pod: pod.spec, container: (pod.spec.containers || []).find((c) => c.name === "agent"),
      volumes, podLabels: pod.metadata.labels };
  }
  const pcs = byKind(objs, "PostgresCluster");
  if (!check(pcs.length >= 1, "expected a PostgresCluster")) return null;
  const pc = pcs[0];
  const inst = get(pc, "spec", "instances", 0) || {};
  return { workload: pc, pod: null, container: (inst.containers || []).find((c) => c.name === "agent"),
    volumes: PGO_VOLUMES, podLabels: get(pc, "spec", "metadata", "labels") };
}

// ---------------------------------------------------------------- per render
for (const { name, file } of renders) {
  current = name;
  const expect = EXPECT[name];
  if (!check(expect, `no expectations for render ${name} in validate.mjs`)) continue;
  let objs;
  try {
    objs = YAML.parseAllDocuments(readFileSync(file, "utf8")).map((d) => {
      if (d.errors.length) throw new Error(d.errors.map((e) => e.message).join("; "));
      return d.toJS();
    }).filter((o) => o != null);
  } catch (e) { fail(`YAML: ${e.message}`); continue; }
  const before = failures;

  // 1. every object against its schema
  for (const o of objs) {
    const where = `${o.kind}/${get(o, "metadata", "name")}`;
    const key = `${o.apiVersion}/${o.kind}`;
    if (o.kind === "PostgresCluster") { checkPostgresCluster(o, where); continue; }
    if (!check(MODELS[key], `${where}: no schema for ${key}`)) continue;
    strictValidate(await model(MODELS[key]), o, where);
    if (expect.namespace !== undefined)
      check(get(o, "metadata", "namespace") === expect.namespace, `${where}: namespace ${get(o, "metadata", "namespace")}, want ${expect.namespace}`);
  }
  for (const o of byKind(objs, "PostgresCluster"))
    if (expect.namespace !== undefined)
      check(o.metadata.namespace === expect.namespace, `PostgresCluster/${o.metadata.name}: namespace ${o.metadata.namespace}, want ${expect.namespace}`);

  // 2. the PrometheusRule is the rules file
  const prs = byKind(objs, "PrometheusRule");
  if (check(prs.length === 1, `expected one PrometheusRule, found ${prs.length}`))
    check(isDeepStrictEqual(prs[0].spec.groups, rulesGroups),
      "PrometheusRule spec.groups differ from config/alerts/agent-rules.yaml groups (run tests/manifests/generate-prometheusrule.sh)");

  // 3. the agent container
  const found = findAgent(objs, expect);
  if (!found) continue;
  const c = found.container;
  if (!check(c, `no container named agent in the ${expect.workload}`)) continue;
  check(c.image === expect.image, `agent image ${c.image}, want ${expect.image}`);
  const port = (c.ports || []).find((p) => p.name === "metrics");
  check(port && port.containerPort === 9451 && (port.protocol ?? "TCP") === "TCP", "agent needs port metrics 9451/TCP");
  check(get(c, "livenessProbe", "httpGet", "path") === "/healthz" && get(c, "livenessProbe", "httpGet", "port") === "metrics",
    "agent livenessProbe must be httpGet /healthz on port metrics");
  check(get(c, "readinessProbe", "httpGet", "path") === "/readyz" && get(c, "readinessProbe", "httpGet", "port") === "metrics",
    "agent readinessProbe must be httpGet /readyz on port metrics");
  check(isDeepStrictEqual(get(c, "resources", "requests"), expect.requests), `agent requests ${JSON.stringify(get(c, "resources", "requests"))}, want ${JSON.stringify(expect.requests)}`);
  check(isDeepStrictEqual(get(c, "resources", "limits"), expect.limits), `agent limits ${JSON.stringify(get(c, "resources", "limits"))}, want ${JSON.stringify(expect.limits)}`);
  const sc = c.securityContext || {};
  check(sc.runAsNonRoot === true, "agent securityContext.runAsNonRoot must be true");
  check(sc.allowPrivilegeEscalation === false, "agent securityContext.allowPrivilegeEscalation must be false");
  check(sc.readOnlyRootFilesystem === false, "agent securityContext.readOnlyRootFilesystem must be false (scratch restore)");
  check((get(sc, "capabilities", "drop") || []).includes("ALL"), "agent must drop ALL capabilities");
  check(sc.runAsUser === undefined && sc.privileged !== true, "agent must not fix runAsUser nor be privileged (OpenShift restricted SCC)");
  const mounts = Object.fromEntries((c.volumeMounts || []).map((m) => [m.mountPath, m]));
  for (const m of c.volumeMounts || [])
    check(found.volumes[m.name] !== undefined, `agent mounts volume ${m.name}, which the pod does not have`);
  for (const p of ["/pgdata", "/etc/pgbackrest/conf.d", "/etc/podinfo", "/etc/agent"])
    check(mounts[p], `agent has no volume mounted at ${p}`);

  // 4. the pod: annotations file and config file come from where they should
  let configMapName;
  if (expect.workload === "StatefulSet") {
    const podinfo = mounts["/etc/podinfo"] && found.volumes[mounts["/etc/podinfo"].name];
    check((get(podinfo, "downwardAPI", "items") || []).some((it) => it.path === "annotations" && get(it, "fieldRef", "fieldPath") === "metadata.annotations"),
      "the volume at /etc/podinfo must be a downwardAPI volume with annotations <- metadata.annotations");
    const cfg = mounts["/etc/agent"] && found.volumes[mounts["/etc/agent"].name];
    configMapName = get(cfg, "configMap", "name");
    const psc = found.pod.securityContext || {};
    check(psc.runAsUser === undefined && psc.fsGroup === undefined, "pod securityContext must not set runAsUser or fsGroup (restricted SCC assigns them)");
    for (const ct of found.pod.containers)
      check(get(ct, "securityContext", "runAsUser") === undefined && get(ct, "securityContext", "privileged") !== true,
        `container ${ct.name} must not fix runAsUser nor be privileged`);
    const svc = byKind(objs, "Service").find((s) => s.metadata.name === found.workload.spec.serviceName);
    check(svc && svc.spec.clusterIP === "None", `StatefulSet serviceName ${found.workload.spec.serviceName} must be a headless Service in the render`);
    const metricsSvc = byKind(objs, "Service").find((s) => (s.spec.ports || []).some((p) => p.targetPort === "metrics" || p.targetPort === 9451));
    check(metricsSvc && matches(metricsSvc.spec.selector, found.podLabels), "a Service must select the pods on their metrics port");
    for (const v of Object.values(found.volumes)) {
      const cm = get(v, "configMap", "name");
      if (cm) check(byKind(objs, "ConfigMap").some((m) => m.metadata.name === cm), `volume refers to ConfigMap ${cm}, which is not in the render`);
    }
    check(mounts["/pgdata"] && get(found.volumes[mounts["/pgdata"].name], "persistentVolumeClaim"), "/pgdata must be a volumeClaimTemplate");
  } else {
    check(mounts["/etc/podinfo"] && mounts["/etc/podinfo"].name === "database-containerinfo",
      "on PGO, /etc/podinfo must be PGO's Downward API volume database-containerinfo (it has the file annotations)");
    check(mounts["/pgdata"] && mounts["/pgdata"].name === "postgres-data", "on PGO, /pgdata must be the volume postgres-data");
    check(mounts["/etc/pgbackrest/conf.d"] && mounts["/etc/pgbackrest/conf.d"].name === "pgbackrest-config", "on PGO, /etc/pgbackrest/conf.d must be the volume pgbackrest-config");
    check(mounts["/etc/agent"] && mounts["/etc/agent"].name === "postgres-config", "on PGO, /etc/agent must be the volume postgres-config (spec.config.files)");
    const files = get(found.workload, "spec", "config", "files") || [];
    const proj = files.find((f) => (get(f, "configMap", "items") || []).some((it) => it.key === "agent.yaml" && it.path === "agent.yaml"));
    check(proj, "spec.config.files must project the ConfigMap key agent.yaml to agent.yaml");
    configMapName = get(proj, "configMap", "name");
  }
  const cm = byKind(objs, "ConfigMap").find((m) => m.metadata.name === configMapName);
  if (!check(cm && cm.data && typeof cm.data["agent.yaml"] === "string", `the agent's ConfigMap ${configMapName} with key agent.yaml is not in the render`)) continue;
  // No content-hash suffix: on PGO the name is in the pod template, and a new one rolls every instance.
  check(String(configMapName).endsWith("agent-config"), `the agent's ConfigMap must keep a stable name (no hash suffix), got ${configMapName}`);

  // 5. the PodMonitor scrapes these pods as job="agent"
  const pms = byKind(objs, "PodMonitor");
  if (check(pms.length === 1, `expected one PodMonitor, found ${pms.length}`)) {
    const pm = pms[0];
    check(matches(get(pm, "spec", "selector", "matchLabels"), found.podLabels),
      `PodMonitor selector ${JSON.stringify(get(pm, "spec", "selector", "matchLabels"))} does not match the pod labels ${JSON.stringify(found.podLabels)}`);
    check(get(found.podLabels, SCRAPE_LABEL[0]) === SCRAPE_LABEL[1], `pods need the label ${SCRAPE_LABEL.join("=")}`);
    const ep = (pm.spec.podMetricsEndpoints || [])[0] || {};
    check(ep.port === "metrics" && (ep.path ?? "/metrics") === "/metrics", "PodMonitor must scrape port metrics, path /metrics");
    check((ep.relabelings || []).some((r) => r.targetLabel === "job" && r.replacement === "agent"),
      'PodMonitor must set job="agent" (the alert rules use up{job="agent"})');
  }

  // 6. the agent's config
  let conf;
  try { conf = YAML.parse(cm.data["agent.yaml"]); } catch (e) { fail(`agent.yaml: ${e.message}`); continue; }
  check(isDeepStrictEqual(conf.schedules, expect.schedules), `agent.yaml schedules ${JSON.stringify(conf.schedules)}, want ${JSON.stringify(expect.schedules)}`);
  check(get(conf, "http", "listen") === "0.0.0.0:9451", "agent.yaml http.listen must be 0.0.0.0:9451 (the metrics port)");
  check(path.posix.dirname(get(conf, "manual", "annotations_file") || "") === "/etc/podinfo", "manual.annotations_file must be in /etc/podinfo");
  for (const k of [["state_dir"], ["restore", "scratch"], ["postgres", "data"], ["dump", "output"]])
    check(String(get(conf, ...k)).startsWith("/pgdata/"), `agent.yaml ${k.join(".")} must be on the data volume (/pgdata/...)`);
  // pgBackRest's own discovery reads every file of conf.d; --config alone would skip them.
  check(!get(conf, "pgbackrest", "config") && !get(conf, "pgbackrest", "config_path"), "agent.yaml must leave pgbackrest.config and config_path unset: pgBackRest finds /etc/pgbackrest/conf.d itself");
  if (agentBin) {
    const f = path.join(scratch, `${name.replace(/\//g, "-")}-agent.yaml`);
    writeFileSync(f, cm.data["agent.yaml"]);
    const r = spawnSync(agentBin, ["config", "check", f], { encoding: "utf8" });
    check(r.status === 0, `agent config check: exit ${r.status}: ${(r.stdout || "") + (r.stderr || "")}`.trim());
  }

  console.log(`${failures === before ? "ok  " : "FAIL"} ${name}: ${objs.length} objects (${objs.map((o) => o.kind).join(", ")})`);
}
rmSync(scratch, { recursive: true, force: true });

console.log(`${checks - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
