"""The extension's config classes: torch-free, importing only glovita.configs.base and glovita.configs.fields."""

from typing import ClassVar, Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig
from glovita.configs.fields import DatasetFields


class ToySignalsConfig(DatasetFields):
    """Sine waves of random phase and frequency (class 0) against the same raised by 1 (class 1), made in memory."""

    builder: ClassVar[str] = "glovita_toy.data:build_toy_signals"
    spatial_dims: ClassVar[int | None] = 1
    dataset: Literal["toy_signals"] = "toy_signals"
    """Dataset tag."""
    num_classes: int = Field(2, gt=0)
    """Number of classes (2: sine, square)."""
    length: int = Field(32, gt=3)
    """Samples per signal."""
    samples_per_split: int = Field(48, gt=1)
    """Signals per class in the training split (val and test get half as many)."""
    noise: float = Field(0.3, ge=0)
    """Standard deviation of the noise the training transform adds."""


class ToyMlpEncoderConfig(GlovitaConfig):
    """A two-layer perceptron over the whole signal."""

    builder: ClassVar[str] = "glovita_toy.encoder:build_toy_mlp"
    spatial_dims: ClassVar[int | None] = 1
    pools_tokens: ClassVar[bool] = False
    encoder_type: Literal["toy_mlp"] = "toy_mlp"
    """Encoder tag."""
    length: int = Field(32, gt=0)
    """Input length (data.length)."""
    width: int = Field(16, gt=0)
    """Hidden and output width."""


class ToyL1HeadConfig(GlovitaConfig):
    """A linear regressor trained with the L1 loss."""

    builder: ClassVar[str] = "glovita_toy.head:build_toy_l1"
    consumes: ClassVar[Literal["vector", "bag", "frames"]] = "vector"
    head_type: Literal["toy_l1"] = "toy_l1"
    """Head tag."""


class ToyAlternatingStepConfig(GlovitaConfig):
    """Supervised loss on the model, plus n_critic updates of a critic on batches of an extra loader per step."""

    builder: ClassVar[str] = "glovita_toy.step:build_toy_step"
    eval_log_keys: ClassVar[tuple[str, ...]] = ("critic_score",)
    step_type: Literal["toy_alternating"] = "toy_alternating"
    """Step tag."""
    n_critic: int = Field(2, ge=1)
    """Critic updates per model update."""
    critic_lr: float = Field(0.01, gt=0)
    """Learning rate of the critic's SGD."""
