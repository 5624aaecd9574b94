"""Fast CPU inference: a cached twin of a predictor whose conv+BN pairs are folded and whose memory is
channels_last (about 2-4x faster on CPU, same numbers to ~1e-5; see bench/RESULTS.md).

The per-patient triage (model/triage.py) scores with the twin, in small batches (CPU_BATCH) that keep
the activations in cache; the trunk cache (training/trunk_cache.py) folds its frozen trunk the same way.
"""

from __future__ import annotations

import copy
import itertools
import logging
import threading
import weakref
from typing import Any

import pandas as pd
import torch
from torch import nn

logger = logging.getLogger(__name__)

# Images per forward pass on CPU: small batches keep the activations in cache. Measured on the 2-core
# dev machine (lite0, 224 px, folded + channels_last): 10 ms/image at batch 1, 5 at 4, 9 at 16, 12 at 32.
CPU_BATCH = 4


def fuse_conv_bn(model: nn.Module, example: tuple[torch.Tensor, ...]) -> tuple[nn.Module, int]:
    """A copy of `model` (eval) with every BatchNorm2d that directly consumes a Conv2d's output folded into
    that conv (timm's BatchNormAct2d keeps its activation). Pairs are found by a dry run: the BN's input
    must be the very tensor the conv produced. Returns (model, number of pairs fused)."""
    from timm.layers import BatchNormAct2d
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    names = {m: n for n, m in model.named_modules()}
    events: list[tuple[nn.Module, Any, Any]] = []  # tensors kept alive so identity checks are sound

    def record(module, inputs, output):
        events.append((module, inputs[0] if inputs else None, output))

    hooks = [
        m.register_forward_hook(record)
        for m in model.modules()
        if isinstance(m, nn.Conv2d) or type(m) in (nn.BatchNorm2d, BatchNormAct2d)
    ]
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for h in hooks:
            h.remove()
    uses: dict[nn.Module, int] = {}
    for m, _, _ in events:
        uses[m] = uses.get(m, 0) + 1
    pairs = [
        (a, b)
        for (a, _, out_a), (b, in_b, _) in itertools.pairwise(events)
        if isinstance(a, nn.Conv2d)  # incl. timm Conv2dSame: fuse_conv_bn_eval keeps the subclass
        and type(b) in (nn.BatchNorm2d, BatchNormAct2d)
        and in_b is out_a
        and uses[a] == 1
        and uses[b] == 1
        and b.track_running_stats
    ]
    for conv, bn in pairs:
        parent, _, attr = names[conv].rpartition(".")
        setattr(model.get_submodule(parent), attr, fuse_conv_bn_eval(conv, bn))
        parent, _, attr = names[bn].rpartition(".")
        setattr(
            model.get_submodule(parent),
            attr,
            nn.Sequential(bn.drop, bn.act) if type(bn) is BatchNormAct2d else nn.Identity(),
        )
    return model, len(pairs)


_fast: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_fast_lock = threading.Lock()


def inference_predictor(predictor):
    """The predictor to score with: on CPU a cached twin whose network has conv+BN folded and uses
    channels_last memory (about 2-4x faster on CPU, same numbers to ~1e-5); the predictor itself elsewhere,
    or if the twin's outputs do not match the original's."""
    if predictor.device.type != "cpu":
        return predictor
    with _fast_lock:
        twin = _fast.get(predictor.model)
        if twin is None:
            twin = _fast[predictor.model] = _make_twin(predictor)
        return twin


def _make_twin(predictor):
    from model.predictor import Predictor

    size = predictor.network.image_size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    meta = torch.from_numpy(predictor.encoder.encode(pd.DataFrame(index=range(2))))
    try:
        fused, pairs = fuse_conv_bn(predictor.model, (x, meta))
        fused = fused.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            a, b = predictor.model(x, meta), fused(x, meta)
        scale = float(a["embedding"].abs().max()) + 1e-6
        logit_gap = float((a["logit"] - b["logit"]).abs().max())
        embedding_gap = float((a["embedding"] - b["embedding"]).abs().max())
        # Written so that a NaN gap (a fold that made the outputs NaN) fails the check: NaN > x is False.
        if not (logit_gap <= 1e-3 and embedding_gap <= 1e-4 * scale):
            logger.warning("folded network does not reproduce the original: scoring with the original")
            return predictor
    except Exception:  # an exotic backbone: fall back to the original network
        logger.exception("conv+BN folding failed: scoring with the original network")
        return predictor
    twin = Predictor(fused, predictor.config, device=predictor.device, batch_size=predictor.batch_size)
    twin.fused_pairs = pairs
    twin.channels_last = True
    return twin
