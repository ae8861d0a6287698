"""Generic 3D volume dataset: .npy / .npz / .nii(.gz) / .tif(f) files listed in splits.json, labels from JSON/CSV.

A volume is read as float32 (C, D, H, W) (a 3D array gets one channel; a 4D array is channel-first), then
brought to `volume_size` by centre crop / zero pad or refused, as configured.
Layout: docs/datasets/DATASET_STRUCTURE.md.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from glovita.datasets.label_maps import MaskReading, load_volume_mask
from glovita.datasets.sample_cache import SampleCache
from glovita.runtime.batch import ID, INPUT, LABEL_MAP, TARGET_IMAGE, TARGETS
from glovita.runtime.volume_files import check_volume, nifti_spacing, read_volume


def resample(volume: np.ndarray, spacing: tuple[float, ...], target: tuple[float, ...]) -> np.ndarray:
    """Trilinear resampling of (C, D, H, W) from `spacing` to `target` spacing."""
    shape = tuple(max(1, round(n * s / t)) for n, s, t in zip(volume.shape[1:], spacing, target, strict=True))
    if shape == volume.shape[1:]:
        return volume
    tensor = torch.from_numpy(np.ascontiguousarray(volume))[None].float()
    return torch.nn.functional.interpolate(tensor, size=shape, mode="trilinear", align_corners=False)[0].numpy()


def fit_shape(volume: np.ndarray, size: tuple[int, int, int]) -> np.ndarray:
    """Centre-crop and zero-pad the spatial axes of (C, D, H, W) to `size`."""
    out = np.zeros((volume.shape[0], *size), dtype=volume.dtype)
    src, dst = [slice(None)], [slice(None)]
    for have, want in zip(volume.shape[1:], size, strict=True):
        start_src = max((have - want) // 2, 0)
        start_dst = max((want - have) // 2, 0)
        length = min(have, want)
        src.append(slice(start_src, start_src + length))
        dst.append(slice(start_dst, start_dst + length))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def resample_labels(labels: np.ndarray, spacing: tuple[float, ...], target: tuple[float, ...]) -> np.ndarray:
    """Nearest-neighbour resampling of a label map (D, H, W) to the shape resample() gives its volume."""
    shape = tuple(max(1, round(n * s / t)) for n, s, t in zip(labels.shape, spacing, target, strict=True))
    if shape == labels.shape:
        return labels
    tensor = torch.from_numpy(np.ascontiguousarray(labels))[None, None].float()
    return torch.nn.functional.interpolate(tensor, size=shape, mode="nearest")[0, 0].long().numpy()


@dataclass(frozen=True)
class TargetVolumes:
    """data.task LabelFree: each volume's target volume file, the range (low, high) of target values mapped to
    [0, 1], and the channels every target has (data.num_classes)."""

    of: dict[Path, Path]
    value_range: tuple[float, float]
    channels: int

    def read(self, volume: Path) -> np.ndarray:
        """The target of `volume` as stored, float32 (C, D, H, W) (a 3D array gets one channel)."""
        target = read_volume(self.of[volume]).astype(np.float32, copy=False)
        return target[None] if target.ndim == 3 else target

    def scaled(self, target: np.ndarray) -> np.ndarray:
        """Target values mapped from value_range to [0, 1]."""
        low, high = self.value_range
        return ((target - low) / (high - low)).astype(np.float32, copy=False)

    def check(self, volume: Path, shape: tuple[int, ...], target: np.ndarray | None = None) -> None:
        """The target (read here unless given) has its volume's spatial shape, its channels and values inside
        value_range."""
        target = self.read(volume) if target is None else target
        path = self.of[volume]
        if tuple(target.shape[1:]) != tuple(shape[-3:]):
            raise ValueError(f"Target volume '{path}' has shape {tuple(target.shape[1:])} but its volume '{volume}' "
                             f"has {tuple(shape[-3:])}. Make the target the volume's shape.")  # fmt: skip
        if target.shape[0] != self.channels:
            raise ValueError(f"Target volume '{path}' has {target.shape[0]} channel(s) but data.num_classes="
                             f"{self.channels}. Set --data.num_classes {target.shape[0]}.")  # fmt: skip
        low, high = float(target.min()), float(target.max())
        if low < self.value_range[0] or high > self.value_range[1]:
            raise ValueError(f"Target volume '{path}' holds values {low:g}..{high:g}, outside data.target_range="
                             f"{self.value_range}. Set --data.target_range {low:g} {high:g} (or wider).")  # fmt: skip


class VolumeDataset(Dataset):
    """(volume tensor (C, D, H, W) float32, target) pairs at `size`; `channels` None accepts any count. With label
    maps (`masks`), samples are records {input, targets, label_map (D, H, W), id}: the label map is resampled
    (nearest) and cropped / padded (with background, 0) exactly as its volume."""

    def __init__(
        self,
        samples: Sequence[tuple[Path, object]],
        channels: int | None,
        size: tuple[int, int, int],
        pad_crop: bool,
        target_spacing: tuple[float, float, float] | None = None,
        spacings: dict[str, tuple[float, float, float]] | None = None,
        masks: MaskReading | None = None,
        fields: dict[Path, dict[str, Any]] | None = None,
        cache_dir: Path | None = None,
        targets: TargetVolumes | None = None,
    ) -> None:
        self.samples = list(samples)
        self.masks = masks
        self.target_volumes = targets
        """data.task LabelFree: each volume's target volume, prepared (resampled, cropped / padded) with it."""
        self.fields = fields or {}
        """Further fields per volume path (a manifest's target columns), added to its sample."""
        self._mask_of = {} if masks is None else dict(zip((p for p, _ in self.samples), masks.paths, strict=True))
        self.channels = channels
        self.size: tuple[int, int, int] = (int(size[0]), int(size[1]), int(size[2]))
        self.pad_crop = pad_crop
        self.target_spacing = target_spacing
        self.spacings = spacings or {}
        """Spacing per volume path (from spacing_file), for formats without a header."""
        self.cache: SampleCache | None = None
        """data.cache_dir: each volume as prepared (read, resampled, cropped / padded, with its label map)."""
        if cache_dir is not None:
            mask_settings = None if masks is None else (masks.num_classes, masks.ignore_index, masks.binary)
            settings = f"channels={channels}|size={self.size}|pad_crop={pad_crop}|spacing={target_spacing}|" \
                       f"masks={mask_settings}"  # fmt: skip
            if targets is not None:
                settings += f"|targets={targets.value_range}"
            self.cache = SampleCache(cache_dir, "volumes", settings)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> list:
        return [target for _, target in self.samples]

    def check_file(self, path: Path) -> None:
        """The check before training: the volume is read whole; its label map (read whole) fits its shape."""
        shape = check_volume(path)
        if self.masks is not None:
            self._check_shape(path, shape, self.load_label_map(self._mask_of[path]))
        if self.target_volumes is not None:
            self.target_volumes.check(path, shape)

    def check_inputs(self, path: Path) -> list[Path]:
        """The files the check reads (a changed label map or target volume is checked again)."""
        if self.target_volumes is not None:
            return [path, self.target_volumes.of[path]]
        return [path] if self.masks is None else [path, self._mask_of[path]]

    def load_label_map(self, mask: Path) -> np.ndarray:
        """A label map file as stored (D, H, W), its values checked."""
        assert self.masks is not None
        return load_volume_mask(mask, self.masks)

    def _check_shape(self, path: Path, shape: tuple[int, ...], labels: np.ndarray) -> None:
        if tuple(labels.shape) != tuple(shape):
            raise ValueError(
                f"Mask file '{self._mask_of[path]}' has shape {tuple(labels.shape)} but its volume '{path}' has "
                f"{tuple(shape)}. Make the label map the volume's shape."
            )

    def spacing_of(self, path: Path) -> tuple[float, float, float] | None:
        """The voxel spacing of a volume: its NIfTI header's, else data.spacing_file's."""
        return nifti_spacing(path) or self.spacings.get(str(path))

    def __getitem__(self, index: int) -> Any:
        path, target = self.samples[index]
        volume, labels = self._prepared(path)
        tensor = torch.from_numpy(np.ascontiguousarray(volume))
        value = torch.tensor(target, dtype=torch.float32) if isinstance(target, tuple) else target
        if self.target_volumes is not None:
            assert labels is not None  # the prepared target volume, in [0, 1]
            return {INPUT: tensor, TARGETS: value, TARGET_IMAGE: torch.from_numpy(labels), ID: str(path)}
        if labels is None:
            if not self.fields:
                return tensor, value
            return {INPUT: tensor, TARGETS: value, ID: str(path), **self.fields[path]}
        return {INPUT: tensor, TARGETS: value, LABEL_MAP: torch.from_numpy(labels), ID: str(path),
                **self.fields.get(path, {})}  # fmt: skip

    def _prepared(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """The volume (C, D, H, W) float32 at `size` and its label map (D, H, W) or target volume (C, D, H, W) in
        [0, 1], from the cache when it holds them (data.cache_dir), else read and prepared (and stored there)."""
        if self.cache is None:
            return self._prepare(path)
        files = self.check_inputs(path)
        key = self.cache.key(files, f"file_spacing={self.spacings.get(str(path))}")
        stored = self.cache.load(key)
        if stored is not None:
            return stored["volume"], stored.get("labels")
        volume, labels = self._prepare(path)
        self.cache.store(key, {"volume": volume} if labels is None else {"volume": volume, "labels": labels})
        return volume, labels

    def _prepare(self, path: Path) -> tuple[np.ndarray, np.ndarray | None]:
        """Read, check, resample and crop / pad a volume and its label map or target volume: the deterministic part
        of a sample."""
        volume = read_volume(path).astype(np.float32, copy=False)
        labels = None
        if self.masks is not None:
            labels = self.load_label_map(self._mask_of[path])
            self._check_shape(path, volume.shape[-3:], labels)
        if self.target_volumes is not None:  # prepared as its volume is (trilinear resampling, crop / pad)
            target = self.target_volumes.read(path)
            self.target_volumes.check(path, volume.shape, target)  # also when data.no_check_files skipped the check
            labels = self.target_volumes.scaled(target)
        if volume.ndim == 3:
            volume = volume[None]
        if self.channels is not None and volume.shape[0] != self.channels:
            raise ValueError(
                f"Volume file '{path}' has {volume.shape[0]} channel(s) but model.encoder.input_channels="
                f"{self.channels}. Set --model.encoder.input_channels {volume.shape[0]}."
            )
        if self.target_spacing is not None:
            spacing = self.spacing_of(path)
            if spacing is None:
                raise ValueError(
                    f"data.target_spacing is set but volume '{path}' has no spacing: add it to data.spacing_file "
                    f'(e.g. {{"{path.name}": [1.0, 1.0, 1.0]}}) or unset --data.target_spacing.'
                )
            volume = resample(volume, spacing, self.target_spacing)
            if labels is not None and self.target_volumes is not None:
                labels = resample(labels, spacing, self.target_spacing)
            elif labels is not None:
                labels = resample_labels(labels, spacing, self.target_spacing)
        if volume.shape[1:] != self.size:
            if not self.pad_crop:
                raise ValueError(
                    f"Volume file '{path}' has shape {volume.shape[1:]} but data.volume_size={self.size}. "
                    "Set --data.volume_size, or --data.shape_mismatch pad_crop to centre-crop / zero-pad."
                )
            volume = fit_shape(volume, self.size)
            if labels is not None and self.target_volumes is not None:
                labels = fit_shape(labels, self.size)
            elif labels is not None:
                labels = fit_shape(labels[None], self.size)[0]
        return np.ascontiguousarray(volume), None if labels is None else np.ascontiguousarray(labels)
