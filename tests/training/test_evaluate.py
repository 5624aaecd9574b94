"""training/evaluate.py's HTML page: the shared validation figures (model/figures.py), one curve per dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model import figures
from training.evaluate import figures_html, report_from_predictions


@pytest.fixture(scope="module")
def report():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 600)
    preds = pd.DataFrame(
        {
            "image_id": [str(i) for i in range(600)],
            "dataset": np.where(np.arange(600) < 300, "ham10000", "isic2020"),
            "group_id": [str(i // 2) for i in range(600)],
            "target": y,
            "p_melanoma": np.clip(y * 0.4 + rng.random(600) * 0.6, 0, 1),
        }
    )
    return report_from_predictions(preds, n_boot=20)


def test_the_evaluation_page_draws_every_dataset_with_its_auc(report):
    page = figures_html(report, "Validation of <runs/x>")
    assert page.count("Plotly.newPlot") == 3  # ROC, precision-recall, calibration
    assert page.count("plotly.js v") == 1  # plotly.js embedded once
    assert "<title>Validation of &lt;runs/x&gt;</title>" in page
    for name in ("pooled", "ham10000", "isic2020"):
        auc = report["pooled" if name == "pooled" else "per_dataset"]
        auc = auc["auc"] if name == "pooled" else auc[name]["auc"]
        assert f"{name} (AUC {auc:.3f})" in page
    roc = figures.roc_figure(report["curves"])
    assert [len(t.x) for t in roc.data[1:]] == [len(c["roc"]["fpr"]) for c in report["curves"].values()]
