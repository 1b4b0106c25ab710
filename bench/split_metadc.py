#!/usr/bin/env python3
"""Split the shared MetaDC files by host, before any mining or training.

Hosts whose id ends in 0 or 5 (about a fifth of the 268 servers) are held out: the
packs and models are made from the other hosts only, and every accuracy figure is
measured on the held-out ones.  Both MetaDC files are split by the same hosts.

Usage: bench/split_metadc.py OUT_DIR   (reads ../shared/data/metadc-millisampler)
Writes OUT_DIR/metadc_{train,heldout}.csv and OUT_DIR/metadc_5ctx_{train,heldout}.csv.
"""

import csv
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "metadc-millisampler"
FILES = {"metadc": "metadc_test_3racks.csv", "metadc_5ctx": "metadc_test_3racks_5ctx.csv"}


def held_out(host: str) -> bool:
    return host[-1] in "05"


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for stem, name in FILES.items():
        with open(SHARED / name, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            host = header.index("hostid")
            rows = list(reader)
        parts = {"train": [r for r in rows if not held_out(r[host])],
                 "heldout": [r for r in rows if held_out(r[host])]}
        for part, part_rows in parts.items():
            with open(out / f"{stem}_{part}.csv", "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(part_rows)
        hosts = {p: len({r[host] for r in rs}) for p, rs in parts.items()}
        print(f"{name}: train {len(parts['train'])} windows of {hosts['train']} hosts, "
              f"held out {len(parts['heldout'])} windows of {hosts['heldout']} hosts")


if __name__ == "__main__":
    main()
