"""Which parameters train (discriminated by `method`)."""

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from glovita.configs.base import GlovitaConfig, choice


class FullFinetuningConfig(GlovitaConfig):
    """Every parameter trains."""

    adapters: ClassVar[bool] = False
    """Trains adapters that can be merged into plain layers (LoRA, DoRA)."""
    method: Literal["full_finetuning"] = "full_finetuning"
    """PEFT method tag."""


class LinearProbingConfig(GlovitaConfig):
    """Encoder frozen (BatchNorm statistics too); only the head trains."""

    adapters: ClassVar[bool] = False
    """Trains adapters that can be merged into plain layers (LoRA, DoRA)."""
    method: Literal["linear_probing"] = "linear_probing"
    """PEFT method tag."""


class PartialFinetuningConfig(GlovitaConfig):
    """Only the last N depth groups of the encoder train (its blocks or stages, grouped as the family does:
    timm's group matcher, else the block list), plus the head; the earlier layers are frozen, their BatchNorm
    statistics too."""

    adapters: ClassVar[bool] = False
    """Trains adapters that can be merged into plain layers (LoRA, DoRA)."""
    method: Literal["partial_finetuning"] = "partial_finetuning"
    """PEFT method tag."""
    trainable_blocks: int = Field(2, gt=0)
    """How many of the encoder's last depth groups train."""


class BitfitConfig(GlovitaConfig):
    """BitFit: only the encoder's bias terms train (plus the head)."""

    adapters: ClassVar[bool] = False
    """Trains adapters that can be merged into plain layers (LoRA, DoRA)."""
    method: Literal["bitfit"] = "bitfit"
    """PEFT method tag."""


class _LowRankFields(GlovitaConfig):
    """Fields LoRA and DoRA share (Hugging Face peft)."""

    adapters: ClassVar[bool] = True
    """Trains adapters that can be merged into plain layers."""
    rank: int = Field(8, gt=0)
    """Rank r of the low-rank update."""
    alpha: float = Field(16.0, gt=0)
    """Scaling alpha (the update is scaled by alpha / r)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: tuple[str, ...] = ()
    """Module names (or name suffixes) to adapt; empty picks the family default: every Linear layer of the
    encoder's blocks for transformers (attention and MLP), every ungrouped Conv layer after the stem for CNNs."""
    save_merged: bool = True
    """After training, also write checkpoints/best_merged.pt: best.pt's weights with the adapters merged into
    plain layers (loads into the same model with --peft.method full_finetuning, or as a pretrained_path)."""


class LoraConfig(_LowRankFields):
    """LoRA (Hu et al., 2021) adapters on the encoder through Hugging Face peft; the encoder's own weights are
    frozen, the adapters and the head train."""

    method: Literal["lora"] = "lora"
    """PEFT method tag."""


class DoraConfig(_LowRankFields):
    """DoRA (Liu et al., 2024): LoRA with a learned magnitude per output (weight-decomposed), through peft."""

    method: Literal["dora"] = "dora"
    """PEFT method tag."""


PeftConfigMembers = (
    FullFinetuningConfig | LinearProbingConfig | PartialFinetuningConfig | BitfitConfig | LoraConfig | DoraConfig
)
"""The members of PeftConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    PeftConfig = PeftConfigMembers
else:
    PeftConfig = choice(PeftConfigMembers, discriminator="method")
