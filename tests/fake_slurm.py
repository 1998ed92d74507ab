"""A stand-in for SLURM's command-line tools, for testing the SLURM profile without a cluster.

Installed (by ``install``) as ``sbatch``, ``srun``, ``sacct``, ``squeue``, ``scontrol``,
``sinfo``, ``sacctmgr``, ``sshare`` and ``scancel`` in a folder put first on ``PATH``. Each call
is appended to ``$FAKE_SLURM_DIR/calls.jsonl``. ``sbatch`` records the job, runs its script
locally and synchronously (``--wrap`` or a script on stdin, in the ``-D`` folder, output to
``--output`` with ``%j`` replaced, environment per ``--export``, ``SLURM_JOB_ID`` and, when GPUs
are asked for, ``SLURM_GPUS`` and ``CUDA_VISIBLE_DEVICES=0`` as a cgroup-constrained node
shows them), then answers ``<id>`` (``--parsable``) or ``Submitted batch job <id>``. ``sacct``
and ``squeue`` answer ``<id>|<STATE>`` lines for the jobs of the ``--name`` asked for, in the
formats the executor plugin parses. ``FAKE_SLURM_FAIL_FIRST=<rule>`` makes the first job of
that rule end OUT_OF_MEMORY without running (to exercise retries).

The formats follow snakemake-executor-plugin-slurm 2.x (``job_status_query.py``,
``submit_string.py``) and snakemake-executor-plugin-slurm-jobstep (the nested ``srun``).
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

TOOLS = ("sbatch", "srun", "sacct", "squeue", "scontrol", "sinfo", "sacctmgr", "sshare", "scancel")
ACCOUNT = "my_account"


def install(bin_dir: Path, state_dir: Path) -> None:
    """Write the fakes into ``bin_dir`` (the caller puts it first on PATH and sets
    ``FAKE_SLURM_DIR=state_dir``)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "jobs").mkdir(parents=True, exist_ok=True)
    source = Path(__file__).read_text()
    for tool in TOOLS:
        path = bin_dir / tool
        path.write_text(f"#!{sys.executable}\n{source}")
        path.chmod(0o755)


def _state() -> Path:
    return Path(os.environ["FAKE_SLURM_DIR"])


def _locked_update(path: Path, update):
    """Read-modify-write a JSON file under an exclusive lock (sbatch runs in parallel)."""
    with open(_state() / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else None
        data, result = update(data)
        path.write_text(json.dumps(data))
        return result


def _log_call(tool: str, argv: list[str], extra: dict | None = None) -> None:
    with open(_state() / "calls.jsonl", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"tool": tool, "argv": argv, **(extra or {})}) + "\n")


# Options of sbatch that take a value when written as two words.
VALUED = {"--job-name", "--output", "--comment", "-A", "--account", "-p", "--partition", "-t", "--time", "--mem",
          "--mem-per-cpu", "-D", "--chdir", "-C", "--constraint", "--clusters", "-J", "-o", "-e", "--error"}


def parse_sbatch(argv: list[str]) -> tuple[dict[str, str], str | None]:
    """Options (``--opt value`` and ``--opt=value`` alike; flags map to "") and a script path."""
    opts: dict[str, str] = {}
    script = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and "=" in arg and arg.startswith("--"):
            key, value = arg.split("=", 1)
            opts[key] = value
        elif arg in VALUED:
            opts[arg] = argv[i + 1]
            i += 1
        elif arg.startswith("-"):
            opts[arg] = ""
        else:
            script = arg
        i += 1
    return opts, script


