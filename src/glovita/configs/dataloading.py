"""Every torch DataLoader setting the runtime uses; unset values are derived at run time."""

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class DataloadingConfig(GlovitaConfig):
    """Batching and worker processes."""

    batch_size: int = Field(64, gt=0)
    """Training batch size."""
    eval_batch_size: int | None = Field(None, gt=0)
    """Validation/test batch size; unset uses batch_size."""
    num_workers: int | None = Field(None, ge=0)
    """Loader worker processes; unset uses min(8, CPU cores)."""
    pin_memory: bool | None = None
    """Pin host memory for faster copies; unset enables it on CUDA."""
    persistent_workers: bool | None = None
    """Keep workers alive between epochs; unset enables it when there are workers."""
    prefetch_factor: int | None = Field(None, gt=0)
    """Batches each worker loads ahead; unset uses 2 when there are workers."""
    drop_last: bool = True
    """Drop the last incomplete training batch (avoids BatchNorm on a batch of one)."""
