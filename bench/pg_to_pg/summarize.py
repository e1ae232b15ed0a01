#!/usr/bin/env python3
"""Medians of run.sh's results as a Markdown table (stdlib only).

  summarize.py RESULTS.tsv [RUN_ID[,RUN_ID...]]   default: the newest run id in the file

A run counts when its target check passed (verify = ok) and the rest of the machine
(not the tool, not PostgreSQL) used at most MAX_OTHER_CPU_S CPU seconds during it (env,
default 5): another job that starts in the middle of a run makes that run meaningless,
and the quiet-machine wait before a run cannot prevent that. The table says how many runs
counted of how many were made.
"""
import os
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
    run_ids = argv[2].split(",") if len(argv) == 3 else [rows[-1]["run_id"]]
    rows = [r for r in rows if r["run_id"] in run_ids]
    max_other = float(os.environ.get("MAX_OTHER_CPU_S", "5"))
    groups = OrderedDict()
    for r in rows:
        groups.setdefault((r["tool"], r["version"], r["variant"], r["mode"]), []).append(r)

    print(f"Runs {', '.join(f'`{i}`' for i in run_ids)}: median of the runs that passed the "
          f"target check with at most {max_other:g} s of other CPU\n")
    print("| tool | variant | run | rows | counted | wall s (median) | wall s (min–max) | rows/s "
          "| peak RSS MiB | tool CPU s | PostgreSQL CPU s (source + target + bg) | other CPU s (max) "
          "| load1 before (max) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for (tool, version, variant, mode), rs in groups.items():
        ok = [r for r in rs if r["verify"] == "ok" and float(r["other_cpu_s"]) <= max_other]
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
    for r in rows:
        if r["verify"] != "ok":
            print(f"\nFAILED check: {r['tool']} {r['variant']} {r['mode']} rep {r['rep']}: {r['verify']}")
        elif float(r["other_cpu_s"]) > max_other:
            print(f"\nNot counted (noise): {r['tool']} {r['variant']} {r['mode']} rep {r['rep']} "
                  f"({r['run_id']}): other CPU {r['other_cpu_s']} s, wall {r['wall_s']} s")


if __name__ == "__main__":
    main(sys.argv)
