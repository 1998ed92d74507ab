"""The MLflow UI as a user sees it: ``mlflow ui`` on 127.0.0.1 and a real headless browser
(Debian's ``chromium`` and ``chromium-driver`` through selenium; never a downloaded browser).

Used by the integration test (tests/test_workflow.py) and, as a script, to make the README's
screenshot of the runs table from a finished run of the workflow::

    python -m tests.mlflow_ui --results results --experiment cmhash-demo --out docs/mlflow_runs.png
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cmhash.tracking import runs_page_url

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
INSTALL_HINT = "apt-get install chromium chromium-driver"


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file() and os.access(p, os.X_OK)), None)


def browser_missing() -> str | None:
    """Why the browser checks cannot run here (``None`` when they can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if _first(CHROMIUM) is None:
        return f"Debian's chromium is not installed ({INSTALL_HINT})"
    if _first(CHROMEDRIVER) is None:
        return f"Debian's chromium-driver is not installed ({INSTALL_HINT})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_ui(store_uri: str, timeout: float = 180) -> Iterator[str]:
    """Run ``mlflow ui`` on the store at a free port of 127.0.0.1; yield its base URL, then stop
    it (its whole process group: the server and its workers)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no background job consumers (GenAI jobs): a browse-only server
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store_uri,
                                 "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(proc, base, log, timeout)
            yield base
        finally:
            _stop_group(proc)


def _wait_until_up(proc: subprocess.Popen, base: str, log: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"mlflow ui exited with {proc.returncode}:\n{log.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            log.seek(0)
            raise TimeoutError(f"mlflow ui did not answer on {base} within {timeout} s:\n{log.read()[-3000:]}")
        time.sleep(0.5)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group this module started (``start_new_session``), SIGKILL what is
    left after 15 s, and wait until none of it remains."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


@contextlib.contextmanager
def chromium(width: int = 1600, height: int = 1000) -> Iterator[Any]:
    """A headless Debian chromium driven by Debian's chromedriver (``--no-sandbox`` as root)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = _first(CHROMIUM)
    for arg in ("--headless=new", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}",
                "--lang=en-US", "--no-first-run"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium refuses to start its sandbox as root
    profile = tempfile.mkdtemp(prefix="cmhash-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(_first(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_text(driver: Any, texts: list[str], timeout: float = 60) -> str:
    """Wait until the page shows every one of ``texts``; return the page's text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = ""

    def shown(d: Any) -> bool:
        nonlocal page
        page = d.find_element(By.TAG_NAME, "body").text
        return all(t in page for t in texts)

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.5).until(shown)
    except TimeoutException:
        missing = [t for t in texts if t not in page]
        raise AssertionError(f"{driver.current_url} does not show {missing}; it shows:\n{page[:3000]}") from None
    return page


def open_runs_table(driver: Any, base_url: str, experiment_id: str, run_names: list[str],
                    timeout: float = 90) -> str:
    """Open the experiment's runs table (cmhash's saved view) and wait for every run; return the
    page's text."""
    driver.get(runs_page_url(base_url, experiment_id))
    return wait_for_text(driver, ["Run Name", "Dataset", *run_names], timeout)


def close_assistant(driver: Any) -> None:
    """Close MLflow's assistant side panel when it is open (it hides half the runs table)."""
    from selenium.webdriver.common.by import By

    for button in driver.find_elements(By.CSS_SELECTOR, 'button[data-component-id="mlflow.assistant.chat_panel.close"]'):
        with contextlib.suppress(Exception):
            button.click()
            time.sleep(0.5)


def open_run(driver: Any, run_name: str, expected: list[str], timeout: float = 60) -> str:
    """Click a run in the runs table and wait for its page to show ``expected``; return its text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    link = WebDriverWait(driver, timeout).until(expected_conditions.element_to_be_clickable((By.LINK_TEXT, run_name)))
    link.click()
    return wait_for_text(driver, expected, timeout)


def screenshot_runs_table(store_uri: str, experiment_id: str, run_names: list[str], out: str | Path,
                          width: int = 1500, height: int = 900) -> Path:
    """Save a PNG of the experiment's runs table as a user first sees it from cmhash's link."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with mlflow_ui(store_uri) as base, chromium(width, height) as driver:
        open_runs_table(driver, base, experiment_id, run_names)
        close_assistant(driver)
        time.sleep(1.5)  # let the table re-layout after the panel closes
        driver.save_screenshot(str(out))
    return out


def main(argv: list[str] | None = None) -> None:
    from cmhash.tracking import experiment_info, find_runs, tracking_uri

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results", help="the workflow's results folder (holds mlflow.db)")
    parser.add_argument("--experiment", default="cmhash-demo")
    parser.add_argument("--out", default="docs/mlflow_runs.png")
    args = parser.parse_args(argv)
    missing = browser_missing()
    if missing:
        sys.exit(missing)
    uri = tracking_uri(Path(args.results) / "mlflow.db")
    info = experiment_info(uri, args.experiment)
    if info is None:
        sys.exit(f"{uri}: no experiment {args.experiment!r}; run the workflow first")
    names = sorted(r["run_name"] for r in find_runs(uri, args.experiment))
    height = max(800, 500 + 36 * len(names))  # every run on screen
    print(screenshot_runs_table(uri, info["experiment_id"], names, args.out, height=height))


if __name__ == "__main__":
    main()
