"""Loader-free training throughput: the same model, optimiser, AMP and DDP wrapper as training.train,
fed synthetic tensors that already sit on the device. The ratio real/synthetic shows whether data
loading starves the accelerator.

    torchrun --nproc_per_node=1 -m bench.train_synthetic --image-size 384 --batch-size 64 --steps 60
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from training import distributed as D
from training.optimisation import amp_dtype, build_optimizer, compute_loss, optimizer_step
from training.train import network_config
from training.train_config import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    cfg = TrainConfig(image_size=args.image_size, batch_size=args.batch_size, imagenet=False)
    ctx = D.setup()
    from model.network import MelanomaNet

    net_cfg = network_config(cfg)
    model = MelanomaNet(net_cfg).to(ctx.device)
    if ctx.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    ddp = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None) if ctx.distributed else model
    optimizer = build_optimizer(model, cfg)
    dtype = amp_dtype(cfg, ctx)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    b = args.batch_size
    batch = {
        "image": torch.randn(b, 3, args.image_size, args.image_size, device=ctx.device),
        "meta": torch.zeros(b, net_cfg.encoder.dim, device=ctx.device),
        "target": (torch.rand(b, device=ctx.device) > 0.5).float(),
        "diagnosis": torch.randint(0, len(net_cfg.diagnosis_classes), (b,), device=ctx.device),
    }
    if ctx.device.type == "cuda":
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    ddp.train()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            if ctx.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(ctx.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = compute_loss(ddp(batch["image"], batch["meta"]), batch, None, cfg)
        optimizer_step(loss, optimizer, scaler)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if ctx.is_main:
        print(
            json.dumps(
                {
                    "synthetic_images_per_s": args.steps * b * ctx.world_size / elapsed,
                    "image_size": args.image_size,
                    "batch_size": b,
                    "world_size": ctx.world_size,
                    "amp": str(dtype),
                    "device": torch.cuda.get_device_name() if ctx.device.type == "cuda" else "cpu",
                }
            )
        )
    D.teardown()


if __name__ == "__main__":
    main()
