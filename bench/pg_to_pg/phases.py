#!/usr/bin/env python3
"""Splits a `perf script` dump of a qiao run into the phases of a flow (stdlib only).

  phases.py PERF_SCRIPT.txt [--detail PATTERN]

PERF_SCRIPT.txt comes from `perf script -F comm,tid,ip,sym` on a recording made with
`--call-graph dwarf` (profile.sh does both). Each sample is given to the first phase whose
function appears anywhere in its call stack, so time spent in malloc/free or in a
library lands in the phase that called it. With --detail, prints instead which functions
directly below PATTERN the samples under PATTERN went to.
"""
import collections
import sys

# (phase, substrings of frame names), most specific first: store work runs inside the
# engine's tasks, so it must be matched before the engine's own frames.
PHASES = [
    ("store: free the committed batch", ["drop_in_place<qiao_store::sqlite::store_impl", "drop_in_place<alloc::vec::Vec<qiao_store::NewJob"]),
    ("store: encode outbox payload", ["qiao_store::codec::encode", "qiao_store::codec::put_"]),
    ("store: decode outbox payload", ["qiao_store::codec::decode", "qiao_store::codec::Reader"]),
    ("store: SQLite (commit, due jobs, job done)", ["sqlite3", "sqlx_sqlite", "qiao_store::sqlite"]),
    ("pipeline: rules (dictionary + rule set)", ["RuleEngine::validate"]),
    ("pipeline: inbound mapping (source -> canonical)", ["Mapper>::inbound", " inbound (inlined)"]),
    ("pipeline: outbound mapping (canonical -> target)", ["Mapper>::outbound", " outbound (inlined)"]),
    ("pipeline: rest (keys, dropping the source batch)", ["FlowPlan>::process"]),
    ("sink: COPY + upsert (client side)", ["SqlSink", "pg_sink::"]),
    ("delivery: rest (copying each job's changes, bookkeeping)", ["deliver::deliver_due", "deliver_job"]),
    ("source: fetch + decode rows", ["sql::source", "SqlSource", "sql::pg::decode", "sqlx_postgres"]),
]


def samples(path):
    """Yields each sample's stack as a list of frame names, leaf first."""
    stack = None
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            if not line.startswith("\t"):
                if stack is not None:
                    yield stack
                stack = []
            else:
                parts = line.strip().split(None, 1)
                stack.append(" " + (parts[1] if len(parts) > 1 else parts[0]))
    if stack is not None:
        yield stack


def main(argv):
    if len(argv) == 2:
        counts = collections.Counter()
        for stack in samples(argv[1]):
            text = "\n".join(stack)
            phase = next((name for name, pats in PHASES if any(p in text for p in pats)), "other")
            counts[phase] += 1
        total = sum(counts.values()) or 1
        print(f"{total} samples")
        for name, n in counts.most_common():
            print(f"{100 * n / total:5.1f}%  {name}")
    elif len(argv) == 4 and argv[2] == "--detail":
        below = collections.Counter()
        for stack in samples(argv[1]):
            for i, frame in enumerate(stack):
                if argv[3] in frame:
                    below[stack[i - 1].strip() if i > 0 else "(itself)"] += 1
                    break
        total = sum(below.values()) or 1
        for name, n in below.most_common(20):
            print(f"{100 * n / total:5.1f}%  {name[:120]}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
