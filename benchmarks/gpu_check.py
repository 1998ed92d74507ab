"""The bookkeeping of ``benchmarks/gpu_check.sh``: its table, its versions step and the
summary of its CUDA tests. The measuring is done by the other benchmark scripts.

    python benchmarks/gpu_check.py start OUT --mode full          # a fresh table in OUT
    python benchmarks/gpu_check.py versions --json OUT/steps/versions.json [--require-cuda]
    python benchmarks/gpu_check.py junit OUT/work/cuda_tests.xml --json OUT/steps/cuda_tests.json [--fail-on-skip]
    python benchmarks/gpu_check.py row OUT STEP STATUS EXIT_CODE SECONDS LIMIT_S

The table is ``OUT/gpu_check.csv`` (one row per step, appended as each step ends: step,
status, exit code, seconds, time limit, result, log) and ``OUT/gpu_check.md`` (the same rows
under a header naming the date, host, commit and mode, rewritten after every row). A step's
result is the ``summary`` of the JSON it wrote to ``OUT/steps/<step>.json``; for a step that
failed without one, the last lines of its log ``OUT/logs/<step>.log``. This module imports
torch only in ``versions``, so writing a row costs no torch start-up.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

COLUMNS = ("step", "status", "exit_code", "seconds", "limit_s", "result", "log")
CSV_NAME, MD_NAME, META_NAME = "gpu_check.csv", "gpu_check.md", "gpu_check.json"


# -- the table ----------------------------------------------------------------------------
def start(out: Path, mode: str, steps: list[str]) -> None:
    """Empty the table (a new run) and record what it runs on."""
    out.mkdir(parents=True, exist_ok=True)
    for name in (CSV_NAME, MD_NAME):
        (out / name).unlink(missing_ok=True)
    for folder in ("steps", "logs"):
        (out / folder).mkdir(exist_ok=True)
        for old in (out / folder).iterdir():
            if old.is_file():
                old.unlink()
    meta = {"started": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "host": socket.gethostname(),
            "mode": mode, "commit": _git_commit(), "python": platform.python_version(), "steps": steps}
    (out / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    with open(out / CSV_NAME, "w", newline="") as fh:
        csv.writer(fh).writerow(COLUMNS)
    write_markdown(out)


def add_row(out: Path, step: str, status: str, exit_code: str, seconds: float, limit_s: float) -> dict[str, str]:
    """Append a step's row to the CSV and rewrite the Markdown table."""
    log = out / "logs" / f"{step}.log"
    result = step_result(out / "steps" / f"{step}.json", log, status)
    row = {"step": step, "status": status, "exit_code": str(exit_code), "seconds": f"{float(seconds):.0f}",
           "limit_s": f"{float(limit_s):.0f}", "result": result,
           "log": str(log.relative_to(out)) if log.is_file() else ""}
    with open(out / CSV_NAME, "a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=COLUMNS).writerow(row)
    write_markdown(out)
    return row


def step_result(step_json: Path, log: Path, status: str) -> str:
    """The step's own summary, else (on failure) the end of its log."""
    summary = ""
    if step_json.is_file():
        try:
            summary = str(json.loads(step_json.read_text()).get("summary", ""))
        except (ValueError, AttributeError):
            summary = f"{step_json.name}: unreadable"
    if status != "ok" and log.is_file():
        tail = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()][-3:]
        if tail:
            summary = (summary + " | " if summary else "") + " / ".join(tail)[-400:]
    return summary.replace("\n", " ")


def read_rows(out: Path) -> list[dict[str, str]]:
    with open(out / CSV_NAME, newline="") as fh:
        return list(csv.DictReader(fh))