def sbatch(argv: list[str]) -> int:
    opts, script_path = parse_sbatch(argv)
    if "--wrap" in opts:
        script = "#!/bin/sh\n" + opts["--wrap"]
    elif script_path in ("/dev/stdin", None):
        script = sys.stdin.read()
    else:
        script = Path(script_path).read_text()
    comment = opts.get("--comment", "")
    match = re.match(r"rule_(.+?)(_wildcards_.*)?$", comment)
    rule = match.group(1) if match else comment

    def new_job(counter):
        counter = (counter or 0) + 1
        return counter, counter

    job_id = _locked_update(_state() / "counter.json", new_job)
    fail_rule = os.environ.get("FAKE_SLURM_FAIL_FIRST")
    fail = False
    if fail_rule == rule:
        def first_failure(done):
            done = done or []
            return (done + [rule], rule not in done)

        fail = _locked_update(_state() / "failed.json", first_failure)
    record = {"id": job_id, "argv": argv, "options": opts, "rule": rule, "name": opts.get("--job-name", ""),
              "state": "RUNNING"}
    job_file = _state() / "jobs" / f"{job_id}.json"
    job_file.write_text(json.dumps(record))
    _log_call("sbatch", argv, {"id": job_id})

    if fail:
        record["state"] = "OUT_OF_MEMORY"
    else:
        export = opts.get("--export", "ALL")
        if export == "ALL":
            env = dict(os.environ)
        else:  # NONE or a list: only what is named (SLURM adds its own variables below)
            keep = [] if export == "NONE" else [v.split("=")[0] for v in export.split(",") if v != "ALL"]
            env = {k: os.environ[k] for k in ("PATH", "HOME", "FAKE_SLURM_DIR", *keep) if k in os.environ}
        env.update(SLURM_JOB_ID=str(job_id), SLURM_JOBID=str(job_id), SLURM_JOB_NAME=record["name"],
                   SLURM_CPUS_PER_TASK=re.sub(r"\D", "", opts.get("--cpus-per-task", "1")) or "1")
        gpus = opts.get("--gpus")
        if gpus:
            env.update(SLURM_GPUS=gpus, CUDA_VISIBLE_DEVICES="0")
        out = opts.get("--output", f"slurm-{job_id}.out").replace("%j", str(job_id))
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        record["started"] = time.time()
        with open(out, "w") as log:
            rc = subprocess.run(["/bin/sh", "-c", script], cwd=opts.get("-D") or None, env=env, stdout=log,
                                stderr=subprocess.STDOUT, check=False).returncode
        record["ended"] = time.time()
        record["state"] = "COMPLETED" if rc == 0 else "FAILED"
        record["exit_code"] = rc
    job_file.write_text(json.dumps(record))
    print(job_id if "--parsable" in opts else f"Submitted batch job {job_id}")
    return 0


def _jobs(name: str | None) -> list[dict]:
    jobs = [json.loads(p.read_text()) for p in sorted((_state() / "jobs").glob("*.json"))]
    return [j for j in jobs if name is None or j["name"] == name]


def _name_arg(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--name" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--name="):
            return arg.split("=", 1)[1]
    return None


def sacct(argv: list[str]) -> int:
    _log_call("sacct", argv)
    if "--format=JobIdRaw,State" in argv:  # the plugin's status query
        for job in _jobs(_name_arg(argv)):
            print(f"{job['id']}|{job['state']}")
    elif "-o" in argv and any(a.startswith("Account") for a in argv):  # account guess
        print(ACCOUNT)
    return 0  # e.g. failure reasons (--format=Reason): nothing to add


def squeue(argv: list[str]) -> int:
    _log_call("squeue", argv)
    for job in _jobs(_name_arg(argv)):
        print(f"{job['id']}|{job['state']}")
    return 0


def srun(argv: list[str]) -> int:
    """The jobstep runs the rule as ``srun -n1 --cpu-bind=q --cpus-per-task=N [--gpus=N] --nodes=1 CMD...``."""
    _log_call("srun", argv, {"job": os.environ.get("SLURM_JOB_ID")})
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 1
    command = argv[i:]
    if command == ["sh", "-s"]:
        return subprocess.run(["/bin/sh", "-s"], stdin=sys.stdin, check=False).returncode
    return subprocess.run(command, check=False).returncode


def main() -> int:
    tool = Path(sys.argv[0]).name
    argv = sys.argv[1:]
    if tool == "sbatch":
        return sbatch(argv)
    if tool == "srun":
        return srun(argv)
    if tool == "sacct":
        return sacct(argv)
    if tool == "squeue":
        return squeue(argv)
    _log_call(tool, argv)
    if tool == "scontrol" and argv[:2] == ["show", "config"]:
        print("MinJobAge               = 300 sec\nMaxArraySize            = 1001")
    elif tool == "sinfo":
        print("PARTITION\ncpu*\ngpu")
    elif tool in ("sacctmgr", "sshare"):
        print(ACCOUNT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
