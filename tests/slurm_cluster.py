"""A real single-node SLURM cluster for the tests (imported explicitly, not a fixture file).

Debian's packages (``slurm-wlm`` 22.05, ``munge``, ``slurmdbd``, ``mariadb-server``; installed by
``.ci/run``) started by hand, without systemd or cgroups, as root:

- ``munged`` as user munge, with its own key and socket in a temporary folder (a munged of the
  machine, if any, is left alone; every daemon here talks to ours through ``AuthInfo=socket=``);
- ``mariadbd`` on 127.0.0.1 and a free port, on a database made by ``mariadb-install-db`` in the
  temporary folder, holding only ``slurmdbd``'s accounting;
- ``slurmdbd`` on MariaDB, so that ``sacct`` answers (what the executor plugin polls by default);
  the cluster, an account and root's association in it are added with ``sacctmgr``;
- ``slurmctld -D`` and ``slurmd -D`` with one node named ``hostname -s`` and two partitions,
  ``cpu`` (the default) and ``gpu``. The node declares more CPUs and memory than the machine has
  (``SlurmdParameters=config_overrides``), so that a small machine takes the profile's requests;
  no GPU GRES: SLURM 22.05 ignores a GPU without a device file and drains the node. Memory is
  enforced without cgroups: ``jobacct_gather/linux`` samples every step each second and
  ``OverMemoryKill`` kills a step past its request.

The job-step plugin (snakemake-executor-plugin-slurm-jobstep) drops every ``SLURM_*`` variable,
``SLURM_CONF`` included, so the configuration must be at ``/etc/slurm/slurm.conf``. The cluster
refuses to start when a ``slurm.conf`` it did not write is there, writes it (and, when
``hostname -s`` does not resolve, an ``/etc/hosts`` line), and restores both when it stops.
Every daemon it started is stopped by its PID; every wait is bounded.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

MARKER = "# Written by cmhash tests/slurm_cluster.py for one test run; removed when it ends."
SLURM_CONF = Path("/etc/slurm/slurm.conf")
HOSTS = Path("/etc/hosts")
CLUSTER = "cmhash-test"
ACCOUNT = "cmhash"
PARTITIONS = ("cpu", "gpu")
NODE_CPUS = 16
NODE_MEMORY_MB = 64000
DEF_MEM_PER_CPU_MB = 500
DAEMONS = {"munged": "/usr/sbin/munged", "mariadbd": "/usr/sbin/mariadbd", "slurmdbd": "/usr/sbin/slurmdbd",
           "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}
TOOLS = ("mariadb-install-db", "sbatch", "sacct", "sacctmgr", "scontrol", "sinfo", "squeue", "srun")


class ClusterError(RuntimeError):
    """The cluster could not be set up (the message says which daemon and shows its log)."""


def missing_software() -> list[str]:
    """The daemons and tools that are not installed (empty when the cluster can start)."""
    missing = [name for name, path in DAEMONS.items() if not Path(path).is_file()]
    return missing + [tool for tool in TOOLS if shutil.which(tool) is None]


def foreign_config() -> Path | None:
    """``/etc/slurm/slurm.conf`` when it exists and this module did not write it."""
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace"):
        return SLURM_CONF
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, check, timeout: float, interval: float = 0.25, log: Path | None = None) -> None:
    """Poll ``check()`` until it returns true; raise ClusterError (with the log's tail) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise ClusterError(f"{what}: not ready after {timeout:.0f} s\n{tail}")


def _run(argv: list[str], timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


class LocalCluster:
    """``cluster = LocalCluster(folder); try: cluster.start(); ... finally: cluster.stop()``."""

    def __init__(self, root: Path, startup_timeout: float = 60.0) -> None:
        """``root``: a new folder for the daemons' databases, state and logs; the munge and slurm
        users must be able to reach it (not under pytest's private temporary folder)."""
        self.startup_timeout = startup_timeout
        self.node = socket.gethostname().split(".")[0]
        self.root = Path(root)
        self.procs: dict[str, subprocess.Popen] = {}
        self.stop_seconds: dict[str, float] = {}
        self._hosts_before: str | None = None
        self._wrote_conf = False
        slurm = pwd.getpwnam("slurm")
        munge = pwd.getpwnam("munge")
        self._slurm_ids = (slurm.pw_uid, slurm.pw_gid)
        self._munge_ids = (munge.pw_uid, munge.pw_gid)

    # -- helpers ---------------------------------------------------------------------------
    def _dir(self, name: str, owner: tuple[int, int] | None = None, mode: int = 0o755) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if owner is not None:
            os.chown(path, *owner)
        return path

    def _start(self, name: str, argv: list[str], user: str | None = None, env: dict | None = None) -> None:
        log = self.root / "logs" / f"{name}.out"
        with open(log, "w") as out:
            self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                user=user, env=env, start_new_session=True)

    def _alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise ClusterError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        """What a daemon wrote (its own log file, else its stdout and stderr)."""
        text = ""
        for path in (self.root / "logs" / f"{name}.log", self.root / "logs" / f"{name}.out"):
            if path.exists():
                text += f"--- {path.name}\n{path.read_text(errors='replace')}"
        return text

    @property
    def env(self) -> dict[str, str]:
        """The environment for SLURM's client tools (the default configuration path, no stray ``SLURM_*``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))}
        return env

    # -- set-up ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the daemons in order, each waited for (bounded); call ``stop`` afterwards, also
        when this raises."""
        if foreign_config() is not None:
            raise ClusterError(f"{foreign_config()} exists and was not written by this test; not touching it")
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)  # the munge and slurm users must reach their folders
        self._dir("logs", self._slurm_ids, 0o777)
        self._ensure_hostname()
        self._start_munge()
        self._start_mariadb()
        self._start_slurmdbd()
        self._write_slurm_conf()
        self._add_accounts()
        self._start_slurmctld()
        self._start_slurmd()

    def _ensure_hostname(self) -> None:
        try:
            socket.gethostbyname(self.node)
        except OSError:
            self._hosts_before = HOSTS.read_text()
            HOSTS.write_text(self._hosts_before.rstrip("\n") + f"\n127.0.0.1 {self.node} {MARKER}\n")

    def _start_munge(self) -> None:
        d = self._dir("munge", self._munge_ids, 0o755)  # munged wants its socket folder executable by all
        key = d / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o600)
        os.chown(key, *self._munge_ids)
        self.munge_socket = d / "munge.socket"
        self._start("munged", [DAEMONS["munged"], "-F", f"--socket={self.munge_socket}", f"--key-file={key}",
                               f"--pid-file={d / 'munged.pid'}", f"--seed-file={d / 'munged.seed'}",
                               f"--log-file={self.root / 'logs' / 'munged.log'}"], user="munge")
        _wait("munged", lambda: self._alive("munged") or self.munge_socket.exists(), 10)

    def _start_mariadb(self) -> None:
        d = self._dir("mariadb")
        self.db_port = free_port()
        self.db_password = secrets.token_hex(12)
        done = _run(["mariadb-install-db", "--no-defaults", f"--datadir={d / 'data'}", "--user=root",
                     "--skip-test-db", "--auth-root-authentication-method=socket"], timeout=90)
        if done.returncode != 0:
            raise ClusterError(f"mariadb-install-db failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        init = d / "init.sql"
        init.write_text(f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}';\n"
                        "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';\n")
        self._start("mariadbd", [DAEMONS["mariadbd"], "--no-defaults", f"--datadir={d / 'data'}", "--user=root",
                                 "--bind-address=127.0.0.1", f"--port={self.db_port}", "--skip-name-resolve",
                                 f"--socket={d / 'mariadb.sock'}", f"--pid-file={d / 'mariadb.pid'}",
                                 f"--init-file={init}", "--innodb-buffer-pool-size=64M",
                                 f"--log-error={self.root / 'logs' / 'mariadbd.log'}"])

        def listening() -> bool:
            self._alive("mariadbd")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.db_port)) == 0

        _wait("mariadbd", listening, 30, log=self.root / "logs" / "mariadbd.log")

    def _start_slurmdbd(self) -> None:
        etc = self._dir("etc", self._slurm_ids)
        self._dir("slurmdbd", self._slurm_ids)
        self.dbd_port = free_port()
        conf = etc / "slurmdbd.conf"
        conf.write_text("\n".join([
            MARKER,
            "AuthType=auth/munge", f"AuthInfo=socket={self.munge_socket}",
            "DbdHost=localhost", f"DbdPort={self.dbd_port}", "SlurmUser=slurm",
            f"PidFile={self.root / 'slurmdbd' / 'slurmdbd.pid'}", f"LogFile={self.root / 'logs' / 'slurmdbd.log'}",
            "StorageType=accounting_storage/mysql", "StorageHost=127.0.0.1", f"StoragePort={self.db_port}",
            "StorageUser=slurm", f"StoragePass={self.db_password}", "StorageLoc=slurm_acct_db", ""]))
        conf.chmod(0o600)
        os.chown(conf, *self._slurm_ids)
        # slurmdbd reads slurmdbd.conf beside $SLURM_CONF; only this daemon gets the variable
        self._start("slurmdbd", [DAEMONS["slurmdbd"], "-D"], env={**self.env, "SLURM_CONF": str(etc / "slurm.conf")})

        def listening() -> bool:
            self._alive("slurmdbd")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.dbd_port)) == 0

        _wait("slurmdbd", listening, 30, log=self.root / "logs" / "slurmdbd.log")

    def _write_slurm_conf(self) -> None:
        state = self._dir("slurmctld", self._slurm_ids)
        spool = self._dir("slurmd", self._slurm_ids)
        self.ctld_port, self.slurmd_port = free_port(), free_port()
        logs = self.root / "logs"
        lines = [
            MARKER,
            f"ClusterName={CLUSTER}", f"SlurmctldHost={self.node}", "SlurmUser=slurm",
            f"SlurmctldPort={self.ctld_port}", f"SlurmdPort={self.slurmd_port}",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={state}", f"SlurmdSpoolDir={spool}",
            f"SlurmctldPidFile={state / 'slurmctld.pid'}", f"SlurmdPidFile={spool / 'slurmd.pid'}",
            f"SlurmctldLogFile={logs / 'slurmctld.log'}", f"SlurmdLogFile={logs / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none", "SwitchType=switch/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
            f"DefMemPerCPU={DEF_MEM_PER_CPU_MB}", "MinJobAge=300", "ReturnToService=2",
            "SchedulerType=sched/backfill", "SlurmdParameters=config_overrides",
            # memory without cgroups: sample every step each second, kill a step past its request
            "JobAcctGatherType=jobacct_gather/linux", "JobAcctGatherParams=OverMemoryKill",
            "JobAcctGatherFrequency=task=1",
            "AccountingStorageType=accounting_storage/slurmdbd", "AccountingStorageHost=localhost",
            f"AccountingStoragePort={self.dbd_port}", "AccountingStorageEnforce=associations",
            # the munged socket for talking to slurmdbd (AuthInfo covers only the cluster's own traffic)
            f"AccountingStoragePass={self.munge_socket}",
            "AccountingStoreFlags=job_comment",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} RealMemory={NODE_MEMORY_MB} State=UNKNOWN",
            f"PartitionName={PARTITIONS[0]} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={PARTITIONS[1]} Nodes={self.node} MaxTime=INFINITE State=UP",
            "",
        ]
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        if foreign_config() is not None:  # checked again just before writing
            raise ClusterError(f"{foreign_config()} appeared while the cluster started; not touching it")
        self._wrote_conf = True
        SLURM_CONF.write_text("\n".join(lines))
        SLURM_CONF.chmod(0o644)

    def _add_accounts(self) -> None:
        for argv in (["sacctmgr", "-i", "add", "cluster", CLUSTER],
                     ["sacctmgr", "-i", "add", "account", ACCOUNT, f"Cluster={CLUSTER}"],
                     ["sacctmgr", "-i", "add", "user", "root", f"Account={ACCOUNT}", f"Cluster={CLUSTER}"]):
            done = _run(argv, env=self.env)
            if done.returncode != 0:
                raise ClusterError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr}\n{self.log('slurmdbd')}")

    def _start_slurmctld(self) -> None:
        self._start("slurmctld", [DAEMONS["slurmctld"], "-D", "-i"], env=self.env)

        def answering() -> bool:
            self._alive("slurmctld")
            return _run(["scontrol", "ping"], timeout=10, env=self.env).stdout.find("UP") >= 0

        _wait("slurmctld", answering, self.startup_timeout, interval=0.5, log=self.root / "logs" / "slurmctld.log")

    def _start_slurmd(self) -> None:
        self._start("slurmd", [DAEMONS["slurmd"], "-D"], env=self.env)

        def idle() -> bool:
            self._alive("slurmd")
            out = _run(["sinfo", "-h", "-N", "-o", "%t"], timeout=10, env=self.env).stdout.split()
            return bool(out) and all(state.rstrip("*") == "idle" for state in out)

        _wait("slurmd (node idle)", idle, self.startup_timeout, interval=0.5, log=self.root / "logs" / "slurmd.log")

    # -- tear-down -------------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel what is still queued, stop every daemon this cluster started (by PID, newest
        first), restore the files."""
        ctld = self.procs.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            try:
                _run(["scancel", "--user=root"], timeout=15, env=self.env)
                _wait("scancel", lambda: not _run(["squeue", "-h", "-o", "%i"], timeout=10, env=self.env).stdout.strip(),
                      20, interval=0.5)
            except (ClusterError, subprocess.TimeoutExpired):
                pass  # stopping slurmd ends its job steps too
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                t0 = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
                self.stop_seconds[name] = round(time.monotonic() - t0, 2)
        self.procs.clear()
        if self._wrote_conf and SLURM_CONF.exists() and MARKER in SLURM_CONF.read_text(errors="replace"):
            SLURM_CONF.unlink()
        self._wrote_conf = False
        if self._hosts_before is not None:
            HOSTS.write_text(self._hosts_before)
            self._hosts_before = None
