"""Digits policy: small affine jitter, no flips (a mirrored digit is another symbol)."""

from collections.abc import Callable

from torchvision.transforms import InterpolationMode, v2

from glovita.augmentation.policies.shared_2d import interpolation_mode, to_normalised_tensor
from glovita.augmentation.preprocessing import Preprocessing


def digits(params: Preprocessing) -> v2.Transform:
    """Resize, then rotate up to 10 degrees, shift up to 10 % and scale 0.9-1.1."""
    mode = interpolation_mode(params.interpolation)
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(params.resize_size, interpolation=mode, antialias=True),
            v2.CenterCrop(params.image_size),
            v2.RandomAffine(
                degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), interpolation=InterpolationMode.BILINEAR
            ),
            *to_normalised_tensor(params),
        ]
    )


POLICIES: dict[str, Callable[[Preprocessing], v2.Transform]] = {"digits": digits}
