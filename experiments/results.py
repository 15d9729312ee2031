"""experiments/results.json (one entry per measured figure) and its rendering into RESULTS.md.

    python experiments/results.py      # re-renders the table in experiments/RESULTS.md
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from ner import model_folder  # noqa: E402  (the repository root holds the package)

RESULTS_JSON = os.path.join(HERE, "results.json")
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, no GPU, {platform.system()} {platform.machine()}"


def load() -> list[dict]:
    if not os.path.exists(RESULTS_JSON):
        return []
    with open(RESULTS_JSON, encoding="utf-8") as f:
        return json.load(f)


def record(name: str, config: str, data: str, metric: str, run: dict, unit: str, command: str):
    """Adds one run (e.g. {"seed": 1, "value": 90.9}) to the entry (name, metric), replacing a run
    with the same seed, and recomputes mean and std. Written atomically, under a lock so that
    benchmark runs finishing together do not lose each other's figures."""
    with open(RESULTS_JSON + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _record(name, config, data, metric, run, unit, command)


def _record(name, config, data, metric, run, unit, command):
    entries = load()
    entry = next((e for e in entries if e["name"] == name and e["metric"] == metric), None)
    if entry is None:
        entry = {"name": name, "config": config, "data": data, "metric": metric, "runs": []}
        entries.append(entry)
    entry["runs"] = [r for r in entry["runs"] if r.get("seed") != run.get("seed")] + [run]
    values = [r["value"] for r in entry["runs"]]
    entry.update(config=config, data=data, mean=round(statistics.mean(values), 3),
                 std=round(statistics.stdev(values), 3) if len(values) > 1 else 0.0, unit=unit, command=command,
                 date=datetime.date.today().isoformat(), machine=machine())
    model_folder.write_text(RESULTS_JSON, json.dumps(entries, indent=2) + "\n")


def render():
    """Replaces the generated table between the markers of RESULTS.md, keeping the prose."""
    rows = ["| name | metric | mean | std | runs | unit | date |", "|---|---|---|---|---|---|---|"]
    for e in load():
        runs = ", ".join(f"{r['value']:g}" for r in e["runs"])
        rows.append(f"| {e['name']} | {e['metric']} | {e['mean']:g} | {e['std']:g} | {runs} | {e['unit']} | {e['date']} |")
    commands = sorted({(e["name"], e["command"]) for e in load()})
    rows += ["", "Commands:", ""] + [f"- {name}: `{command}`" for name, command in commands]
    machines = sorted({e["machine"] for e in load()})
    rows += ["", "Machines: " + "; ".join(machines)]
    with open(RESULTS_MD, encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    with open(RESULTS_MD, "w", encoding="utf-8") as f:
        f.write(head + BEGIN + "\n" + "\n".join(rows) + "\n" + END + tail)


if __name__ == "__main__":
    render()
