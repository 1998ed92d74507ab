"""The test-only memory fault (cmhash.fault_injection): off unless its variable names the run
folder, and only once per cell (the retry runs normally)."""
from __future__ import annotations

from cmhash.fault_injection import EXCEED_MEMORY, MARKER, exceed_memory_if_asked


def test_nothing_happens_unless_the_variable_names_this_run(tmp_path, monkeypatch):
    monkeypatch.delenv(EXCEED_MEMORY, raising=False)
    exceed_memory_if_asked(tmp_path / "run", 4000, hold_seconds=0)
    monkeypatch.setenv(EXCEED_MEMORY, str(tmp_path / "other"))
    exceed_memory_if_asked(tmp_path / "run", 4000, hold_seconds=0)
    assert not (tmp_path / "run").exists()


def test_the_first_attempt_goes_past_its_request_and_the_retry_does_not(tmp_path, monkeypatch, caplog):
    run = tmp_path / "run"
    monkeypatch.setenv(EXCEED_MEMORY, str(run))
    with caplog.at_level("INFO"):
        exceed_memory_if_asked(run, 8, hold_seconds=0)  # nothing kills it here: it warns and goes on
        assert (run / MARKER).is_file()
        assert "allocating 72 MB, past this job's request of 8 MB" in caplog.text
        assert "still alive" in caplog.text
        caplog.clear()
        exceed_memory_if_asked(run, 16, hold_seconds=0)
        assert "already exceeded" in caplog.text and "allocating" not in caplog.text
