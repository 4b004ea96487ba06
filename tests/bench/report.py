#!/usr/bin/env python3
"""Turns the raw samples of tests/bench/run.sh into the Markdown report.

raw.tsv lines: scale, bench, side (A agent, B plain tool, - neither), round, value, note.
Ratios are A/B: below 1.0 the agent is faster.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
from collections import defaultdict


def run(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def machine():
    model, cores, memory = "unknown", 0, 0
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("processor"):
                cores += 1
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // (1024 * 1024)
    return f"{model}, {cores} vCPUs, {memory} GiB RAM, Linux {platform.release()}"


def agent_default(agent, key):
    """A default as the agent's own `config example` prints it."""
    try:
        text = subprocess.run([agent, "config", "example"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown"
    for line in text.splitlines():
        if line.strip().startswith(key + ":"):
            return line.split(":", 1)[1].split("#", 1)[0].strip()
    return "unknown"


def load(path):
    samples = defaultdict(list)  # (scale, bench, side) -> [(round, value, note)]
    with open(path) as raw:
        for line in raw:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 5 or fields[4] == "":
                continue
            scale, bench, side, round_, value = fields[:5]
            note = fields[5] if len(fields) > 5 else ""
            samples[(int(scale), bench, side)].append((int(round_), float(value), note))
    return samples


def values(samples, scale, bench, side):
    return [v for _, v, _ in sorted(samples.get((scale, bench, side), []))]


def pairs(samples, scale, bench):
    a = dict((r, v) for r, v, _ in samples.get((scale, bench, "A"), []))
    b = dict((r, v) for r, v, _ in samples.get((scale, bench, "B"), []))
    return [(a[r], b[r]) for r in sorted(a) if r in b]


def table_header(emit, columns):
    """A Markdown table's header row and the separator row with one cell per column."""
    emit("| " + " | ".join(columns) + " |")
    emit("|" + "---|" * len(columns))


def verdict(ok):
    return "met" if ok else "**missed**"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--command", required=True)
    args = parser.parse_args()
    samples = load(args.raw)
    scales = sorted({scale for scale, _, _ in samples})
    out = []
    emit = out.append

    emit("# Benchmark results")
    emit("")
    emit(f"Measured {datetime.date.today().isoformat()} by `{args.command}` (as root or as an ordinary user).")
    emit("")
    emit(f"- Machine: {machine()}")
    emit(f"- agent {run([args.agent, '--version'])}, {run(['/usr/lib/postgresql/15/bin/postgres', '--version'])}, "
         f"{run(['pgbackrest', 'version'])}, {run(['wrk', '-v'])}")
    emit("- Data: `pgbench -i -s SCALE` in database `api`, lz4 repository with `process-max=2` in pgbackrest.conf "
         "(the runbook's restore and both sides' backups); a full backup, 5 s of pgbench traffic, the recorded "
         "target, then an incremental backup (tests/support/make-cluster.sh). Before every timed run: `sync`, "
         "so neither side pays for the other's writeback.")
    emit(f"- The agent runs with its defaults: restore with `process-max` {agent_default(args.agent, 'process_max')} "
         "and without fsync (libeatmydata), the dump's checksum xxh128; the compared backups at niceness 0 "
         "(`backup_nice: 0`, as pgbackrest runs), the one under the /metrics load at its default 10.")
    emit("- Every comparison alternates A (agent) and B (the plain tool) pair by pair in the same run; "
         "the ratio is A/B (below 1.0 the agent is faster), given as the median of the pairwise ratios "
         "with the lowest and highest pair in brackets.")
    emit("")

    emit("## Point-in-time dump: `agent dump --target` against the five runbook commands")
    emit("")
    table_header(emit, ["scale", "database", "scratch", "agent (median s)", "runbook (median s)",
                        "ratio A/B [min-max]", "target"])
    for scale in scales:
        size = values(samples, scale, "database-bytes", "-")
        size_text = f"{size[0] / 1e6:.0f} MB" if size else "?"
        for mode, label in (("empty", "empty"), ("delta", "--delta over the last copy")):
            p = pairs(samples, scale, f"dump-{mode}")
            if not p:
                continue
            ratios = [a / b for a, b in p]
            ratio = statistics.median(ratios)
            limit = 0.85 if (mode == "empty" and scale == max(scales) and scale >= 200) else 1.0
            emit(f"| {scale} | {size_text} | {label} | {statistics.median([a for a, _ in p]):.2f} | "
                 f"{statistics.median([b for _, b in p]):.2f} | {ratio:.3f} [{min(ratios):.3f}-{max(ratios):.3f}] | "
                 f"<= {limit} {verdict(ratio <= limit)} |")
    emit("")

    emit("## Where the dump's time goes (median seconds per step)")
    emit("")
    emit("The agent's steps are from the manifest it writes (`durations_seconds`); the runbook's are timed "
         "around each command (its wait includes the replay-timestamp query).")
    emit("")
    table_header(emit, ["scale", "scratch", "side", "restore", "start + wait", "dump", "stop", "other", "total"])
    for scale in scales:
        for mode in ("empty", "delta"):
            for side, name in (("A", "agent"), ("B", "runbook")):
                steps = {}
                for (s, bench, sd), rows in samples.items():
                    prefix = f"step-{mode}-"
                    if s == scale and sd == side and bench.startswith(prefix):
                        steps[bench[len(prefix):]] = statistics.median([v for _, v, _ in rows])
                if not steps:
                    continue
                shown = {
                    "restore": steps.get("restore", 0),
                    "start": steps.get("start", 0) + steps.get("wait", 0),
                    "dump": steps.get("dump", 0),
                    "stop": steps.get("stop", 0),
                }
                other = sum(steps.values()) - sum(shown.values())
                emit(f"| {scale} | {mode} | {name} | {shown['restore']:.2f} | {shown['start']:.2f} | "
                     f"{shown['dump']:.2f} | {shown['stop']:.2f} | {other:.2f} | {sum(steps.values()):.2f} |")
    emit("")
    emit("\"other\" for the agent: its checks before anything is written, the scratch layout, the "
         "verification of the replay timestamp and the publication of the dump (fsync and rename).")
    emit("")

    emit("## Restore drill next to the dump (median seconds per phase)")
    emit("")
    emit("`agent drill --target` at the dump's target, restoring `--delta` over the agent's last copy like "
         "the dump's delta runs, from its manifest. The drill's restore (check to verify) is the measured "
         "RTO; instead of pg_dump it reads every table of `api` in full, runs amcheck on every B-tree index "
         "and table, then pgBackRest's verify of the set (skipped before 2.55) and pg_checksums (skipped: "
         "the fixture has no data checksums).")
    emit("")
    table_header(emit, ["scale", "job", "runs", "check + prepare", "restore", "start + wait", "verify",
                        "pgbackrest verify", "dump / checks", "stop + checksums", "other", "total"])
    for scale in scales:
        for name, prefix in (("dump", "step-delta-"), ("drill", "step-drill-")):
            steps = {}
            runs = 0
            for (s, bench, sd), rows in samples.items():
                if s == scale and sd == "A" and bench.startswith(prefix):
                    steps[bench[len(prefix):]] = statistics.median([v for _, v, _ in rows])
                    runs = max(runs, len(rows))
            if not steps:
                continue
            shown = {
                "check": steps.get("check", 0) + steps.get("prepare", 0),
                "restore": steps.get("restore", 0),
                "start": steps.get("start", 0) + steps.get("wait", 0),
                "verify": steps.get("verify", 0),
                "pgbackrest-verify": steps.get("pgbackrest-verify", 0),
                "work": steps.get("dump", 0) + steps.get("checks", 0),
                "stop": steps.get("stop", 0) + steps.get("checksums", 0),
            }
            other = max(0.0, sum(steps.values()) - sum(shown.values()))  # float noise, never negative
            emit(f"| {scale} | {name} | {runs} | {shown['check']:.2f} | {shown['restore']:.2f} | "
                 f"{shown['start']:.2f} | {shown['verify']:.2f} | {shown['pgbackrest-verify']:.2f} | "
                 f"{shown['work']:.2f} | {shown['stop']:.2f} | {other:.2f} | {sum(steps.values()):.2f} |")
    emit("")

    emit("## One database of three: `agent dump --database api` against the runbook")
    emit("")
    emit("A cluster of three databases of the same size (`api` and two file copies of it, "
         "`make-cluster.sh --pgbench-clones`). Both sides into an empty scratch: the agent restores only "
         "`api` (with `template0`, `template1` and `postgres`; `restore.only_dumped_database`, its default), "
         "the runbook all three. Scratch: the disk blocks each copy used (`du`; the left-out databases are "
         "sparse files).")
    emit("")
    table_header(emit, ["scale per database", "cluster", "agent (median s)", "runbook (median s)",
                        "ratio A/B [min-max]", "agent scratch", "runbook scratch", "target"])
    for scale in scales:
        p = pairs(samples, scale, "focused-dump")
        if not p:
            continue
        ratios = [a / b for a, b in p]
        ratio = statistics.median(ratios)
        size = values(samples, scale, "focused-database-bytes", "-")
        a_scratch = values(samples, scale, "focused-scratch-bytes", "A")
        b_scratch = values(samples, scale, "focused-scratch-bytes", "B")
        emit(f"| {scale} | {size[0] / 1e9 if size else 0:.2f} GB | {statistics.median([a for a, _ in p]):.2f} | "
             f"{statistics.median([b for _, b in p]):.2f} | {ratio:.3f} [{min(ratios):.3f}-{max(ratios):.3f}] | "
             f"{statistics.median(a_scratch) / 1e9 if a_scratch else 0:.2f} GB | "
             f"{statistics.median(b_scratch) / 1e9 if b_scratch else 0:.2f} GB | <= 0.5 {verdict(ratio <= 0.5)} |")
    emit("")
    table_header(emit, ["scale per database", "side", "restore", "start + wait", "dump", "stop", "other", "total"])
    for scale in scales:
        for side, name in (("A", "agent"), ("B", "runbook")):
            steps = {}
            for (s, bench, sd), rows in samples.items():
                if s == scale and sd == side and bench.startswith("step-focused-"):
                    steps[bench[len("step-focused-"):]] = statistics.median([v for _, v, _ in rows])
            if not steps:
                continue
            shown = [steps.get("restore", 0), steps.get("start", 0) + steps.get("wait", 0), steps.get("dump", 0),
                     steps.get("stop", 0)]
            other = max(0.0, sum(steps.values()) - sum(shown))
            emit(f"| {scale} | {name} | " + " | ".join(f"{v:.2f}" for v in shown) +
                 f" | {other:.2f} | {sum(steps.values()):.2f} |")
    emit("")

    emit("## The zstd stream against the plain stream")
    emit("")
    emit("`agent dump --output - --compress zstd` (A, level 3) against `agent dump --output -` (B) on the "
         "three-database cluster, pair by pair, each restoring `--delta` over the agent's copy; bytes are "
         "what reached standard output. pgbench's blank-padded rows compress far better than most real "
         "data (expect 10-30% there).")
    emit("")
    table_header(emit, ["scale per database", "zstd (median s)", "plain (median s)", "time A/B [min-max]",
                        "zstd bytes", "plain bytes", "bytes A/B", "peak RSS zstd / plain (MiB)", "target"])
    for scale in scales:
        p = pairs(samples, scale, "stream-zstd")
        if not p:
            continue
        ratios = [a / b for a, b in p]
        ratio = statistics.median(ratios)
        a_bytes = values(samples, scale, "stream-bytes", "A")
        b_bytes = values(samples, scale, "stream-bytes", "B")
        bytes_ratio = statistics.median(a_bytes) / statistics.median(b_bytes)
        a_rss = values(samples, scale, "stream-peak-rss-kib", "A")
        b_rss = values(samples, scale, "stream-peak-rss-kib", "B")
        emit(f"| {scale} | {statistics.median([a for a, _ in p]):.2f} | {statistics.median([b for _, b in p]):.2f} | "
             f"{ratio:.3f} [{min(ratios):.3f}-{max(ratios):.3f}] | {statistics.median(a_bytes) / 1e6:.1f} MB | "
             f"{statistics.median(b_bytes) / 1e6:.1f} MB | {bytes_ratio:.4f} | "
             f"{max(a_rss) / 1024:.1f} / {max(b_rss) / 1024:.1f} | time <= 1.1 {verdict(ratio <= 1.1)}, "
             f"bytes <= 0.4 {verdict(bytes_ratio <= 0.4)} |")
    emit("")

    emit("## The agent's memory at a larger scale")
    emit("")
    emit("The agent's peak resident memory (VmHWM of the agent process, not of pg_dump or the server) "
         "during every dump of this run, by database size.")
    emit("")
    table_header(emit, ["scale", "database", "dumps", "peak RSS (MiB, max)", "target"])
    for scale in scales:
        peaks = (values(samples, scale, "agent-peak-rss-kib", "A") + values(samples, scale, "large-peak-rss-kib", "A")
                 + values(samples, scale, "stream-peak-rss-kib", "A") + values(samples, scale, "stream-peak-rss-kib", "B"))
        if not peaks:
            continue
        size = (values(samples, scale, "large-database-bytes", "-") or values(samples, scale, "database-bytes", "-")
                or values(samples, scale, "focused-database-bytes", "-"))
        emit(f"| {scale} | {size[0] / 1e9 if size else 0:.2f} GB | {len(peaks)} | {max(peaks) / 1024:.1f} | "
             f"< 64 {verdict(max(peaks) / 1024 < 64)} |")
    for scale in scales:
        skipped = samples.get((scale, "large-skipped", "-"))
        if skipped:
            emit("")
            emit(f"Scale {scale} was skipped: {skipped[0][1]:.0f} {skipped[0][2]}.")
        large = values(samples, scale, "large-dump", "A")
        if large:
            zstd = values(samples, scale, "large-zstd", "A")
            emit("")
            emit(f"At scale {scale}, into an empty scratch: the plain dump to a file took {large[0]:.1f} s"
                 + (f", the zstd stream {zstd[0]:.1f} s" if zstd else "") + ".")
    emit("")

    emit("## Backups: `agent backup` against `pgbackrest backup` run directly")
    emit("")
    emit("Two measures of the overhead. The agent's own time: its wall time minus that of the pgbackrest "
         "run inside it (the `backup: done in` line of its log, 10 ms resolution), per run, "
         "as a share of that pgbackrest run. A/B: the agent's backups against plain pgbackrest's, pair by "
         "pair; two consecutive backups of this VM differ by up to ±30%, so this one cannot resolve 2%.")
    emit("")
    table_header(emit, ["scale", "type", "agent (median s)", "pgbackrest (median s)",
                        "agent's own time (median ms)", "own overhead [min-max]", "A/B overhead [min-max]",
                        "target (own overhead)"])
    for scale in scales:
        for kind in ("incr", "full"):
            p = pairs(samples, scale, f"backup-{kind}")
            if not p:
                continue
            overheads = [100 * (a / b - 1) for a, b in p]
            overhead = statistics.median(overheads)
            totals = dict((r, v) for r, v, _ in samples.get((scale, f"backup-{kind}", "A"), []))
            inside = dict((r, v) for r, v, _ in samples.get((scale, f"backup-{kind}-inside", "A"), []))
            own = [(totals[r] - inside[r], inside[r]) for r in sorted(totals) if r in inside and inside[r] > 0]
            if own:
                own_ms = statistics.median([1000 * extra for extra, _ in own])
                own_pct = [100 * extra / run for extra, run in own]
                own_cells = (f"{own_ms:.0f} | {statistics.median(own_pct):+.1f}% "
                             f"[{min(own_pct):+.1f}% to {max(own_pct):+.1f}%] | ")
                target = f"<= 2% {verdict(statistics.median(own_pct) <= 2.0)}"
            else:
                own_cells, target = "- | - | ", "not measured"
            emit(f"| {scale} | {kind} | {statistics.median([a for a, _ in p]):.2f} | "
                 f"{statistics.median([b for _, b in p]):.2f} | {own_cells}{overhead:+.1f}% "
                 f"[{min(overheads):+.1f}% to {max(overheads):+.1f}%] | {target} |")
    emit("")

    emit("## `/metrics` during a running backup against one `pgbackrest info --output=json`")
    emit("")
    table_header(emit, ["scale", "/metrics p50 (ms)", "/metrics p99 (ms)", "requests/s", "errors",
                        "backup running at the end", "backup's niceness", "pgbackrest info median (ms)",
                        "info / p50", "info / p99", "target"])
    for scale in scales:
        p50 = samples.get((scale, "metrics-p50-ms", "A"))
        p99 = samples.get((scale, "metrics-p99-ms", "A"))
        info = values(samples, scale, "pgbackrest-info", "B")
        if not p50 or not p99 or not info:
            continue
        rps = values(samples, scale, "metrics-requests-per-second", "A")
        errors = values(samples, scale, "metrics-errors", "A")
        info_ms = statistics.median(info) * 1000
        speedup = info_ms / p99[0][1]
        median_speedup = info_ms / p50[0][1]
        nice = values(samples, scale, "backup-nice", "A")
        emit(f"| {scale} | {p50[0][1]:.3f} | {p99[0][1]:.3f} | {rps[0] if rps else 0:.0f} | "
             f"{errors[0] if errors else 0:.0f} | {p99[0][2].split(': ')[-1]} | "
             f"{nice[0] if nice else 0:.0f} | {info_ms:.1f} | {median_speedup:.0f}x | {speedup:.0f}x | "
             f"p99 < 5 ms: {verdict(p99[0][1] < 5.0)}; >= 20x at p50: {verdict(median_speedup >= 20)}, "
             f"at p99: {verdict(speedup >= 20)} |")
    emit("")

    emit("## The agent's own footprint")
    emit("")
    table_header(emit, ["scale", "idle RSS (MiB)", "RSS after the /metrics load (MiB)",
                        "peak RSS during the dumps (MiB)", "target"])
    for scale in scales:
        idle = values(samples, scale, "idle-rss-kib", "A")
        busy = values(samples, scale, "busy-rss-kib", "A")
        peak = values(samples, scale, "agent-peak-rss-kib", "A")
        if not idle:
            continue
        ok = idle[0] / 1024 < 20 and (not peak or max(peak) / 1024 < 64)
        emit(f"| {scale} | {idle[0] / 1024:.1f} | {busy[0] / 1024 if busy else 0:.1f} | "
             f"{max(peak) / 1024 if peak else 0:.1f} | idle < 20, peak < 64: {verdict(ok)} |")
    for scale in scales:
        cpu = values(samples, scale, "idle-cpu-percent", "A")
        children = values(samples, scale, "idle-children-cpu-percent", "A")
        if cpu:
            emit("")
            tick = 100.0 / (os.sysconf("SC_CLK_TCK") * 60)
            emit(f"Idle CPU over 60 s with `agent run` (scale {scale}): {cpu[0]:.3f}% of one core for the agent "
                 f"itself (target < 0.5%: {verdict(cpu[0] < 0.5)}); its children (the periodic "
                 f"`pgbackrest info`) {children[0] if children else 0:.3f}%. Resolution: one clock tick "
                 f"in 60 s, {tick:.3f}%.")
    emit("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
