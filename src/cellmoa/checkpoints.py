"""Per-epoch training checkpoints that survive any kill."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellmoa.files import atomic_path, write_text, write_tsv

log = logging.getLogger(__name__)


class Checkpoint:
    """Per-epoch checkpoints that survive any kill: after every epoch the model (weights and
    optimizer state) is saved as ``model-epoch<N>.keras``, the history as ``history.tsv``, and only
    then ``state.json`` is replaced to point at them; every write goes to a temporary name first.
    A restart loads what ``state.json`` names, so a kill at any moment loses at most the epoch
    that was running.

    The folder is not a Snakemake output, so it survives a failed job (Snakemake deletes those).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.state_path = self.folder / "state.json"

    def _state(self) -> dict | None:
        if not self.state_path.exists():
            return None
        return json.loads(self.state_path.read_text())

    def restore(self):
        """(model, finished epochs) from the checkpoint, or (None, 0) without one."""
        import keras

        state = self._state()
        if state is None:
            return None, 0
        model = keras.models.load_model(self.folder / state["model"])
        return model, int(state["epoch"])

    def history(self) -> pd.DataFrame:
        state = self._state()
        if state is None or not state.get("history"):
            return pd.DataFrame(columns=["epoch"])
        return pd.DataFrame(state["history"])

    def save(self, model, epoch: int, logs: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        previous = self._state()
        history = [row for row in (previous or {}).get("history", []) if row["epoch"] < epoch]
        history.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        name = f"model-epoch{epoch + 1}.keras"
        with atomic_path(self.folder / name) as tmp:
            model.save(tmp)
        write_text(self.state_path, json.dumps({"epoch": epoch + 1, "model": name, "history": history}))
        write_tsv(pd.DataFrame(history), self.folder / "history.tsv")  # for people watching the job
        if previous and previous["model"] != name:
            (self.folder / previous["model"]).unlink(missing_ok=True)

    def callback(self):
        import keras

        checkpoint = self

        class SaveEachEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = dict(logs or {})
                # the learning rate the epoch ran with (LearningRateScheduler also logs it)
                logs.setdefault("learning_rate", float(np.asarray(self.model.optimizer.learning_rate)))
                checkpoint.save(self.model, epoch, logs)
                shown = ", ".join(f"{k}={v:.4g}" for k, v in logs.items())
                log.info("epoch %d/%d: %s", epoch + 1, self.params.get("epochs", 0), shown)

        return SaveEachEpoch()
