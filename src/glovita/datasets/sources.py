"""What glovita_infer predicts beside a split: image files, a series file, a folder of videos, read as the run's own
dataset kind reads them (each checks that the run trained on that kind)."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from glovita.configs.data import DataConfig, GenericTimeseriesDatasetConfig, GenericVideoDatasetConfig
from glovita.datasets.factory import build_datasets, image_modality, image_mode, sample_ids
from glovita.datasets.generic_image import GenericImageDataset, Target
from glovita.modalities.base import Modality
from glovita.runtime.progress import print_line
from glovita.tasks.base import Task

UNKNOWN = -1
"""Target of a sample whose true label is not known."""


@dataclass(frozen=True)
class Samples:
    """What to predict: a dataset of (input, target), one id per sample, whether the targets are real, and the
    modality that transforms and batches them."""

    dataset: Dataset
    ids: list[str]
    labelled: bool
    source: str
    modality: Modality


def check_image_run(data: DataConfig) -> None:
    """--image_dir / --image_csv read 2D image files: the run must have trained on them (else the flag that reads
    what it trained on is named)."""
    if data.spatial_dims != 2 or data.temporal or getattr(data, "augmentation", None) is None:
        instead = {
            GenericVideoDatasetConfig: "--video_dir (a folder of videos) or --split",
            GenericTimeseriesDatasetConfig: "--series_file (a .ts or .npz file) or --split",
        }.get(type(data), "--split")
        raise ValueError(
            f"This run trained on {data.dataset}; --image_dir / --image_csv read 2D images. Use {instead}."
        )


def image_file_samples(data: DataConfig, found: list[tuple[Path, Target]], channels: int, source: str) -> Samples:
    """Image files (and their labels, UNKNOWN where there are none) read as the run's 2D dataset reads images."""
    check_image_run(data)
    dataset = GenericImageDataset(found, image_mode(channels))
    labelled = all(target != UNKNOWN for _, target in found)
    modality = image_modality(getattr(data, "augmentation"))  # noqa: B009  # checked above: a 2D dataset has it
    return Samples(dataset, [str(p) for p, _ in found], labelled, source, modality)


def series_file_samples(data: DataConfig, path: Path, recorded: dict[str, Any]) -> Samples:
    """The series of `path` as the run's test split: the run's data config with this file as its test file and
    the series length the run trained at (so normalisation and padding are exactly the training ones)."""
    if not isinstance(data, GenericTimeseriesDatasetConfig):
        raise ValueError(f"This run trained on {data.dataset}; --series_file reads time series. Use --split.")
    if not path.is_file() or path.suffix not in (".ts", ".npz"):
        raise ValueError(f"series_file '{path}' must be an existing .ts or .npz file.")
    update: dict[str, object] = {"test_file": path.resolve(), "series_length": recorded.get("series_length")}
    if data.aeon_dataset is not None:  # the same training cases, named as files (their statistics, their fold)
        from glovita.datasets.timeseries import aeon_file

        update.update(aeon_dataset=None, train_file=aeon_file(data.aeon_dataset, "train"))
    splits = build_datasets(data.model_copy(update=update), None)
    dataset = splits.test
    assert dataset is not None
    labelled = bool(getattr(dataset, "labelled", True))
    return Samples(dataset, sample_ids(dataset), labelled, str(path), splits.modality)


def video_dir_samples(
    data: DataConfig, folder: Path, class_names: list[str], task: Task, on_unreadable: str = "fail"
) -> Samples:
    """The video files under `folder`, sampled into clips as the run's evaluation split is. Every file is opened
    first: unreadable ones are all named (on_unreadable fail), or decoded whole and the bad ones skipped with a
    warning naming them (skip)."""
    from glovita.datasets.factory import video_modality
    from glovita.datasets.generic_video import VideoDataset
    from glovita.datasets.videos import VIDEO_SUFFIXES, check_video, import_av, probe_video

    if not isinstance(data, GenericVideoDatasetConfig):
        raise ValueError(f"This run trained on {data.dataset}; --video_dir reads videos. Use --split.")
    if not folder.is_dir():
        raise NotADirectoryError(f"video_dir '{folder}' is not a folder.")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not paths:
        raise ValueError(f"video_dir '{folder}' holds no video files ({', '.join(VIDEO_SUFFIXES)}).")
    import_av()
    infos, broken = {}, []
    for path in paths:
        try:
            infos[path] = check_video(path) if on_unreadable == "skip" else probe_video(path)
        except (ValueError, OSError) as err:
            broken.append(str(err))
    if broken and on_unreadable == "fail":
        raise ValueError(f"{len(broken)} of {len(paths)} videos of video_dir '{folder}' cannot be read: "
                         f"{'; '.join(broken[:10])}. Remove them, or pass --on_unreadable skip.")  # fmt: skip
    if broken:
        print_line(f"warning: skipped {len(broken)} unreadable video(s): {'; '.join(broken[:20])}")
    paths = [path for path in paths if path in infos]
    if not paths:
        raise ValueError(f"No readable video is left to predict in video_dir '{folder}'.")
    framewise = task.per_frame
    parents = [p.parent.name if p.parent != folder else "" for p in paths]
    labelled = not framewise and task.classifies and all(name in class_names for name in parents)
    found: list[tuple[Path, Target]] = [
        (p, class_names.index(name) if labelled else UNKNOWN) for p, name in zip(paths, parents, strict=True)
    ]
    # framewise runs: no labels here, the frames are predicted, not scored
    frame_labels = {p: np.zeros(info.num_frames, dtype=np.int64) for p, info in infos.items()} if framewise else None
    dataset = VideoDataset(found, frame_labels, infos)
    return Samples(dataset, [str(p) for p in paths], labelled, str(folder), video_modality(data))
