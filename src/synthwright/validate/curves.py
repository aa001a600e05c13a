"""Training-loop check: does loss on held-out *real* data follow the training loss down, or
does it stall far above it (the student learns the synthetic set, not the task)?

Works with curves from any trainer: lists of (step, loss), or rows with `step` plus
`loss`/`train_loss` and `eval_loss`/`val_loss` (the Hugging Face Trainer's `log_history`
in trainer_state.json has exactly that shape).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthwright.errors import UserError
from synthwright.io.rows import numbered_jsonl

TRAIN_KEYS = ("train_loss", "loss", "training_loss")
VAL_KEYS = ("val_loss", "eval_loss", "validation_loss", "real_val_loss")


@dataclass
class CurveCheck:
    """verdict: 'tracks', 'plateau' (real loss stalls far above training loss) or 'rising'
    (real loss climbs back up while training loss falls: overfitting to the synthetic set)."""

    verdict: str
    message: str
    train_start: float
    train_end: float
    val_start: float
    val_end: float
    val_best: float
    gap_end: float  # val_end - train_end
    transfer: float  # share of the training-loss drop that shows on real validation loss
    late_transfer: float  # the same over the second half of training only
    train: list[list[float]]
    val: list[list[float]]

    @property
    def flagged(self) -> bool:
        return self.verdict != "tracks"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flagged": self.flagged}


def _pairs(curve: Sequence) -> np.ndarray:
    """(n, 2) array of (step, loss), sorted by step; a bare list of losses gets steps 0..n-1."""
    values = list(curve)
    if values and not isinstance(values[0], (list, tuple)):
        values = list(enumerate(values))
    array = np.array(values, float).reshape(-1, 2)
    array = array[np.isfinite(array).all(axis=1)]
    return array[np.argsort(array[:, 0], kind="stable")]


def check_curves(train: Sequence, val: Sequence, *, max_gap: float = 0.25, min_late_transfer: float = 0.25, rise: float = 0.05) -> CurveCheck:
    """Compare a training-loss and a real-validation-loss curve.

    - rising: the last real loss is more than `rise` (relative) above its best, after the best.
    - plateau: over the second half of training, real loss fell by less than
      `min_late_transfer` of what training loss fell, and it ends more than `max_gap`
      (relative to the training loss) above it.
    - tracks: otherwise.
    """
    t, v = _pairs(train), _pairs(val)
    if len(t) < 2 or len(v) < 2:
        raise UserError(f"The curve check needs at least 2 points per curve (training {len(t)}, validation {len(v)}).")
    # Training loss at the validation steps (validation is usually logged less often).
    t_at_v = np.interp(v[:, 0], t[:, 0], t[:, 1])
    half = v[:, 0] >= v[0, 0] + (v[-1, 0] - v[0, 0]) / 2
    mid = int(np.argmax(half))  # first validation point of the second half
    drop = lambda a, b: float(a - b)
    transfer = drop(v[0, 1], v[-1, 1]) / max(drop(t_at_v[0], t_at_v[-1]), 1e-12)
    late_train_drop = drop(t_at_v[mid], t_at_v[-1])
    late_transfer = drop(v[mid, 1], v[-1, 1]) / late_train_drop if late_train_drop > 1e-12 else 1.0
    gap = float(v[-1, 1] - t_at_v[-1])
    best = float(v[:, 1].min())
    relative_gap = gap / max(abs(float(t_at_v[-1])), 1e-12)
    if v[-1, 1] > best * (1 + rise) and int(np.argmin(v[:, 1])) < len(v) - 1:
        verdict = "rising"
        message = f"real validation loss rose from its best {best:.4g} to {v[-1, 1]:.4g} while training loss kept falling: the student is fitting the synthetic set, not the task"
    elif late_transfer < min_late_transfer and relative_gap > max_gap:
        verdict = "plateau"
        message = (f"real validation loss stalled ({late_transfer:.0%} of the late training-loss drop reached it) and ends "
                   f"{relative_gap:.0%} above training loss ({v[-1, 1]:.4g} vs {t_at_v[-1]:.4g})")
    else:
        verdict = "tracks"
        message = f"real validation loss follows training loss ({transfer:.0%} of the drop transfers; final gap {gap:.4g})"
    return CurveCheck(verdict, message, float(t[0, 1]), float(t[-1, 1]), float(v[0, 1]), float(v[-1, 1]), best, gap,
                      float(transfer), float(late_transfer), t.tolist(), v.tolist())


def load_curves(path: str | Path) -> tuple[list, list]:
    """(train, val) pairs from a JSON or JSONL file: {"train": [...], "val": [...]}, a
    trainer_state.json with `log_history`, or rows with `step` and loss keys."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Loss curves file '{path}' does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [row for _, row in numbered_jsonl(path)]  # JSONL, or an error that names the line
    if isinstance(data, dict) and "train" in data and "val" in data:
        return data["train"], data["val"]
    rows = data.get("log_history") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise UserError(f"Cannot read loss curves from '{path}'.", 'Give {"train": [[step, loss], ...], "val": [...]}, rows with step/loss/eval_loss, or a trainer_state.json.')
    def pick(keys: tuple[str, ...]) -> list[tuple[float, float]]:
        found = []
        for i, row in enumerate(rows):
            key = next((k for k in keys if isinstance(row, dict) and isinstance(row.get(k), (int, float))), None)
            if key:
                found.append((float(row.get("step", row.get("global_step", i))), float(row[key])))
        return found
    train, val = pick(TRAIN_KEYS), pick(VAL_KEYS)
    if not train or not val:
        raise UserError(f"'{path}' has {len(train)} training and {len(val)} validation loss points.",
                        f"Rows need 'step' and one of {', '.join(TRAIN_KEYS)} / {', '.join(VAL_KEYS)}.")
    return train, val
