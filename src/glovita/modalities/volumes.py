"""3D volumes: (C, D, H, W) arrays -> 3D policies (batchgeneratorsv2), seeded per sample (torch and numpy)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.base import Pipeline, collate_samples
from glovita.runtime.batch import INPUT, LABEL_MAP, TARGET_IMAGE, Batch, Sample, covering_fields
from glovita.runtime.loaders import EpochPlan, SeededSampler


@dataclass(frozen=True)
class ResolvedVolumeAugmentation:
    """3D policies at the volume size every volume is brought to (z-score normalisation per volume)."""

    train_policy: str
    test_policy: str
    volume_size: tuple[int, int, int]
    normalization: str = "zscore per volume and channel"


def _side_by_side(grid: torch.Tensor) -> torch.Tensor:
    """The three orthogonal middle slices of (D, H, W), side by side, one column of zeros apart."""
    d, h, w = grid.shape
    slices = [grid[d // 2], grid[:, h // 2], grid[:, :, w // 2]]
    height = max(s.shape[0] for s in slices)
    return torch.cat([torch.nn.functional.pad(s, (0, 1, 0, height - s.shape[0])) for s in slices], dim=1)


def mid_slices(volume: torch.Tensor) -> np.ndarray:
    """The three orthogonal middle slices of channel 0 of (C, D, H, W), side by side, scaled to [0, 1]."""
    row = _side_by_side(volume[0].float())
    low, high = row.min(), row.max()
    return ((row - low) / (high - low).clamp_min(1e-6)).numpy()


def mid_label_slices(label_map: torch.Tensor) -> np.ndarray:
    """A label map (D, H, W) as mid_slices draws its volume: the same three slices, class indices kept."""
    return _side_by_side(label_map.long()).numpy()


def fit_region(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(source, destination) slices of the centre crop / zero pad that brings spatial shape `have` to `want`
    (glovita.datasets.volumes.fit_shape)."""
    source, destination = [], []
    for n, m in zip(have, want, strict=True):
        start_source, start_destination, length = max((n - m) // 2, 0), max((m - n) // 2, 0), min(n, m)
        source.append(slice(start_source, start_source + length))
        destination.append(slice(start_destination, start_destination + length))
    return tuple(source), tuple(destination)


def joint_volume_transform(policy: Any) -> Any:
    """A 3D policy on a whole sample: the volume and its label map, or its target volume, move together
    (batchgeneratorsv2)."""

    def apply(sample: Sample) -> Sample:
        covering = covering_fields(sample)
        if not covering:
            return {**sample, INPUT: policy(sample[INPUT])}
        if covering == [TARGET_IMAGE]:
            volume, target = policy.joint_target(sample[INPUT], torch.as_tensor(sample[TARGET_IMAGE]))
            return {**sample, INPUT: volume, TARGET_IMAGE: target}
        if covering != [LABEL_MAP]:
            raise ValueError(
                f"3D volume transforms move a {LABEL_MAP} with the volume; {covering} is not supported yet."
            )
        volume, label_map = policy.joint(sample[INPUT], torch.as_tensor(sample[LABEL_MAP]).long())
        return {**sample, INPUT: volume, LABEL_MAP: label_map}

    return apply


class VolumeModality:
    """(volume tensor (C, D, H, W), target) samples at one size; batches (B, C, D, H, W)."""

    name = "volumes"
    spatial_dims: int | None = 3
    flips = True
    sample_noun = "volumes"
    bags = False

    def __init__(
        self,
        train_policy: str,
        test_policy: str,
        volume_size: tuple[int, int, int],
        target_spacing: tuple[float, float, float] | None = None,
    ) -> None:
        self.train_policy = train_policy
        self.test_policy = test_policy
        self.volume_size = volume_size
        self.target_spacing = target_spacing
        """data.target_spacing: volumes were resampled to it before pad/crop (undone for predicted label maps)."""

    def stored_label_map(self, scores: torch.Tensor, source: Path, outside: int, record: dict[str, Any]) -> np.ndarray:
        """The label map (D, H, W) of the volume file `source` from its class scores (K, *volume_size): the centre
        crop / zero pad undone, then the resampling to data.target_spacing (trilinear on the scores); voxels the
        crop left out get `outside`."""
        canvas, covered = self.on_source_grid(scores, source)
        return np.where(covered.numpy(), canvas.argmax(dim=0).numpy(), outside).astype(np.uint8)

    def on_source_grid(self, values: torch.Tensor, source: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (C, *volume_size) on the voxel grid of the volume file `source` (C, *its shape): the centre crop /
        zero pad undone, then the resampling to data.target_spacing (trilinear); and where the model saw the volume
        (bool, its shape; 0 elsewhere in the values)."""
        from glovita.runtime.volume_files import check_volume_header, nifti_spacing

        shape = check_volume_header(source)  # the header's shape: the volume itself need not be read again
        resampled = shape
        if self.target_spacing is not None:
            spacing = nifti_spacing(source)
            if spacing is None:
                raise ValueError(
                    f"'{source}' has no spacing in its file, so its prediction cannot be brought back from "
                    "data.target_spacing. Predict NIfTI volumes, or train without --data.target_spacing."
                )
            resampled = tuple(
                max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, self.target_spacing, strict=True)
            )
        source_region, model_region = fit_region(resampled, self.volume_size)
        canvas = torch.zeros((values.shape[0], *resampled), dtype=torch.float32)
        covered = torch.zeros((1, 1, *resampled), dtype=torch.float32)
        everything = (slice(None),)
        canvas[everything + source_region] = values.float()[everything + model_region]
        covered[(0, 0) + source_region] = 1.0
        if resampled != shape:
            canvas = torch.nn.functional.interpolate(canvas[None], size=shape, mode="trilinear")[0]
            covered = torch.nn.functional.interpolate(covered, size=shape, mode="nearest")
        return canvas, covered[0, 0] > 0

    def save_label_map(self, path: Path, labels: np.ndarray, source: Path) -> Path:
        """`labels` as NIfTI with the source volume's affine and header when it is NIfTI (path + .nii.gz), else as
        .npy; written atomically."""
        return _save_volume(path, labels.astype(np.uint8, copy=False), source)

    def save_predicted_image(
        self, path: Path, values: torch.Tensor, source: Path, value_range: tuple[float, float]
    ) -> Path:
        """A predicted target volume (C, D, H, W) of [0, 1] values, brought to the source volume's own grid (crop /
        pad and resampling undone; voxels the model did not see get data.target_range's low end; an id that names
        no file keeps the model's size), clipped and mapped back to data.target_range, as float32 NIfTI (with the
        source's affine) or .npy; one channel is stored (D, H, W)."""
        values = values.detach().float().clamp(0.0, 1.0).cpu()
        if source.is_file():
            values = self.on_source_grid(values, source)[0]
        low, high = value_range
        volume = (values.numpy() * (high - low) + low).astype(np.float32)
        return _save_volume(path, volume[0] if volume.shape[0] == 1 else volume, source)

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        """The 3D policies at the dataset's volume size (the encoder's 2D preprocessing does not apply)."""
        from glovita.augmentation.policies.shared_3d import build_3d_policy

        train_policy = (record or {}).get("train_policy", self.train_policy)
        test_policy = (record or {}).get("test_policy", self.test_policy)
        resolved = ResolvedVolumeAugmentation(train_policy, test_policy, self.volume_size)
        train, evaluation = (
            build_3d_policy(train_policy, self.volume_size),
            build_3d_policy(test_policy, self.volume_size),
        )
        return Pipeline(
            train,
            evaluation,
            resolved,
            sample_train=joint_volume_transform(train),
            sample_eval=joint_volume_transform(evaluation),
            kind="volumes",
            seed_numpy=True,
            display=mid_slices,
            display_labels=mid_label_slices,
            display_map=lambda values: _side_by_side(values.float()).numpy(),
            display_values=lambda values: _side_by_side(values[0].float()).clamp(0.0, 1.0).numpy(),
            size_text="x".join(map(str, self.volume_size)),
            size_tag="x".join(map(str, self.volume_size)),
        )

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=True)  # each sample's augmentation draws from its own seed

    def collate(self, samples: Any) -> Batch:
        return collate_samples(samples)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return None  # channels_last is a 2D format; 5-D tensors keep the default layout


def _save_volume(path: Path, array: np.ndarray, source: Path) -> Path:
    """`array` as NIfTI with the source volume's affine and header (its data type set to the array's) when the source
    is NIfTI (path + .nii.gz), else as .npy; written atomically."""
    from glovita.runtime.io import atomic_path

    if source.name.lower().endswith((".nii", ".nii.gz")):
        import nibabel

        image: Any = nibabel.load(str(source))
        written = path.with_name(path.name + ".nii.gz")
        header = image.header.copy()
        header.set_data_dtype(array.dtype)
        with atomic_path(written) as tmp:
            nibabel.save(nibabel.Nifti1Image(array, image.affine, header), str(tmp.with_name(tmp.name + ".nii.gz")))
            tmp.with_name(tmp.name + ".nii.gz").rename(tmp)
        return written
    written = path.with_name(path.name + ".npy")
    with atomic_path(written) as tmp, tmp.open("wb") as handle:
        np.save(handle, array)
    return written
