"""GloViTa: typed, reproducible PyTorch training for whole-sample vision prediction."""

import warnings

__version__ = "0.1.0"

# timm's hrnet module calls torch.jit.interface when timm is imported, and torch 2.14 warns about it on every run
# that builds a timm model: nothing a GloViTa user wrote or can change, so it is not shown.
warnings.filterwarnings(
    "ignore", message=r"`torch\.jit\.interface` is deprecated", category=FutureWarning, module=r"torch\.jit\._script"
)
