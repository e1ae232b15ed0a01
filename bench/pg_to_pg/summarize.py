#!/usr/bin/env python3
"""Medians of run.sh's results as a Markdown table (stdlib only).

  summarize.py RESULTS.tsv [RUN_ID]     RUN_ID defaults to the newest one in the file

Only runs whose target check passed (verify = ok) count; the table says how many did.
"""
import csv
import statistics
import sys
from collections import OrderedDict


def fmt_int(x):
    return f"{x:,.0f}"


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    with open(argv[1], newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        sys.exit(f"{argv[1]}: no results yet")
    run_id = argv[2] if len(argv) == 3 else rows[-1]["run_id"]
    rows = [r for r in rows if r["run_id"] == run_id]
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["tool"], r["version"], r["variant"], r["mode"]), []).append(r)

    print(f"Run `{run_id}` (median of the passing repetitions)\n")
    print("| tool | variant | run | rows | passed | wall s (median) | wall s (min–max) | rows/s "
          "| peak RSS MiB | tool CPU s | PostgreSQL CPU s (source + target + bg) | other CPU s (max) "
          "| load1 before (max) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for (tool, version, variant, mode), rs in groups.items():
        ok = [r for r in rs if r["verify"] == "ok"]
        label = f"{tool} {version}"
        run = "full load" if mode == "full" else "incremental"
        if not ok:
            print(f"| {label} | {variant} | {run} | {rs[0]['rows']} | 0/{len(rs)} | – | – | – | – | – | – | – | – |")
            continue
        wall = [float(r["wall_s"]) for r in ok]
        med = statistics.median(wall)
        n = int(ok[0]["rows"])
        rss = statistics.median(int(r["max_rss_kb"]) for r in ok) / 1024
        cpu = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in ok)
        src = statistics.median(float(r["pg_src_cpu_s"]) for r in ok)
        dst = statistics.median(float(r["pg_dst_cpu_s"]) for r in ok)
        bg = statistics.median(float(r["pg_other_cpu_s"]) for r in ok)
        other = max(float(r["other_cpu_s"]) for r in ok)
        load = max(float(r["load1_before"]) for r in ok)
        print(f"| {label} | {variant} | {run} | {fmt_int(n)} | {len(ok)}/{len(rs)} | **{med:.2f}** "
              f"| {min(wall):.2f}–{max(wall):.2f} | **{fmt_int(n / med)}** | {rss:.0f} | {cpu:.2f} "
              f"| {src + dst + bg:.2f} ({src:.2f} + {dst:.2f} + {bg:.2f}) | {other:.2f} | {load:.2f} |")
    bad = [r for r in rows if r["verify"] != "ok"]
    for r in bad:
        print(f"\nFAILED check: {r['tool']} {r['mode']} rep {r['rep']}: {r['verify']}")


if __name__ == "__main__":
    main(sys.argv)
