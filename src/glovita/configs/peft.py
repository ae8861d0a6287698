"""Which parameters train (discriminated by `method`)."""

from typing import Literal

from glovita.configs.base import GlovitaConfig, choice


class FullFinetuningConfig(GlovitaConfig):
    """Every parameter trains."""

    method: Literal["full_finetuning"] = "full_finetuning"
    """PEFT method tag."""


class LinearProbingConfig(GlovitaConfig):
    """Encoder frozen (BatchNorm statistics too); only the head trains."""

    method: Literal["linear_probing"] = "linear_probing"
    """PEFT method tag."""


PeftConfig = choice(FullFinetuningConfig, LinearProbingConfig, discriminator="method")
