# SPDX-License-Identifier: MIT
"""Turn what bench/run.sh measured into markdown (printed on stdout).

    /usr/bin/python3 bench/report.py WORKDIR

WORKDIR holds meta.txt (key=value lines), runs.txt (loadgen's key=value
lines, one per server and mode), memory.txt ("renewals rss_kib
private_dirty_kib seconds" lines of the renewal soak) and optionally
loaded.txt (the same for the benchmark daemon after the load).
"""

import os
import sys

MODES = [("keepalive", 1), ("keepalive", 16), ("keepalive", 256), ("new-conn", 16)]
SERVERS = ["fedtokend", "nginx", "floor"]
# The targets of bench/README.md.
KEEPALIVE_VS_NGINX = 1.5
NEWCONN_VS_NGINX = 1.0
VS_FLOOR = 0.8
MAX_PRIVATE_DIRTY_KIB = 4096
GROWTH_LIMIT_KIB = 64


def read_kv_lines(path):
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts or parts[0] != "loadgen":
                continue
            rows.append(dict(p.split("=", 1) for p in parts[1:] if "=" in p))
    return rows


def read_meta(path):
    meta = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            if k:
                meta[k] = v
    return meta


def read_memory(path):
    samples = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 4:
                    samples.append(tuple(float(x) for x in p))
    return samples


