"""Multi-process training with PyTorch's own engine: torchrun sets RANK/WORLD_SIZE, this module joins the group.

CUDA processes use NCCL, CPU processes gloo. Rank 0 alone writes the run directory, checkpoints and logs.
"""

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: str) -> DistContext:
    """Join the process group torchrun describes (a single process gets the default context)."""
    if not launched_by_torchrun():
        return DistContext()
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank)


def shutdown(ctx: DistContext, together: bool = False) -> None:
    """Leave the process group. `together` (after a run that ended normally) first waits for every rank, so no
    process tears gloo down while another still works (rank 0 writes the last files and plots alone); a rank
    that exited early while its peer was still connected was seen to abort in gloo's teardown (SIGABRT)."""
    if ctx.enabled and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def broadcast(ctx: DistContext, value: Any) -> Any:
    """Rank 0's value on every rank (names derived from the clock must agree)."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def all_reduce_sum(ctx: DistContext, *values: torch.Tensor) -> list[torch.Tensor]:
    """Sums over ranks of scalar tensors (one collective call)."""
    if not ctx.enabled:
        return list(values)
    stacked = torch.stack([v.float().reshape(()) for v in values])
    dist.all_reduce(stacked)
    return list(stacked.unbind())


def all_true(ctx: DistContext, flag: bool) -> bool:
    """True when `flag` holds on every rank (a failed check on one rank stops all of them together)."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())
