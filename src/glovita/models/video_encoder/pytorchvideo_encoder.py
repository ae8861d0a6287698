"""PyTorchVideo models (x3d_xs/s/m/l, slow_r50, slowfast is not supported: it takes two pathways) built from
pytorchvideo.models.hub without the hub: no download; weights from a local file only."""

from pathlib import Path

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.video_encoder.clips import adapt_first_conv3d, over_clips
from glovita.models.weights import check_weights_file, load_state_dict_file

_KINETICS_MEAN = (0.45, 0.45, 0.45)
_KINETICS_STD = (0.225, 0.225, 0.225)
PREPROCESSING = {
    "x3d_xs": (160, 182),
    "x3d_s": (160, 182),
    "x3d_m": (224, 256),
    "x3d_l": (312, 356),
    "slow_r50": (224, 256),
    "c2d_r50": (224, 256),
    "i3d_r50": (224, 256),
    "csn_r101": (224, 256),
    "r2plus1d_r50": (224, 256),
}
"""Model -> (crop size, shorter side before the crop) of its Kinetics-400 recipe."""


def _import_hub():  # noqa: ANN202  # the pytorchvideo module
    try:
        import pytorchvideo.models.hub as hub
    except ImportError as err:
        raise ImportError(
            "model.encoder.encoder_type='pytorchvideo' needs the pytorchvideo package, which is not installed. "
            "Install it with `pip install -e '.[pytorchvideo]'`, or use --model.encoder.encoder_type "
            "torchvision_video."
        ) from err
    return hub


class PytorchvideoEncoder(nn.Module):
    """A PyTorchVideo model whose head projection is replaced by identity: clips -> pooled features (B, D)."""

    def __init__(
        self,
        name: str,
        pretrained_file: Path | None,
        input_channels: int,
        model_kwargs: dict[str, int | float | bool | str],
    ) -> None:
        super().__init__()
        if name not in PREPROCESSING:
            raise ValueError(
                f"model.encoder.type={name!r} is not a PyTorchVideo model GloViTa builds. Choose one of "
                f"{', '.join(PREPROCESSING)}."
            )
        hub = _import_hub()
        self.model = getattr(hub, name)(pretrained=False, **model_kwargs)
        if pretrained_file is not None:
            file = check_weights_file(pretrained_file)
            state = load_state_dict_file(file, "model.encoder.pretrained_path")
            try:
                self.model.load_state_dict(state)
            except RuntimeError as err:
                raise ValueError(
                    f"Weights file '{file}' does not fit PyTorchVideo model {name!r} "
                    f"({' '.join(str(err).split())[:300]})."
                ) from err
        head = self.model.blocks[-1]
        self.out_dim = int(head.proj.in_features)
        head.proj = nn.Identity()
        head.activation = None
        if input_channels != 3:
            adapt_first_conv3d(self.model, input_channels, pretrained_file is not None)
        crop, resize = PREPROCESSING[name]
        mean = _KINETICS_MEAN[:1] if input_channels == 1 else _KINETICS_MEAN
        self.preprocessing: Preprocessing = Preprocessing(
            crop, resize, mean, _KINETICS_STD[: len(mean)], "bilinear", None
        )

    def forward_features(self, clips: torch.Tensor) -> torch.Tensor:
        raise ValueError("Unpooled features of PyTorchVideo models are not available; use the pooled output.")

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, C, T, H, W) or (B, K, C, T, H, W) -> features (B, out_dim)."""
        return over_clips(self.model, clips)
