#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Builds the `make bench` report from the guest's raw results.

report.py RAW_DIR OUT.json OUT.png --kernel K --accel A [--date D]
report.py --from-json REPORT.json OUT.png

RAW_DIR holds STORE.JOB.CONTENDER.REP.json (fio JSON) and COST.DRIVER.REP.txt (seconds).
Writes the JSON report (schema in Documentation/benchmark-schema.rst), a PNG plot, and prints a
markdown table. With --from-json, the plot and the table again from a report (`make
bench-plot`). No matplotlib is an error: scripts/setup installs it.
"""

import argparse
import datetime
import glob
import json
import os
import statistics

CONTENDERS = ["raw", "c-buffered", "c-dio", "rust-buffered", "rust-dio"]


USER_HZ = 100


def fio_numbers(path):
    with open(path) as f:
        d = json.load(f)
    iops = bw = 0.0
    lat50 = lat99 = 0.0
    cpu = 0.0
    ios = 0
    for job in d["jobs"]:
        for kind in ("read", "write"):
            k = job[kind]
            if k["io_bytes"] == 0:
                continue
            iops += k["iops"]
            bw += k["bw_bytes"]
            ios += k["total_ios"]
            pct = k.get("clat_ns", {}).get("percentile", {})
            lat50 = max(lat50, pct.get("50.000000", 0) / 1000)
            lat99 = max(lat99, pct.get("99.000000", 0) / 1000)
        # usr/sys are percentages of the run time.
        cpu += (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] / 1000
    runtime_s = max(job["job_runtime"] for job in d["jobs"]) / 1000
    # The guest's whole busy CPU time over the fio process (workers and interrupts
    # included), scaled from fio's wall time to its measured window.
    guest_cpu = None
    try:
        with open(path[:-len(".json")] + ".cpu") as f:
            ticks, wall = f.read().split()
        guest_cpu = int(ticks) / USER_HZ * min(1.0, runtime_s / float(wall))
    except (OSError, ValueError, ZeroDivisionError):
        pass
    return {"iops": iops, "bw_mib_s": bw / 2**20, "p50_us": lat50, "p99_us": lat99,
            "cpu_us_per_io": guest_cpu / ios * 1e6 if ios and guest_cpu is not None else None,
            "fio_cpu_us_per_io": cpu / ios * 1e6 if ios else None}


def median_of(runs, key):
    vals = [r[key] for r in runs if r[key] is not None]
    return statistics.median(vals) if vals else None


def build_report(a):
    runs = {}
    for p in glob.glob(os.path.join(a.raw, "*.json")):
        store, job, who, _rep, _ = os.path.basename(p).split(".")
        runs.setdefault((store, job), {}).setdefault(who, []).append(fio_numbers(p))

    jobs = []
    for (store, job), by_who in sorted(runs.items()):
        entry = {"store": store, "job": job, "contenders": {}}
        for who in CONTENDERS:
            if who in by_who:
                iops = [r["iops"] for r in by_who[who]]
                entry["contenders"][who] = {k: median_of(by_who[who], k)
                                            for k in by_who[who][0]} | {
                    "iops_min": min(iops), "iops_max": max(iops), "runs": len(iops)}
        c = entry["contenders"]
        for mode in ("buffered", "dio"):
            r, cc, raw = c.get(f"rust-{mode}"), c.get(f"c-{mode}"), c.get("raw")
            if r and cc and cc["iops"]:
                entry[f"rust_vs_c_{mode}"] = r["iops"] / cc["iops"]
            if r and raw and raw["iops"]:
                entry[f"rust_vs_raw_{mode}"] = r["iops"] / raw["iops"]
        entry["rust_vs_c"] = {m: entry.get(f"rust_vs_c_{m}") for m in ("buffered", "dio")}
        entry["rust_vs_raw"] = {m: entry.get(f"rust_vs_raw_{m}") for m in ("buffered", "dio")}
        jobs.append(entry)

    costs = {}
    for p in glob.glob(os.path.join(a.raw, "*.txt")):
        cost, drv, _rep, _ = os.path.basename(p).split(".")
        with open(p) as f:
            costs.setdefault(cost, {}).setdefault(drv, []).append(float(f.read().strip()))
    cost_summary = {}
    for cost, by in costs.items():
        m = {drv: statistics.median(v) for drv, v in by.items()}
        if m.get("c"):
            m["rust_vs_c"] = m.get("rust", 0) / m["c"]
        cost_summary[cost] = m

    report = {
        "schema": 1,
        "date": a.date or datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "kernel": a.kernel,
        "accelerator": a.accel,
        "jobs": jobs,
        "setup_seconds": cost_summary,
    }
    with open(a.out_json, "w") as f:
        json.dump(report, f, indent=1)
    return report



def print_table(report):
    jobs, cost_summary = report["jobs"], report["setup_seconds"]
    print(f"rust_loop benchmark, kernel {report['kernel']}, accelerator "
          f"{report['accelerator']}, {report['date']}\n")
    print("| store | job | raw IOPS | C buf | rust buf | rust/C buf | C dio | rust dio | "
          "rust/C dio | rust dio/raw | p99 µs C/rust dio | CPU µs/IO C/rust buf | "
          "CPU µs/IO C/rust dio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for e in jobs:
        c = e["contenders"]

        def g(w, k="iops", fmt="{:.0f}"):
            return fmt.format(c[w][k]) if w in c and c[w][k] is not None else "-"

        def r(v):
            return f"{v:.2f}" if v else "-"
        print(f"| {e['store']} | {e['job']} | {g('raw')} | {g('c-buffered')} | "
              f"{g('rust-buffered')} | {r(e['rust_vs_c']['buffered'])} | {g('c-dio')} | "
              f"{g('rust-dio')} | {r(e['rust_vs_c']['dio'])} | {r(e['rust_vs_raw']['dio'])} | "
              f"{g('c-dio', 'p99_us')}/{g('rust-dio', 'p99_us')} | "
              f"{g('c-buffered', 'cpu_us_per_io', '{:.1f}')}/"
              f"{g('rust-buffered', 'cpu_us_per_io', '{:.1f}')} | "
              f"{g('c-dio', 'cpu_us_per_io', '{:.1f}')}/{g('rust-dio', 'cpu_us_per_io', '{:.1f}')} |")
    for mode in ("buffered", "dio"):
        ratios = [e["rust_vs_c"][mode] for e in jobs if e["rust_vs_c"][mode]]
        if ratios:
            print(f"\nrust/C {mode}: median {statistics.median(ratios):.2f}, "
                  f"min {min(ratios):.2f}, max {max(ratios):.2f} over {len(ratios)} jobs", end="")
    print()
    if cost_summary:
        print("\n| setup cost (s, median) | C | rust | rust/C |\n|---|---|---|---|")
        for cost, m in sorted(cost_summary.items()):
            print(f"| {cost} | {m.get('c', 0):.3f} | {m.get('rust', 0):.3f} | "
                  f"{m.get('rust_vs_c', 0):.2f} |")



def plot(report, out_png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("error: no matplotlib for the plot: run scripts/setup (it installs "
                         "matplotlib in the project venv) and make bench-plot")
    jobs = report["jobs"]
    labels = [f"{e['store']}\n{e['job']}" for e in jobs]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(8, len(jobs) * 1.6), 9))
    width = 0.16
    for i, who in enumerate(CONTENDERS):
        got = [e["contenders"].get(who, {}) for e in jobs]
        vals = [c.get("iops") or 0 for c in got]
        # Error bars: the spread (min to max) of the runs.
        err = [[v - (c.get("iops_min") or v) for v, c in zip(vals, got)],
               [(c.get("iops_max") or v) - v for v, c in zip(vals, got)]]
        ax1.bar([x + (i - 2) * width for x in range(len(jobs))], vals, width, label=who,
                yerr=err, capsize=2, error_kw={"linewidth": 0.7})
    ax1.set_ylabel("IOPS (median, bars: min-max)")
    ax1.set_xticks(range(len(jobs)))
    ax1.set_xticklabels(labels, fontsize=7)
    ax1.legend(fontsize=8)
    ax1.set_title(f"rust_loop vs C loop vs raw ({report['accelerator']}, {report['kernel']})")
    for i, mode in enumerate(("buffered", "dio")):
        vals = [e["rust_vs_c"][mode] or 0 for e in jobs]
        ax2.bar([x + (i - 0.5) * 0.35 for x in range(len(jobs))], vals, 0.35,
                label=f"rust/C {mode}")
    ax2.axhline(1.0, color="black", linewidth=0.8)
    ax2.set_ylabel("ratio (IOPS)")
    ax2.set_xticks(range(len(jobs)))
    ax2.set_xticklabels(labels, fontsize=7)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", help="RAW_DIR OUT.json OUT.png, or OUT.png with --from-json")
    ap.add_argument("--from-json", metavar="REPORT.json", help="plot and tabulate this report")
    ap.add_argument("--kernel", default="")
    ap.add_argument("--accel", default="")
    ap.add_argument("--date", default=None, help="of the run (default: now), ISO 8601")
    a = ap.parse_args()
    if a.from_json:
        if len(a.files) != 1:
            ap.error("--from-json takes one file: OUT.png")
        with open(a.from_json) as f:
            report = json.load(f)
        out_png = a.files[0]
    else:
        if len(a.files) != 3:
            ap.error("expected RAW_DIR OUT.json OUT.png")
        a.raw, a.out_json, out_png = a.files
        report = build_report(a)
    print_table(report)
    plot(report, out_png)


if __name__ == "__main__":
    main()
