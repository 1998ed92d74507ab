"""One GPU per training job on a shared machine: an exclusive slot per visible device.

Snakemake's ``--resources gpu=N`` only *counts* jobs; every job would still open GPU 0. A
job here takes an exclusive, non-blocking ``fcntl.flock`` on one lock file per device in a
lock directory, then sets ``CUDA_VISIBLE_DEVICES`` to that device before torch initialises
CUDA, so concurrent jobs land on different GPUs. The kernel drops the lock when the process
exits or is killed, so a crashed job never leaves its slot taken.

Devices to choose from, in order of precedence:

1. an already-set ``CUDA_VISIBLE_DEVICES`` (SLURM sets it to the job's allocation);
   an empty value or ``-1`` means "no GPU";
2. ``CMHASH_FAKE_GPU_COUNT`` (tests: pretend there are N GPUs, ids ``0..N-1``);
3. the GPUs ``nvidia-smi -L`` lists (never ``torch.cuda``: that would initialise CUDA before
   the variable is set, and the choice would be ignored).

No device -> a no-op: the job trains on the CPU.

The lock directory is ``lock_dir`` (argument), else ``$CMHASH_GPU_LOCK_DIR``, else
``results/.gpu_slots`` (inside a SLURM job: the node's temporary folder); inside it a
sub-folder per host (``host-<name>``), or per SLURM job (``slurm-<SLURM_JOB_ID>``) inside a
SLURM allocation, whose GPUs belong to that job alone (with cgroup-constrained devices every
job sees its GPU as ``0``, so jobs must not compete across allocations for a slot of that
name). Keep the folder on a local disk: ``flock`` on a network file system is emulated and
may outlive a dead client.
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from types import TracebackType

from cmhash.errors import CmhashError

log = logging.getLogger("cmhash")

ENV_VISIBLE = "CUDA_VISIBLE_DEVICES"
ENV_ORDER = "CUDA_DEVICE_ORDER"
ENV_FAKE_COUNT = "CMHASH_FAKE_GPU_COUNT"
ENV_LOCK_DIR = "CMHASH_GPU_LOCK_DIR"
ENV_TIMEOUT = "CMHASH_GPU_SLOT_TIMEOUT"
DEFAULT_LOCK_DIR = "results/.gpu_slots"
DEFAULT_TIMEOUT_S = 24 * 3600.0


class GpuSlotTimeout(CmhashError, TimeoutError):
    """Every GPU slot stayed busy for longer than the allowed wait."""


def parse_visible_devices(value: str) -> list[str]:
    """Device ids of a ``CUDA_VISIBLE_DEVICES`` value, in order.

    As CUDA reads it: the list ends at the first negative entry (``-1`` hides every GPU);
    ids may be indices or UUIDs (``GPU-...``, ``MIG-...``).
    """
    ids: list[str] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        if re.fullmatch(r"-\d+", item):
            break
        ids.append(item)
    return ids


def nvidia_smi_devices(timeout_s: float = 20.0) -> list[str]:
    """Indices of the GPUs ``nvidia-smi -L`` lists (``GPU 0: ...`` lines); ``[]`` when the tool
    is missing or fails (a machine without NVIDIA GPUs)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("nvidia-smi unavailable (%s): no GPU slots", exc)
        return []
    if out.returncode != 0:
        log.debug("nvidia-smi -L exited with %s: no GPU slots", out.returncode)
        return []
    return [m.group(1) for m in re.finditer(r"^GPU (\d+):", out.stdout, flags=re.MULTILINE)]


def candidate_devices(environ: MutableMapping[str, str] | None = None) -> tuple[list[str], str]:
    """The device ids a job may take, and where they came from (``CUDA_VISIBLE_DEVICES``,
    ``CMHASH_FAKE_GPU_COUNT`` or ``nvidia-smi``). See the module docstring for the order."""
    env = os.environ if environ is None else environ
    if ENV_VISIBLE in env:
        return parse_visible_devices(env[ENV_VISIBLE]), ENV_VISIBLE
    fake = env.get(ENV_FAKE_COUNT)
    if fake is not None and fake.strip() != "":
        try:
            count = int(fake)
        except ValueError:
            raise CmhashError(f"{ENV_FAKE_COUNT}={fake!r}: not an integer; set it to the number of GPUs to pretend") from None
        if count < 0:
            raise CmhashError(f"{ENV_FAKE_COUNT}={fake!r}: must be >= 0")
        return [str(i) for i in range(count)], ENV_FAKE_COUNT
    return nvidia_smi_devices(), "nvidia-smi"


def resolve_lock_dir(lock_dir: str | os.PathLike | None = None,
                     environ: MutableMapping[str, str] | None = None) -> Path:
    """The folder holding this host's (or this SLURM job's) slot files."""
    env = os.environ if environ is None else environ
    job = env.get("SLURM_JOB_ID")
    default = Path(tempfile.gettempdir()) / "cmhash-gpu-slots" if job else Path(DEFAULT_LOCK_DIR)
    base = Path(lock_dir) if lock_dir is not None else Path(env[ENV_LOCK_DIR]) if env.get(ENV_LOCK_DIR) else default
    scope = f"slurm-{job}" if job else f"host-{socket.gethostname()}"
    return base / _safe_name(scope)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


