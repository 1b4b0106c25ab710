#!/usr/bin/env python3
"""MetaDC imputation and forecasting through `netnomos serve`, with and without the pack.

  bench/metadc_tasks.py [--bin target/release/netnomos] [--steps 400] [--windows 200]
                        [--tasks imputation,forecast,burstiness]
                        [--out bench/results/metadc-tasks-DATE.md]

1. Splits MetaDC by host (bench/split_metadc.py): held-out hosts are used for nothing
   but the figures below.
2. Mines the imputation pack (metadc.json + metadc_rules.json) and the forecasting pack
   (metadc_5ctx.json + metadc_forecast.json) from the training hosts, and trains one
   small model for each task on the same hosts.
3. Serves both, and for WINDOWS held-out windows asks for
   - imputation: the 50 one-millisecond ingress samples, given the window's six
     aggregates (`fields` with the pack; the same values as the record's prefix without);
   - forecasting: the window's six aggregates, given the five previous windows' (`*Ctx*`);
   - burstiness: imputation again (same model), under the pack mined with the
     user function `Burstiness` (metadc_burstiness.json: the window total and how bursty
     a window may be given its total, a WebAssembly component embedded in the pack).
   Greedy decoding (temperature 0), so both runs differ only by the pack.
4. Checks every returned record with `netnomos check` against its pack and reports the
   violations, the malformed records, and the mean absolute error against the real
   held-out values (with simple baselines for scale).
"""

import argparse
import csv
import datetime
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
AGGS = ["IngressBytesAgg", "EgressBytesAgg", "InRxmitBytesAgg", "OutRxmitBytesAgg",
        "InCongestionBytesAgg", "ConnectionsAgg"]
SAMPLES = [f"IngressBytes{i}" for i in range(50)]
CTX = [a.replace("Agg", f"Ctx{k}") for a in AGGS for k in range(5)]


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    return out.stdout.strip()


def post(url, body):
    req = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return 200, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def parse_text(text):
    """A record text as a dict of ints, or None when malformed."""
    out = {}
    for part in text.strip().split(" "):
        name, eq, value = part.partition("=")
        if not eq:
            return None
        try:
            out[name] = int(value)
        except ValueError:
            return None
    return out


def check(binary, pack, lines, ext):
    with tempfile.NamedTemporaryFile("w", suffix="." + ext, delete=False) as f:
        f.write("\n".join(lines) + "\n")
    out = subprocess.run([binary, "check", "--pack", pack, "--input", f.name, "--json"],
                         capture_output=True, text=True)
    os.unlink(f.name)
    if out.returncode == 2 and "no records to check" in out.stderr:
        return 0, len(lines), 0  # every record malformed
    if out.returncode == 2:
        raise SystemExit(f"netnomos check failed: {out.stderr}")
    report = json.loads(out.stdout)
    unreadable = sum(u["records"] for u in report["unreadable"])
    return report["violations"], unreadable, len(report["failed"])


