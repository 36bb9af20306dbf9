"""Training checkpoints that survive any kill.

A fold's checkpoint folder (``results/checkpoints/<network>/<fold>/``, not a Snakemake output, so
it survives a failed job) holds the model with its optimizer state as ``model-epoch<N>.keras`` and
``state.json`` naming it, with the per-epoch history; ``history.tsv`` shows the epochs done so far
to a person watching the job. Every write goes to a temporary name first and ``state.json`` is
replaced last, so a restart always finds a consistent checkpoint. ``state.json`` also records what
made the fold (held-out compound and settings): a job with other settings starts the fold anew
instead of resuming a model trained differently.

A fold that finished in a multi-fold job keeps its results (predictions, embeddings, history,
and its model where it is kept) hard-linked in its folder until the job ends
(:meth:`Checkpoint.keep_results`), so a rerun after a kill restores them instead of training it
again.

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

    def __init__(self, folder: Path, interval_minutes: float = 0.0, made_with: str = ""):
        self.folder = Path(folder)
        #: what makes the fold (its held-out compound and settings): a saved model is resumed only
        #: by a job with the same, never by one whose settings have changed since
        self.made_with = made_with
        self.state_path = self.folder / "state.json"
        self.interval = 60.0 * float(interval_minutes)
        self.rows: list[dict] = []
        self._last_save = time.monotonic()

    def _state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text())

    def restore(self):
        """(model, finished epochs) from the checkpoint, or (None, 0) without one.

        The history of the finished epochs is kept for :meth:`history`.
        """
        import keras

        state = self._state()
        if state is None:
            return None, 0
        if state.get("made_with", "") != self.made_with:
            log.warning(
                "%s: the saved model (epoch %s) was trained with other settings; it is not "
                "resumed, "
                "the fold starts anew",
                self.folder,
                state.get("epoch"),
            )
            return None, 0
        self.rows = [row for row in state.get("history", []) if row["epoch"] < int(state["epoch"])]
        model = keras.models.load_model(self.folder / state["model"])
        return model, int(state["epoch"])

    def history(self) -> pd.DataFrame:
        """One row per finished epoch: epoch, the logged metrics, learning_rate."""
        return pd.DataFrame(self.rows) if self.rows else pd.DataFrame(columns=["epoch"])

    def _write_state(self, name: str, epochs_done: int) -> None:
        previous = self._state()
        write_text(
            self.state_path,
            json.dumps(
                {
                    "epoch": epochs_done,
                    "model": name,
                    "history": self.rows,
                    "made_with": self.made_with,
                }
            ),
        )
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

    def keep_results(self, files: list[Path]) -> None:
        """Keep a finished fold's output ``files`` for :meth:`restore_results`.

        Hard links (copies where links are not possible), with :attr:`made_with` (what made them:
        the fold and its settings); the list is written last.
        """
        folder = self.folder / "results"
        folder.mkdir(parents=True, exist_ok=True)
        names = []
        for path in map(Path, files):
            with atomic_path(folder / path.name) as tmp:
                try:
                    os.link(path, tmp)
                except OSError:
                    shutil.copyfile(path, tmp)
            names.append(path.name)
        write_text(folder / "done.json", json.dumps({"files": names, "made_with": self.made_with}))

    def restore_results(self, files: list[Path]) -> bool:
        """Put back the outputs kept by :meth:`keep_results`.

        False (nothing done) unless every one of ``files`` was kept, by the same :attr:`made_with`
        (results of other settings are never restored).
        """
        folder = self.folder / "results"
        done = folder / "done.json"
        if not done.exists():
            return False
        kept = json.loads(done.read_text())
        if not isinstance(kept, dict) or set(kept.get("files", [])) != {
            Path(f).name for f in files
        }:
            return False
        if not all((folder / Path(f).name).is_file() for f in files):
            log.info("%s: a kept result is missing; the fold is made again", folder)
            return False
        if kept.get("made_with") != self.made_with:
            log.info(
                "%s: kept results of other settings are not restored; the fold is made again",
                folder,
            )
            return False
        for path in map(Path, files):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                try:
                    os.link(folder / path.name, tmp)
                except OSError:
                    shutil.copyfile(folder / path.name, tmp)
        return True

    def end_epoch(self, model, epoch: int, logs: dict, last: bool) -> None:
        """After epoch ``epoch`` (0-based).

        Record its logs, and save the model when due (after every epoch with an interval of 0;
        otherwise once the interval has passed, and not after the last epoch, whose model the fold
        saves anyway).
        """
        self.rows = [row for row in self.rows if row["epoch"] < epoch]
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        if self.interval == 0 or (not last and time.monotonic() - self._last_save >= self.interval):
            self.save(model, epoch + 1)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_tsv(self.history(), self.folder / "history.tsv")  # for people watching the job

    def callback(self):
        """A Keras callback that calls :meth:`end_epoch` after every epoch."""
        import keras

        checkpoint = self

        class SaveEachEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                # the learning rate the epoch ran with (LearningRateScheduler also logs it)
                logs.setdefault(
                    "learning_rate", float(np.asarray(self.model.optimizer.learning_rate))
                )
                epochs = self.params.get("epochs", 0)
                checkpoint.end_epoch(self.model, epoch, logs, last=epoch + 1 >= epochs)
                shown = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
                log.info("epoch %d/%d: %s", epoch + 1, epochs, shown)

        return SaveEachEpoch()
