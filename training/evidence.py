"""An assembled checkpoint's evidence changed after assembly (a figure measured later, e.g. by
training/near_duplicates.py or training/loso_evidence.py): validation.json rewritten as
training/assemble_default.py writes it, and the model card rendered from it again, so the card never says
something its evidence does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from training.model_card import render_card

T = TypeVar("T")


def update_evidence(checkpoint: Path, change: Callable[[dict], T]) -> T:
    """Apply ``change`` to the checkpoint's validation dict, write it back and re-render MODEL_CARD.md; returns
    what ``change`` returns."""
    path = checkpoint / "validation.json"
    validation = json.loads(path.read_text())
    result = change(validation)
    path.write_text(json.dumps(validation, indent=1) + "\n")
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "MODEL_CARD.md").write_text(render_card(config, validation))
    return result
