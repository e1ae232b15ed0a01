#!/usr/bin/env python3
"""CPU accounting for run.sh (stdlib only; Linux /proc).

The benchmark shares 2 cores with PostgreSQL and with anything else on the box. run.sh
waits for an idle machine before each run and afterwards splits the machine's CPU time
into: the tool (from /usr/bin/time), PostgreSQL (this probe), and the rest (noise).

  probe.py busy SECONDS        whole-machine busy percent over SECONDS (100 = all cores)
  probe.py snap FILE           save the machine's busy CPU ticks to FILE
  probe.py diff FILE1 FILE2    busy CPU seconds of the whole machine between two snaps
  probe.py watch OUT DB1 DB2   until SIGTERM/SIGINT: sample PostgreSQL's processes every
                               0.2 s, then write "<DB1 s> <DB2 s> <other pg s>" to OUT:
                               CPU seconds of the backends connected to DB1, to DB2, and
                               of PostgreSQL's other processes (WAL writer, checkpointer,
                               autovacuum...). Backends end with their client, so they
                               must be watched while they live; up to 0.2 s of a
                               backend's last moments can be missed.
"""
import json
import os
import pwd
import signal
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def busy_ticks():
    """(busy, total) CPU ticks of the whole machine since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def postgres_processes(uid):
    """(pid, start time) -> (CPU ticks, command line) of every process owned by uid."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid != uid:
                continue
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline") as f:
                cmd = f.read().replace("\0", " ").strip()
        except OSError:
            continue  # it ended while we looked
        # The command name may hold spaces or parentheses: split after the last ')'.
        rest = stat[stat.rindex(")") + 2 :].split()
        out[(name, rest[19])] = (int(rest[11]) + int(rest[12]), cmd)
    return out


def watch(out_path, db1, db2):
    uid = pwd.getpwnam("postgres").pw_uid
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    def bucket(cmd):
        # Backend titles read "postgres: <cluster>: <user> <database> <client> <state>";
        # a backend just forked still shows the postmaster's command line.
        words = cmd.split()
        return next((d for d in (db1, db2) if d in words), None)

    before = postgres_processes(uid)
    seen = {key: (ticks, bucket(cmd)) for key, (ticks, cmd) in before.items()}
    while True:
        for key, (ticks, cmd) in postgres_processes(uid).items():
            # Once a process has shown its database, it keeps that bucket.
            old = seen.get(key)
            seen[key] = (ticks, (old and old[1]) or bucket(cmd))
        if stop:
            break
        time.sleep(0.2)
    cpu = {db1: 0, db2: 0, None: 0}
    for key, (ticks, where) in seen.items():
        cpu[where] += ticks - before[key][0] if key in before else ticks
    with open(out_path, "w") as f:
        f.write(f"{cpu[db1] / TICKS:.2f} {cpu[db2] / TICKS:.2f} {cpu[None] / TICKS:.2f}\n")


def main(argv):
    if len(argv) == 3 and argv[1] == "busy":
        b0, t0 = busy_ticks()
        time.sleep(float(argv[2]))
        b1, t1 = busy_ticks()
        print(round(100 * (b1 - b0) / max(t1 - t0, 1)))
    elif len(argv) == 3 and argv[1] == "snap":
        with open(argv[2], "w") as f:
            json.dump({"busy": busy_ticks()[0]}, f)
    elif len(argv) == 4 and argv[1] == "diff":
        with open(argv[2]) as f:
            a = json.load(f)["busy"]
        with open(argv[3]) as f:
            b = json.load(f)["busy"]
        print(f"{(b - a) / TICKS:.2f}")
    elif len(argv) == 5 and argv[1] == "watch":
        watch(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
