"""Per-job logging for rule scripts: everything a job prints lands in its ``log:`` file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def job_logging(path: str | os.PathLike | None, level: int = logging.INFO) -> None:
    """Send Python logging, stdout, stderr and native (TensorFlow, HDF5) output to ``path``.

    File descriptors 1 and 2 are redirected, so messages written by C++ libraries land there too.
    Without a path, logging goes to stderr.
    """
    handlers: list[logging.Handler]
    if path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a", buffering=1)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        sys.stdout = fh
        sys.stderr = fh
        handlers = [logging.StreamHandler(fh)]
    else:
        handlers = [logging.StreamHandler(sys.stderr)]
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
