"""Training checkpoints that survive any kill.

A fold's checkpoint folder (``results/checkpoints/<network>/<fold>/``, not a Snakemake output, so
it survives a failed job) holds the model with its optimizer state as ``model-epoch<N>.keras`` and
``state.json`` naming it, with the per-epoch history; ``history.tsv`` shows the epochs done so far
to a person watching the job. Every write goes to a temporary name first and ``state.json`` is
replaced last, so a restart always finds a consistent checkpoint.

How often: ``checkpoint_minutes`` (training settings) is the least time between two saves of the
model; 0 saves after every epoch, so a kill loses at most the epoch that was running. A saved
InceptionResNetV2 with Adam state is ~620 MiB and takes ~8 s to write on a CPU machine: on the
CPU demo a save per epoch cost more than the training.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.files import atomic_path, write_text, write_tsv

log = logging.getLogger(__name__)


class Checkpoint:
    """The checkpoint of one fold (see the module docstring)."""

    def __init__(self, folder: Path, interval_minutes: float = 0.0):
        self.folder = Path(folder)
        self.state_path = self.folder / "state.json"
        self.interval = 60.0 * float(interval_minutes)
        self.rows: list[dict] = []
        self._last_save = time.monotonic()

    def _state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text())

    def restore(self):
        """(model, finished epochs) from the checkpoint, or (None, 0) without one. The history of
        the finished epochs is kept for :meth:`history`."""
        import keras

        state = self._state()
        if state is None:
            return None, 0
        self.rows = [row for row in state.get("history", []) if row["epoch"] < int(state["epoch"])]
        model = keras.models.load_model(self.folder / state["model"])
        return model, int(state["epoch"])

    def history(self) -> pd.DataFrame:
        """One row per finished epoch: epoch, the logged metrics, learning_rate."""
        return pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=["epoch"])

    def _write_state(self, name: str, epochs_done: int) -> None:
        previous = self._state()
        write_text(self.state_path, json.dumps({"epoch": epochs_done, "model": name, "history": self.rows}))
        if previous and previous["model"] != name:
            (self.folder / previous["model"]).unlink(missing_ok=True)
        self._last_save = time.monotonic()

    def save(self, model, epochs_done: int) -> None:
        """Save the model (weights and optimizer state) after ``epochs_done`` epochs."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"model-epoch{epochs_done}.keras"
        with atomic_path(self.folder / name) as tmp:
            model.save(tmp)
        self._write_state(name, epochs_done)

    def adopt(self, model_file: Path, epochs_done: int, history: pd.DataFrame | None = None) -> None:
        """Record a finished fold without writing the model again: ``model_file`` (the fold's
        saved model) is hard-linked into the folder (copied where links are not possible), with
        ``history`` (default: the epochs recorded by this object)."""
        if history is not None:
            self.rows = [{k: int(v) if k == "epoch" else float(v) for k, v in row.items()}
                         for row in history.to_dict("records")]
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"model-epoch{epochs_done}.keras"
        with atomic_path(self.folder / name) as tmp:
            try:
                os.link(model_file, tmp)
            except OSError:
                shutil.copyfile(model_file, tmp)
        self._write_state(name, epochs_done)

    def end_epoch(self, model, epoch: int, logs: dict, last: bool) -> None:
        """After epoch ``epoch`` (0-based): record its logs, and save the model when due (after
        every epoch with an interval of 0; otherwise once the interval has passed, and not after
        the last epoch, whose model the fold saves anyway)."""
        self.rows = [row for row in self.rows if row["epoch"] < epoch]
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        if self.interval == 0 or (not last and time.monotonic() - self._last_save >= self.interval):
            self.save(model, epoch + 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_tsv(self.history(), self.folder / "history.tsv")  # for people watching the job

    def callback(self):
        import keras

        checkpoint = self

        class SaveEachEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                # the learning rate the epoch ran with (LearningRateScheduler also logs it)
                logs.setdefault("learning_rate", float(np.asarray(self.model.optimizer.learning_rate)))
                epochs = self.params.get("epochs", 0)
                checkpoint.end_epoch(self.model, epoch, logs, last=epoch + 1 >= epochs)
                shown = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
                log.info("epoch %d/%d: %s", epoch + 1, epochs, shown)

        return SaveEachEpoch()
