#!/usr/bin/env python3
"""Summarizes an Nsight Compute CSV of gpu__time_duration.sum (one row per kernel launch): per kernel name and
grid, the number of launches, the median and the total duration, largest total first. Usage:
ncu_summary.py FILE.csv [TOP]"""
import csv
import statistics
import sys


def main() -> int:
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    rows = []
    with open(path, newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]  # the program's own output is interleaved
    for rec in csv.DictReader(lines):
        if rec.get("Metric Name") != "gpu__time_duration.sum":
            continue
        value = float(rec["Metric Value"].replace(",", ""))
        unit = rec.get("Metric Unit", "nsecond")
        scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(unit, 1e-3)
        rows.append((rec["Kernel Name"][:70], rec.get("Grid Size", ""), value * scale))
    if not rows:
        print("no kernel durations in", path)
        return 1
    groups: dict = {}
    for name, grid, us in rows:
        groups.setdefault((name, grid), []).append(us)
    total = sum(us for _, _, us in rows)
    print(f"{len(rows)} kernel launches, {total / 1e3:.2f} ms of kernel time")
    print(f"{'kernel':70} {'grid':>16} {'count':>6} {'median us':>10} {'total ms':>9}")
    ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
    for (name, grid), v in ranked[:top]:
        print(f"{name:70} {grid:>16} {len(v):>6} {statistics.median(v):>10.2f} {sum(v) / 1e3:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