class GpuSlot:
    """An exclusive claim on one GPU, as a context manager.

    ``with GpuSlot() as slot:`` picks a free device, sets ``CUDA_VISIBLE_DEVICES`` to it
    (``slot.device``; ``None`` on a CPU-only machine) and, on exit, restores the variable and
    frees the slot. Enter it before anything initialises CUDA.
    """

    def __init__(self, lock_dir: str | os.PathLike | None = None, *, timeout_s: float | None = None,
                 poll_s: float = 2.0, environ: MutableMapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ
        self.lock_dir = resolve_lock_dir(lock_dir, self.environ)
        if timeout_s is None:
            raw = self.environ.get(ENV_TIMEOUT)
            try:
                timeout_s = float(raw) if raw else DEFAULT_TIMEOUT_S
            except ValueError:
                raise CmhashError(f"{ENV_TIMEOUT}={raw!r}: not a number of seconds") from None
        self.timeout_s, self.poll_s = float(timeout_s), float(poll_s)
        self.device: str | None = None
        self.source: str | None = None
        self.lock_path: Path | None = None
        self._fd: int | None = None
        self._saved: dict[str, str | None] = {}

    # -- acquiring ----------------------------------------------------------------------
    def acquire(self) -> GpuSlot:
        """Take a free slot (waiting, polling every ``poll_s``, up to ``timeout_s``)."""
        if self._fd is not None:
            return self
        _refuse_if_cuda_initialised()
        devices, self.source = candidate_devices(self.environ)
        if not devices:
            log.info("no GPU visible (%s): training on the CPU, no GPU slot taken", self.source)
            return self
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        warned = False
        while True:
            for device in devices:
                if self._try_lock(device):
                    self._export(device)
                    waited = time.monotonic() - start
                    log.info("GPU slot %s taken (CUDA_VISIBLE_DEVICES=%s, from %s%s)", self.lock_path, device,
                             self.source, f", after waiting {waited:.0f} s" if warned else "")
                    return self
            elapsed = time.monotonic() - start
            if elapsed >= self.timeout_s:
                raise GpuSlotTimeout(
                    f"{self.lock_dir}: all {len(devices)} GPU slot(s) {devices} stayed busy for {elapsed:.0f} s "
                    f"(held by: {self.holders(devices)}). Run fewer GPU jobs at once (snakemake --resources gpu=N), "
                    f"or raise {ENV_TIMEOUT} (seconds).")
            if not warned:
                log.warning("all %d GPU slot(s) %s in %s are busy (held by: %s); waiting up to %.0f s for one to "
                            "free (%s)", len(devices), devices, self.lock_dir, self.holders(devices), self.timeout_s,
                            ENV_TIMEOUT)
                warned = True
            time.sleep(min(self.poll_s, max(self.timeout_s - elapsed, 0.0)))

    def _slot_path(self, device: str) -> Path:
        return self.lock_dir / f"gpu-{_safe_name(device)}.lock"

    def _try_lock(self, device: str) -> bool:
        path = self._slot_path(device)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the "busy" message of the jobs that wait (informational only:
        # the lock itself is the kernel's, never this text).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
                  .encode(), 0)
        self._fd, self.lock_path, self.device = fd, path, device
        return True

    def _export(self, device: str) -> None:
        self._saved = {ENV_VISIBLE: self.environ.get(ENV_VISIBLE), ENV_ORDER: self.environ.get(ENV_ORDER)}
        if self.source == "nvidia-smi" and ENV_ORDER not in self.environ:
            # nvidia-smi numbers GPUs by PCI bus; make CUDA number them the same way.
            self.environ[ENV_ORDER] = "PCI_BUS_ID"
        self.environ[ENV_VISIBLE] = device

    def holders(self, devices: list[str]) -> str:
        """What the slot files say about their holders (for messages)."""
        notes = []
        for device in devices:
            try:
                text = self._slot_path(device).read_text().strip()
            except OSError:
                text = ""
            notes.append(f"{device}: {text or 'unknown'}")
        return "; ".join(notes)

    # -- releasing ----------------------------------------------------------------------
    def release(self) -> None:
        """Free the slot and restore the environment (idempotent)."""
        if self._fd is None:
            return
        for key, value in self._saved.items():
            if value is None:
                self.environ.pop(key, None)
            else:
                self.environ[key] = value
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None
        log.info("GPU slot %s freed", self.lock_path)

    def __enter__(self) -> GpuSlot:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _refuse_if_cuda_initialised() -> None:
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    if cuda is not None and hasattr(cuda, "is_initialized") and cuda.is_initialized():
        raise RuntimeError("CUDA is already initialised in this process: CUDA_VISIBLE_DEVICES can no longer choose "
                           "the GPU. Take the GPU slot before any torch.cuda call.")


__all__ = ["GpuSlot", "GpuSlotTimeout", "candidate_devices", "nvidia_smi_devices", "parse_visible_devices",
           "resolve_lock_dir"]
