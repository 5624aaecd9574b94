"""The CAM coverage benchmark's report names the best method and the registry's default separately: it must
not call a method the default when it is not."""

from __future__ import annotations

import numpy as np

from bench.cam_coverage import report
from model.cam_methods import DEFAULT_METHOD


def run_with(best: str) -> dict:
    results = {}
    for k, method in enumerate(("gradcam", "gradcam++", "layercam", "eigencam")):
        energy = np.full(4, 0.2 + 0.01 * k)
        if method == best:
            energy = energy + 0.1
        results[method] = {"energy": energy, "hits": np.ones(4), "empty": 0, "seconds": 0.4}
    return {"results": results, "area": np.full(4, 0.15), "n": 4, "skipped": 1}


def test_the_report_says_which_method_won_and_which_is_the_default():
    lines, best = report(run_with("layercam"), "isic2017", "ckpt", "model")
    text = "\n".join(lines)
    assert best == "layercam" != DEFAULT_METHOD
    assert "Best on average among the methods that explain the score: **LayerCAM**; the CAM registry's default" in text
    assert "(see the paired difference above)" in text
    lines, best = report(run_with(DEFAULT_METHOD), "isic2017", "ckpt", "model")
    assert best == DEFAULT_METHOD and "(the same)." in "\n".join(lines)
