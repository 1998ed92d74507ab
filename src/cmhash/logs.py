"""Logging set-up shared by the command line and the workflow scripts."""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import TracebackType


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr and, when given, to ``log_file`` (warnings included).

    An exception nobody catches is logged too, with its traceback, before the interpreter's own
    report: a failing job's log (the file Snakemake names, or a cluster job's output) holds the
    error, not only the lines before it."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers,
                        force=True)
    logging.captureWarnings(True)
    logger = logging.getLogger("cmhash")
    if log_file:
        sys.excepthook = _log_uncaught(logger, log_file)
    return logger


def _log_uncaught(logger: logging.Logger, log_file: str | Path):
    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            # the file handler only: stderr gets the interpreter's own report below
            record = logger.makeRecord(logger.name, logging.CRITICAL, "", 0, f"job failed: {kind.__name__}: {exc}",
                                       None, (kind, exc, tb))
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == Path(log_file).resolve():
                    handler.handle(record)
        sys.__excepthook__(kind, exc, tb)

    return hook