def spaced(rows, n):
    if len(rows) <= n:
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "netnomos"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--windows", type=int, default=200)
    ap.add_argument("--tasks", default="imputation,forecast,burstiness")
    ap.add_argument("--work", default=None, help="keep the split, packs and models here")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    binary = a.bin
    work = pathlib.Path(a.work or tempfile.mkdtemp(prefix="metadc-tasks-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.time()
    run([sys.executable, ROOT / "bench" / "split_metadc.py", work])
    packs = work / "packs"
    specs = ROOT / "miner" / "specs"
    every = {
        "imputation": ("metadc", "metadc_rules", "metadc_train.csv"),
        "forecast": ("metadc_5ctx", "metadc_forecast", "metadc_5ctx_train.csv"),
        "burstiness": ("metadc_burstiness", "metadc_burstiness", "metadc_train.csv"),
    }
    tasks = {t: every[t] for t in a.tasks.split(",")}
    pack_paths, models = {}, {}
    for task, (spec, grammar, data) in tasks.items():
        pack = packs / f"{spec}@1.0.0.json"
        if not pack.exists():
            run([binary, "-q", "mine", "--dataset-spec", specs / "datasets" / f"{spec}.json",
                 "--grammar", specs / "grammars" / f"{grammar}.json", "--input", work / data,
                 "--out", packs, "--version", "1.0.0"])
        pack_paths[task] = str(pack)
        model = work / f"model-{model_of(task)}"
        if not model.exists():
            run([binary, "-q", "train", "--dataset-spec", specs / "datasets" / f"{spec}.json",
                 "--input", work / data, "--pack", pack, "--out", model,
                 "--steps", str(a.steps), "--batch", str(a.batch)])
        models[model_of(task)] = model
    config = work / "serve.toml"
    config.write_text(
        'rulepack_dir = "packs"\n[limits]\nmax_tokens = 2048\n'
        + "".join(f'[[models]]\nid = "{t}"\npath = "{m}"\n' for t, m in models.items()))
    server = subprocess.Popen([binary, "serve", "--config", config, "--bind", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=open(work / "serve.log", "w"), text=True)
    try:
        url = server.stdout.readline().strip().removeprefix("listening on ")
        assert url.startswith("http://"), f"the server did not start; see {work / 'serve.log'}"
        results = {t: evaluate(t, url, work, a.windows, binary, pack_paths[t]) for t in tasks}
    finally:
        server.terminate()
        server.wait()
    report = render(results, a, time.time() - started)
    print(report)
    if a.out:
        pathlib.Path(a.out).write_text(report)
        print(f"written to {a.out}", file=sys.stderr)


def model_of(task):
    """The model a task uses: burstiness imputes with the imputation model."""
    return "imputation" if task == "burstiness" else task


def evaluate(task, url, work, n, binary, pack):
    imputing = model_of(task) == "imputation"
    held = "metadc_heldout.csv" if imputing else "metadc_5ctx_heldout.csv"
    with open(work / held, newline="") as f:
        rows = spaced(list(csv.DictReader(f)), n)
    given = AGGS if imputing else CTX
    target = SAMPLES if imputing else AGGS
    out = {"windows": len(rows), "refused": 0, "refusals": [], "with": [], "without": [],
           "with_records": [], "without_texts": [], "truth": []}
    for i, row in enumerate(rows):
        values = {k: int(row[k]) for k in given}
        prefix = " ".join(f"{k}={v}" for k, v in values.items()) + " "
        status, answer = post(url, {"model": model_of(task), "messages": [{"role": "user", "content": ""}],
                                    "rulepack": pack_name(pack), "fields": values, "temperature": 0})
        if status != 200:
            out["refused"] += 1
            out["refusals"].append(answer.get("error", {}).get("message", str(answer))[:160])
            continue
        record = answer["records"][0]
        status2, plain = post(url, {"model": model_of(task), "messages": [{"role": "user", "content": prefix}],
                                    "temperature": 0})
        assert status2 == 200, plain
        text = prefix + plain["choices"][0]["message"]["content"]
        out["with_records"].append(json.dumps(record))
        out["without_texts"].append(text.strip())
        truth = [int(row[k]) for k in target]
        out["truth"].append(truth)
        if task == "forecast":
            out.setdefault("ctx4", []).append([int(row[k.replace("Agg", "Ctx4")]) for k in AGGS])
        out["with"].append([record[k] for k in target])
        parsed = parse_text(text)
        out["without"].append([parsed[k] for k in target] if parsed and all(k in parsed for k in target) else None)
        if (i + 1) % 50 == 0:
            print(f"{task}: {i + 1}/{len(rows)} windows", file=sys.stderr)
    out["check_with"] = check(binary, pack, out["with_records"], "jsonl")
    out["check_without"] = check(binary, pack, out["without_texts"], "txt")
    return out


def pack_name(path):
    return pathlib.Path(path).name.split("@")[0]


def mae(preds, truth):
    pairs = [(p, t) for p, t in zip(preds, truth) if p is not None]
    if not pairs:
        return float("nan"), 0
    errs = [abs(a - b) for p, t in pairs for a, b in zip(p, t)]
    return sum(errs) / len(errs), len(pairs)


def render(results, a, seconds):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# MetaDC imputation and forecasting — {now}", "",
             f"Command: `bench/metadc_tasks.py --steps {a.steps} --batch {a.batch} --windows {a.windows} "
             f"--tasks {a.tasks}` "
             f"({seconds / 60:.1f} min in all). Held-out hosts: ids ending in 0 or 5 (54 of 268); "
             "packs and models come from the other 214. Greedy decoding.", ""]
    for task, r in results.items():
        served = len(r["truth"])
        v_with, u_with, _ = r["check_with"]
        v_without, u_without, rules_without = r["check_without"]
        m_with, n_with = mae(r["with"], r["truth"])
        m_without, n_without = mae(r["without"], r["truth"])
        title = {"burstiness": "Imputation under the burstiness pack (a user function)"}
        lines += [f"## {title.get(task, task.capitalize())}", "",
                  f"{r['windows']} held-out windows; {r['refused']} refused by the pack "
                  f"(given values outside the domain learned from the training hosts), {served} served.", ""]
        for why in r["refusals"][:3]:
            lines.append(f"- refused: {why}")
        if r["refusals"]:
            lines.append("")
        lines += ["| | with the pack | without |", "|---|---|---|",
                  f"| records | {served} | {served} |",
                  f"| malformed records | {u_with} | {u_without} |",
                  f"| rule violations (well-formed records) | {v_with} | {v_without} ({rules_without} rules) |",
                  f"| MAE of the generated values | {m_with:,.0f} (over {n_with} records) | {m_without:,.0f} (over {n_without} records) |"]
        truth = r["truth"]
        if model_of(task) == "imputation":
            flat = [x for t in truth for x in t]
            even = mae([[sum(t) / 50] * 50 for t in truth], truth)[0]
            lines += ["", f"For scale: the mean 1 ms sample is {sum(flat) / max(len(flat), 1):,.0f} bytes; "
                      f"spreading each window's total evenly over its 50 ms gives MAE {even:,.0f}."]
        else:
            lines += ["", "For scale: repeating the previous window (`*Ctx4`) gives MAE "
                      f"{persistence(r):,.0f}."]
        lines.append("")
    return "\n".join(lines)


def persistence(r):
    return float("nan") if not r.get("ctx4") else mae(r["ctx4"], r["truth"])[0]


if __name__ == "__main__":
    main()
