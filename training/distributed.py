"""torch.distributed plumbing: one code path for 1 CPU process, 1 GPU, N GPUs or several nodes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    launched: bool = False  # started by torchrun: a process group exists, even for one process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.launched


def setup(device: str = "auto") -> DistContext:
    """Initialise from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); plain `python -m` = 1 process."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
        # Share the cores between the processes on this machine.
        per_proc = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        torch.set_num_threads(per_proc)
    # Under torchrun we always use the process group and DDP, even with one process, so that the
    # one-GPU run exercises exactly the code that an eight-GPU run does.
    launched = "TORCHELASTIC_RUN_ID" in os.environ or world > 1
    if launched and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None)
    return DistContext(rank, world, local, dev, launched)


def teardown() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def gather_concat(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """all_gather equal-sized per-rank tensors (DistributedSampler pads ranks to equal length)."""
    if not ctx.distributed:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(ctx.world_size)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def params_in_sync(model: torch.nn.Module, ctx: DistContext) -> bool:
    """True when every rank holds bit-identical parameters (cheap fingerprint: sums and sums of squares)."""
    if not ctx.distributed:
        return True
    with torch.no_grad():
        flat = torch.stack([torch.stack([p.double().sum(), p.double().pow(2).sum()]) for p in model.parameters()])
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return bool(torch.equal(high, low))