def round_ratio(rounds, a, b, mode, conns, field="rps"):
    """The median over rounds of a's field / b's field in the same round: the
    servers of a round ran minutes apart at most, so a slow spell of the host
    cancels out of each round's ratio."""
    ra, rb = rounds.get((a, mode, conns), []), rounds.get((b, mode, conns), [])
    ratios = sorted(float(x[field]) / float(y[field]) for x, y in zip(ra, rb) if float(y[field]) > 0)
    if not ratios:
        return None
    n = len(ratios)
    return ratios[n // 2] if n % 2 else (ratios[n // 2 - 1] + ratios[n // 2]) / 2


def mode_name(mode, conns):
    return f"keep-alive {conns}" if mode == "keepalive" else f"new conn {conns}"


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def verdict(ok):
    return "yes" if ok else "**no**"


def main():
    work = sys.argv[1]
    meta = read_meta(os.path.join(work, "meta.txt"))
    # Each server and mode ran in several rounds: keep the median round (by req/s), and the spread.
    rounds = {}
    for r in read_kv_lines(os.path.join(work, "runs.txt")):
        rounds.setdefault((r["label"], r["mode"], int(r["conns"])), []).append(r)
    runs, spread = {}, {}
    for key, rs in rounds.items():
        by_rps = sorted(rs, key=lambda r: float(r["rps"]))
        runs[key] = by_rps[(len(by_rps) - 1) // 2]
        mid = float(runs[key]["rps"])
        spread[key] = (float(by_rps[-1]["rps"]) - float(by_rps[0]["rps"])) / mid * 100 if mid > 0 else 0.0

    out = []
    w = out.append
    w("# fedtokend benchmark results")
    w("")
    w(f"Run {meta.get('date', '?')} on `{meta.get('host', '?')}`: {meta.get('nproc', '?')} CPUs "
      f"({meta.get('cpu', '?')}), kernel {meta.get('kernel', '?')}, commit `{meta.get('commit', '?')}`"
      f"{' (with uncommitted changes)' if meta.get('dirty') == 'yes' else ''}.")
    w(f"fedtokend {meta.get('build', 'release build')}, {meta.get('tokens', '10')} tokens; "
      f"{meta.get('nginx', 'nginx')}; floor = bench/floor.c. Each run: {meta.get('warmup', '?')} s warm-up, "
      f"then {meta.get('seconds', '?')} s measured; {meta.get('rounds', '1')} rounds per server and mode, "
      f"the servers taking turns, median round shown. {meta.get('pinning', '')}")
    w(f"Request `GET {meta.get('path', '?')}`; response bytes (head + body): "
      + ", ".join(f"{s} {meta.get('bytes_' + s, '?')}" for s in SERVERS) + ".")
    w("")
    w("## Throughput, latency, CPU")
    w("")
    w("| server | mode | req/s | spread % | p50 µs | p99 µs | p99.9 µs | server CPU µs/req | errors | loadgen CPU % "
      "| other CPU % |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, conns in MODES:
        for s in SERVERS:
            r = runs.get((s, mode, conns))
            if not r:
                w(f"| {s} | {mode_name(mode, conns)} | not run | | | | | | | | |")
                continue
            cpu = float(r["server_cpu_us_per_req"])
            w(f"| {s} | {mode_name(mode, conns)} | {fmt(float(r['rps']), 0)} | {fmt(spread[(s, mode, conns)], 0)} | "
              f"{fmt(float(r['p50_us']))} | "
              f"{fmt(float(r['p99_us']))} | {fmt(float(r['p999_us']))} | {fmt(cpu if cpu >= 0 else None, 2)} | "
              f"{r['errors']} | {fmt(float(r['client_cpu_pct']), 0)} | {fmt(max(0.0, float(r['other_cpu_pct'])), 0)} |")
    w("")
    w("\"spread %\" is (highest − lowest req/s of the rounds) / median: how much the machine itself wandered. "
      "\"other CPU %\" is what the rest of the machine (other processes, in % of one core) used during the "
      "measured window: anything above ~10 % means the numbers of that row are disturbed.")
    w("")
    w("## Ratios and targets")
    w("")
    w("| mode | fedtokend/nginx req/s | target | fedtokend/floor req/s | target | p99 fedtokend / nginx | "
      "CPU/req fedtokend / nginx | met |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")
    all_met = True
    for mode, conns in MODES:
        f = runs.get(("fedtokend", mode, conns))
        vs_n = round_ratio(rounds, "fedtokend", "nginx", mode, conns)
        vs_f = round_ratio(rounds, "fedtokend", "floor", mode, conns)
        p99 = round_ratio(rounds, "fedtokend", "nginx", mode, conns, "p99_us")
        cpu = round_ratio(rounds, "fedtokend", "nginx", mode, conns, "server_cpu_us_per_req")
        errors = sum(int(r["errors"]) for r in rounds.get(("fedtokend", mode, conns), []))
        want_n = KEEPALIVE_VS_NGINX if mode == "keepalive" else NEWCONN_VS_NGINX
        met = (vs_n is not None and vs_n >= want_n and vs_f is not None and vs_f >= VS_FLOOR
               and p99 is not None and p99 <= 1.0 and f is not None and errors == 0)
        all_met = all_met and met
        w(f"| {mode_name(mode, conns)} | {fmt(vs_n, 2)} | ≥ {want_n} | {fmt(vs_f, 2)} | ≥ {VS_FLOOR} | "
          f"{fmt(p99, 2)} | {fmt(cpu, 2)} | {verdict(met)} |")
    w("")
    w("Each ratio is the median over the rounds of the ratio within a round (the servers of a round ran back to "
      "back). p99 fedtokend / nginx must be ≤ 1 (no worse than nginx); fedtokend's errors must be 0 in every round.")
    w("")

    w("## Memory")
    w("")
    soak = read_memory(os.path.join(work, "memory.txt"))
    loaded = read_memory(os.path.join(work, "loaded.txt"))
    if loaded:
        _, rss, pd, _ = loaded[-1]
        w(f"Benchmark daemon after all the runs above (up to 256 connections): Rss {rss:,.0f} KiB, "
          f"Private_Dirty {pd:,.0f} KiB.")
        w("")
    mem_met = False
    if soak:
        w(f"Renewal soak: a second fedtokend with {meta.get('tokens', '10')} tokens of "
          f"{meta.get('soak_lifetime', '?')} s (each renewed about every {float(meta.get('soak_lifetime', 2)) / 2:g} s), "
          "read with `/proc/PID/smaps_rollup`; renewals counted from `/metrics` "
          "`fedtokend_refreshes_total{result=\"ok\"}` of the jwt tokens, less the first fetches. Every token "
          "was also read (JSON and raw) once a second.")
        w("")
        w("| renewals | seconds | Rss KiB | Private_Dirty KiB |")
        w("|---:|---:|---:|---:|")
        for ren, rss, pd, secs in soak:
            w(f"| {ren:,.0f} | {secs:,.0f} | {rss:,.0f} | {pd:,.0f} |")
        w("")
        target = float(meta.get("soak_renewals", 1000))
        first = next((s for s in soak if s[0] >= 100), None)
        at_target = next((s for s in soak if s[0] >= target), None)
        last = soak[-1]
        if first and at_target and last[0] >= 2 * target:
            growth_early = at_target[2] - first[2]
            growth_late = last[2] - at_target[2]
            growing = growth_late > GROWTH_LIMIT_KIB
            mem_met = at_target[2] <= MAX_PRIVATE_DIRTY_KIB and last[2] <= MAX_PRIVATE_DIRTY_KIB and not growing
            w(f"Private_Dirty: {first[2]:,.0f} KiB at {first[0]:,.0f} renewals, {at_target[2]:,.0f} KiB at "
              f"{at_target[0]:,.0f} ({growth_early:+,.0f} KiB), {last[2]:,.0f} KiB at {last[0]:,.0f} "
              f"({growth_late:+,.0f} KiB from {at_target[0]:,.0f} to {last[0]:,.0f}, "
              f"{growth_late * 1024 / max(1.0, last[0] - at_target[0]):,.0f} bytes per renewal). "
              f"Growing (more than {GROWTH_LIMIT_KIB} KiB between {target:,.0f} and {2 * target:,.0f} renewals): "
              f"{'yes' if growing else 'no'}. "
              f"Target ≤ {MAX_PRIVATE_DIRTY_KIB // 1024} MiB after {target:,.0f} renewals and not growing: "
              f"{verdict(mem_met)}.")
        else:
            w(f"The soak did not reach {2 * target:,.0f} renewals: no verdict.")
    else:
        w("The renewal soak did not run.")
    w("")
    w(f"All targets met: {verdict(all_met and mem_met)}.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
