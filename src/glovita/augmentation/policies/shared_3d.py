"""3D policies for volumes (C, D, H, W): batchgeneratorsv2 transforms, after nnU-Net's data augmentation.

Every policy ends with a per-volume, per-channel z-score (nnU-Net's normalisation for MRI-like data). The
ladder default_3d_1 .. default_3d_4 goes from mirroring only to the full nnU-Net set; default_nnunet is
nnU-Net's own training pipeline (spatial + intensity + mirroring) and default_nnunet_DA5 the stronger
"DA5" variant (more rotation and scaling, elastic deformation, median filter, sharpening, more noise).
"""

import math

import torch


def zscore(volume: torch.Tensor) -> torch.Tensor:
    """Per-channel zero mean, unit variance."""
    flat = volume.flatten(1)
    mean = flat.mean(dim=1).view(-1, 1, 1, 1)
    std = flat.std(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return (volume - mean) / std


class VolumePolicy:
    """z-score, then the batchgeneratorsv2 transforms; called on a volume (C, D, H, W), or on a volume and its label
    map (D, H, W) together (`joint`: batchgeneratorsv2's image= / segmentation=, one draw of the random parameters)."""

    def __init__(self, transforms: list) -> None:
        from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms

        self.pipeline = ComposeTransforms(transforms) if transforms else None

    def __call__(self, volume: torch.Tensor) -> torch.Tensor:
        volume = zscore(volume.float())
        if self.pipeline is not None:
            volume = self.pipeline(image=volume)["image"]
        return volume.contiguous()

    def joint(self, volume: torch.Tensor, label_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        volume = zscore(volume.float())
        if self.pipeline is None:
            return volume.contiguous(), label_map
        out = self.pipeline(image=volume, segmentation=label_map[None].to(torch.int16))
        return out["image"].contiguous(), out["segmentation"][0].long()

    def joint_target(self, volume: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A volume and its target volume (C, D, H, W) (label-free tasks): batchgeneratorsv2's regression_target,
        moved by the spatial transforms as the image is (linear interpolation) and left alone by the intensity ones
        and the z-score."""
        volume = zscore(volume.float())
        if self.pipeline is None:
            return volume.contiguous(), target
        out = self.pipeline(image=volume, regression_target=target.float())
        return out["image"].contiguous(), out["regression_target"].contiguous()


def _compose(transforms: list) -> VolumePolicy:
    return VolumePolicy(transforms)


def _spatial(size: tuple[int, ...], rotation_deg: float, p_rotation: float, p_scaling: float, scaling, elastic: float):
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

    angle = rotation_deg / 360 * 2 * math.pi
    return SpatialTransform(
        patch_size=size,
        patch_center_dist_from_border=0,
        random_crop=False,
        p_elastic_deform=elastic,
        p_rotation=p_rotation,
        rotation=(-angle, angle),
        p_scaling=p_scaling,
        scaling=scaling,
        p_synchronize_scaling_across_axes=1,
        bg_style_seg_sampling=False,
    )


def _intensity(strength: float) -> list:
    """nnU-Net's intensity transforms; `strength` scales their probabilities (1.0 = nnU-Net)."""
    from batchgeneratorsv2.transforms.intensity.brightness import MultiplicativeBrightnessTransform
    from batchgeneratorsv2.transforms.intensity.contrast import BGContrast, ContrastTransform
    from batchgeneratorsv2.transforms.intensity.gamma import GammaTransform
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform
    from batchgeneratorsv2.transforms.spatial.low_resolution import SimulateLowResolutionTransform
    from batchgeneratorsv2.transforms.utils.random import RandomTransform

    def gamma(inverted: bool) -> GammaTransform:
        return GammaTransform(
            gamma=BGContrast((0.7, 1.5)),
            p_invert_image=1 if inverted else 0,
            synchronize_channels=False,
            p_per_channel=1,
            p_retain_stats=1,
        )

    def maybe(transform, p: float):
        return RandomTransform(transform, apply_probability=min(1.0, p * strength))

    return [
        maybe(GaussianNoiseTransform(noise_variance=(0, 0.1), p_per_channel=1, synchronize_channels=True), 0.1),
        maybe(
            GaussianBlurTransform(
                blur_sigma=(0.5, 1.0), synchronize_channels=False, synchronize_axes=False, p_per_channel=0.5
            ),
            0.2,
        ),
        maybe(
            MultiplicativeBrightnessTransform(
                multiplier_range=BGContrast((0.75, 1.25)), synchronize_channels=False, p_per_channel=1
            ),
            0.15,
        ),
        maybe(
            ContrastTransform(
                contrast_range=BGContrast((0.75, 1.25)),
                preserve_range=True,
                synchronize_channels=False,
                p_per_channel=1,
            ),
            0.15,
        ),
        maybe(
            SimulateLowResolutionTransform(
                scale=(0.5, 1),
                synchronize_channels=False,
                synchronize_axes=True,
                ignore_axes=(),
                allowed_channels=None,
                p_per_channel=0.5,
            ),
            0.25,
        ),
        maybe(gamma(inverted=True), 0.1),
        maybe(gamma(inverted=False), 0.3),
    ]


def _mirror():
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform

    return MirrorTransform(allowed_axes=(0, 1, 2))


def build_3d_policy(name: str, size: tuple[int, int, int]) -> VolumePolicy:
    """The transform of a 3D policy for volumes already at `size`."""
    if name == "default_3d":
        return _compose([])
    if name == "default_3d_1":
        return _compose([_mirror()])
    if name == "default_3d_2":
        return _compose([_spatial(size, 15, 0.2, 0.2, (0.85, 1.15), 0.0), _mirror()])
    if name == "default_3d_3":
        return _compose([_spatial(size, 30, 0.2, 0.2, (0.7, 1.4), 0.0), *_intensity(0.5), _mirror()])
    if name in ("default_3d_4", "default_nnunet"):
        return _compose([_spatial(size, 30, 0.2, 0.2, (0.7, 1.4), 0.0), *_intensity(1.0), _mirror()])
    if name == "default_nnunet_DA5":
        from batchgeneratorsv2.transforms.noise.median_filter import MedianFilterTransform
        from batchgeneratorsv2.transforms.noise.sharpen import SharpeningTransform
        from batchgeneratorsv2.transforms.utils.random import RandomTransform

        extra = [
            RandomTransform(MedianFilterTransform(filter_size=(2, 5), p_per_channel=0.5), apply_probability=0.2),
            RandomTransform(SharpeningTransform(strength=(0.1, 1.0), p_per_channel=0.5), apply_probability=0.2),
        ]
        return _compose([_spatial(size, 180, 0.3, 0.3, (0.65, 1.6), 0.2), *_intensity(1.5), *extra, _mirror()])
    raise ValueError(f"No 3D policy named {name!r}.")
