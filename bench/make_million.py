#!/usr/bin/env python3
"""Derive a one-million-record CIDDS file from the shared 10,000-record sample.

Each sample record is written 100 times.  Copy k > 0 shifts the first-seen time by k
hours and perturbs the measurements: Duration and Bytes are scaled by a factor in
[0.9, 1.1] (Bytes never below 42 per packet, the smallest frame the sample has), and the
ephemeral port (the one above 1023) is moved within 1024..65535.  Protocols, addresses,
flags and well-known ports are kept, so the data stays CIDDS-like.  Deterministic (seed 7).

usage: make_million.py SAMPLE.csv OUT.csv [COPIES]
"""

import csv
import random
import sys
from datetime import datetime, timedelta


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    copies = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    rng = random.Random(7)
    with open(src, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    col = {name: i for i, name in enumerate(header)}
    with open(dst, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        for k in range(copies):
            for row in rows:
                out.writerow(perturb(row, col, k, rng) if k else row)


def perturb(row, col, k, rng):
    r = list(row)
    when = datetime.strptime(r[col["Date first seen"]], "%Y-%m-%d %H:%M:%S.%f") + timedelta(hours=k)
    r[col["Date first seen"]] = when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    r[col["Duration"]] = f"{float(r[col['Duration']]) * rng.uniform(0.9, 1.1):.3f}"
    packets = int(r[col["Packets"]])
    scaled = int(int(r[col["Bytes"]]) * rng.uniform(0.9, 1.1))
    r[col["Bytes"]] = str(max(scaled, 42 * packets))
    for port in ("Src Pt", "Dst Pt"):
        if int(float(r[col[port]])) > 1023:
            r[col[port]] = str(rng.randint(1024, 65535))
    return r


if __name__ == "__main__":
    main()