def write_markdown(out: Path) -> None:
    meta = json.loads((out / META_NAME).read_text())
    rows = read_rows(out)
    lines = [f"# GPU check ({meta['mode']})", "",
             (f"Started {meta['started']} on {meta['host']}, commit {meta['commit']}, Python {meta['python']}. "
              f"{len(rows)} of {len(meta['steps'])} steps done; written by `benchmarks/gpu_check.sh`."), "",
             "| step | status | seconds | limit s | result |", "|---|---|---|---|---|"]
    for r in rows:
        cells = [r["step"], r["status"], r["seconds"], r["limit_s"], r["result"].replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    tmp = out / (MD_NAME + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out / MD_NAME)


def _git_commit() -> str:
    try:
        res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             check=False, cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10, check=False, cwd=Path(__file__).resolve().parent).stdout.strip()
        return (res.stdout.strip() or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- steps ----------------------------------------------------------------------------------
def versions(require_cuda: bool) -> tuple[dict, int]:
    """nvidia-smi (its full report goes to stdout, i.e. the step's log), torch, CUDA, cuDNN."""
    import torch

    info: dict = {"python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
                  "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count()}
    try:
        smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30, check=False)
        print(smi.stdout or smi.stderr)
        query = subprocess.run(["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30, check=False)
        info["nvidia_smi"] = [line.strip() for line in query.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia_smi"] = []
        print(f"nvidia-smi: not available ({exc})")
    if info["cuda_available"]:
        info["cudnn"] = torch.backends.cudnn.version()
        info["devices"] = [f"{torch.cuda.get_device_name(i)} (sm_{''.join(map(str, torch.cuda.get_device_capability(i)))}, "
                           f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB)"
                           for i in range(torch.cuda.device_count())]
    gpus = "; ".join(info["nvidia_smi"]) or "no nvidia-smi"
    info["summary"] = (f"torch {info['torch']}, CUDA build {info['cuda_build']}, cuDNN {info.get('cudnn')}, "
                       f"CUDA available {info['cuda_available']}, {len(info.get('devices', []))} device(s): "
                       f"{'; '.join(info.get('devices', [])) or '-'}; nvidia-smi: {gpus}; {info['cpus']} CPUs")
    print(info["summary"])
    if require_cuda and not info["cuda_available"]:
        print("error: torch sees no CUDA device (run with --dry on a machine without a GPU)", file=sys.stderr)
        return info, 1
    return info, 0


def junit(xml_path: Path, fail_on_skip: bool) -> tuple[dict, int]:
    """Counts and names of the tests a pytest --junitxml file holds."""
    root = ET.parse(xml_path).getroot()
    cases = root.iter("testcase")
    outcome: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
    for case in cases:
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}" if module else str(case.get("name"))  # a module skipped whole: its name
        kind = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        outcome[kind].append(name)
    info = {k: v for k, v in outcome.items()}
    info["summary"] = (f"{len(outcome['passed'])} passed, {len(outcome['failed'])} failed, "
                       f"{len(outcome['skipped'])} skipped"
                       + (f"; failed: {', '.join(outcome['failed'])}" if outcome["failed"] else "")
                       + (f"; passed: {', '.join(outcome['passed'])}" if outcome["passed"] else ""))
    bad = bool(outcome["failed"]) or not (outcome["passed"] or outcome["skipped"]) or (
        fail_on_skip and bool(outcome["skipped"]))
    if fail_on_skip and outcome["skipped"]:
        print(f"error: {len(outcome['skipped'])} CUDA test(s) skipped on a run that needs the GPU", file=sys.stderr)
    return info, int(bad)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True)
    sp = sub.add_parser("start")
    sp.add_argument("out", type=Path)
    sp.add_argument("--mode", required=True)
    sp.add_argument("--steps", nargs="*", default=[])
    sp = sub.add_parser("row")
    sp.add_argument("out", type=Path)
    sp.add_argument("step")
    sp.add_argument("status")
    sp.add_argument("exit_code")
    sp.add_argument("seconds", type=float)
    sp.add_argument("limit_s", type=float)
    sp = sub.add_parser("versions")
    sp.add_argument("--json", type=Path, required=True)
    sp.add_argument("--require-cuda", action="store_true")
    sp = sub.add_parser("junit")
    sp.add_argument("xml", type=Path)
    sp.add_argument("--json", type=Path, required=True)
    sp.add_argument("--fail-on-skip", action="store_true")
    args = ap.parse_args(argv)
    if args.verb == "start":
        start(args.out, args.mode, args.steps)
        return 0
    if args.verb == "row":
        row = add_row(args.out, args.step, args.status, args.exit_code, args.seconds, args.limit_s)
        print(f"[gpu_check] {row['step']}: {row['status']} in {row['seconds']} s: {row['result']}")
        return 0
    info, rc = versions(args.require_cuda) if args.verb == "versions" else junit(args.xml, args.fail_on_skip)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(info, indent=2) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
