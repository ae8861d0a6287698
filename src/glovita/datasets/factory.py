"""Dataset assembly: config -> train/val/test datasets, class names and the modality of their samples."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch.utils.data import Dataset, Subset

from glovita.configs.augmentation import AugmentationConfig
from glovita.configs.data import (
    ChestXRay14Config,
    Cifar10Config,
    Cifar100Config,
    DataConfig,
    DigitsConfig,
    GenericImageDatasetConfig,
    GenericTimeseriesDatasetConfig,
    GenericVideoDatasetConfig,
    GenericVolumeDatasetConfig,
    PrecomputedFeaturesConfig,
)
from glovita.configs.model import ModelConfig
from glovita.datasets.label_maps import MaskReading
from glovita.datasets.manifest import TargetColumn
from glovita.datasets.splits import kfold_partition, stratified_split, subsample
from glovita.modalities.base import Modality
from glovita.modalities.images import ImageAugmentation, ImageModality

if TYPE_CHECKING:
    from glovita.modalities.video import ClipSampling

_IMAGE_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_SUBSAMPLE_SEED = 0


@dataclass(frozen=True)
class DatasetSplits:
    """The three splits (test may be empty), the class names in index order ([] for regression) and the modality
    that knows how the samples are transformed, sampled, batched and drawn."""

    train: Dataset
    val: Dataset
    test: Dataset | None
    class_names: list[str]
    train_targets: list
    modality: Modality
    feature_dim: int | None = None
    """Feature files only: the dimension of their vectors."""
    description: str = ""
    """Where the samples come from, for error messages."""
    standardization: tuple[torch.Tensor, ...] | None = None
    """Feature files with data.standardize_features: the training split's per-dimension mean and std (D,)."""
    field_classes: dict[str, list[str]] = field(default_factory=dict)
    """A manifest's class columns (named heads' targets): their class names in index order, by field."""

    def train_field_values(self, name: str) -> list | None:
        """A named field's value for every training sample (None where its cell is empty), when the dataset lists
        its samples' fields (a manifest's columns); None when it does not (the field is made per sample)."""
        dataset: Any = self.train
        indices = None
        if isinstance(dataset, Subset):
            dataset, indices = dataset.dataset, list(dataset.indices)
        fields, samples = getattr(dataset, "fields", None), getattr(dataset, "samples", None)
        if not fields or samples is None:
            return None
        kept = [samples[i] for i in indices] if indices is not None else samples
        return [fields.get(path, {}).get(name) for path, _ in kept]


def image_mode(input_channels: int) -> str:
    """PIL mode that gives `input_channels` channels."""
    if input_channels not in _IMAGE_MODES:
        raise ValueError(
            f"model.encoder.input_channels={input_channels}: images can be read as 1 (grayscale), 3 (RGB) or "
            "4 (RGBA) channels. Set --model.encoder.input_channels to one of those."
        )
    return _IMAGE_MODES[input_channels]


def image_modality(augmentation: AugmentationConfig) -> ImageModality:
    """The 2D modality with the dataset's augmentation settings."""
    return ImageModality(ImageAugmentation(**augmentation.model_dump()))


class FractionSubset(Subset):
    """The training samples data.data_fraction keeps; `left_out` indexes the rest of the split (the unlabeled pool of
    a semi-supervised run: never a validation or test sample, never a kept sample)."""

    def __init__(self, dataset: Dataset, indices: list[int], left_out: list[int]) -> None:
        super().__init__(dataset, indices)
        self.left_out = left_out


def left_out(train: Dataset) -> Dataset | None:
    """The training samples data.data_fraction left out (their labels unused), or None when it kept them all."""
    if isinstance(train, FractionSubset) and train.left_out:
        return Subset(train.dataset, train.left_out)
    return None


def _with_fraction(dataset: Dataset, targets: list, fraction: float, stratify: bool) -> tuple[Dataset, list]:
    if fraction >= 1.0:
        return dataset, targets
    keep = subsample(targets, fraction, _SUBSAMPLE_SEED, stratify)
    kept = set(keep)
    rest = [i for i in range(len(targets)) if i not in kept]
    return FractionSubset(dataset, keep, rest), [targets[i] for i in keep]


def _generic_samples(
    cfg: GenericImageDatasetConfig | GenericVolumeDatasetConfig | GenericVideoDatasetConfig,
    folder,
    split_source: str,
    **listing: Any,
):
    """Split membership and labels from splits.json / subfolders and folder names / JSON / CSV (`listing`: the
    suffixes split subfolders list, and whether samples carry labels)."""
    from glovita.datasets.generic_image import collect_generic_samples

    return collect_generic_samples(
        root=cfg.data_root_dir,
        images_dir=folder,
        split_source=split_source,
        splits_file=cfg.splits_file,
        label_source=cfg.label_source,
        labels_file=cfg.labels_file,
        csv_id_column=cfg.csv_id_column,
        csv_label_column=cfg.csv_label_column,
        fold=cfg.fold,
        val_fraction=cfg.val_fraction,
        regression=cfg.task == "Regression",
        num_classes=cfg.num_classes,
        allow_overlaps=cfg.allow_overlapping_splits,
        test_fraction=getattr(cfg, "test_fraction", None),
        **listing,
    )


def head_columns(model: ModelConfig) -> list[TargetColumn]:
    """The manifest columns the named heads (model.heads) read: each head's target_field, parsed as its task's."""
    return [
        TargetColumn(head.target_field, head.task == "Classification", head.num_outputs)
        for head in model.heads.values()
    ]


def _manifest_listing(
    cfg: GenericImageDatasetConfig | GenericVolumeDatasetConfig, columns: Sequence[TargetColumn]
) -> dict[str, Any]:
    """What collect_generic_samples reads from a manifest (data.split_source csv): a label-free run's target
    column (data.csv_target_column) beside the named heads' `columns`."""
    if cfg.csv_target_column is not None:
        columns = [*columns, TargetColumn(cfg.csv_target_column, False, 1, paths=True)]
    return {"manifest_file": cfg.manifest_file, "csv_split_column": cfg.csv_split_column, "columns": columns}


def _build_generic_split_datasets(
    cfg: GenericImageDatasetConfig, mode: str, modality: ImageModality, columns: Sequence[TargetColumn] = ()
) -> DatasetSplits:
    """Splits of a dataset laid out as a generic image dataset (see docs/datasets/DATASET_STRUCTURE.md); with label
    maps (data.masks_dir or data.coco_file), each image's comes along (segmentation needs no label per image); a
    manifest's target `columns` become sample fields."""
    from glovita.datasets.generic_image import GenericImageDataset

    segmentation = cfg.task == "Segmentation"
    labelfree = cfg.task == "LabelFree"
    listing = _manifest_listing(cfg, columns)
    samples = _generic_samples(
        cfg, cfg.images_dir, cfg.split_source, labelled=not (segmentation or labelfree), **listing
    )
    reading, class_names = _label_map_reading(cfg) if segmentation else (None, samples.class_names)
    if not segmentation and cfg.masks_dir is not None:  # annotated segments beside the class labels
        reading, _ = _label_map_reading(cfg, foreground=True)
    target_files = _target_images(cfg, samples) if labelfree else None

    def dataset(items: list) -> GenericImageDataset:
        masks = reading(items) if reading is not None else None
        return GenericImageDataset(items, mode, masks, samples.fields, target_files)

    train = dataset(samples.train)
    stratify = cfg.task == "Classification"
    train_set, targets = _with_fraction(train, train.targets, cfg.data_fraction, stratify=stratify)
    return DatasetSplits(
        train=train_set,
        val=dataset(samples.val),
        test=dataset(samples.test) if samples.test else None,
        class_names=class_names,
        train_targets=targets,
        modality=modality,
        field_classes=samples.column_classes,
    )


def _target_images(cfg: GenericImageDatasetConfig, samples: Any) -> Any:
    """data.task LabelFree: each image's target, named by the manifest's data.csv_target_column or the same
    relative path under data.targets_dir (any image suffix), read with data.num_classes channels."""
    from glovita.datasets.generic_image import IMAGE_SUFFIXES, TargetImages

    paths = _target_paths(cfg, cfg.images_dir, samples, IMAGE_SUFFIXES, "images")
    return TargetImages(paths, "L" if cfg.num_classes == 1 else "RGB")


def _target_volumes(cfg: GenericVolumeDatasetConfig, samples: Any) -> Any:
    """data.task LabelFree: each volume's target, named by the manifest's data.csv_target_column or the same
    relative path under data.targets_dir (any volume suffix), its values mapped from data.target_range to [0, 1]."""
    from glovita.datasets.volumes import TargetVolumes
    from glovita.runtime.volume_files import VOLUME_SUFFIXES

    paths = _target_paths(cfg, cfg.volumes_dir, samples, VOLUME_SUFFIXES, "volumes")
    return TargetVolumes(paths, (float(cfg.target_range[0]), float(cfg.target_range[1])), cfg.num_classes)


def _target_paths(
    cfg: GenericImageDatasetConfig | GenericVolumeDatasetConfig,
    inputs_dir: Path,
    samples: Any,
    suffixes: tuple[str, ...],
    noun: str,
) -> dict[Path, Path]:
    """Each input's target file: its manifest row's data.csv_target_column, or the same relative path under
    data.targets_dir, as stored or with one of `suffixes`."""
    from glovita.datasets.label_maps import mask_path

    items = [*samples.train, *samples.val, *samples.test]
    if cfg.csv_target_column is not None:
        return {path: samples.fields[path][cfg.csv_target_column] for path, _ in items}
    root = cfg.data_root_dir
    target_root = root / str(cfg.targets_dir)
    if not target_root.is_dir():
        raise FileNotFoundError(
            f"data.targets_dir: '{target_root}' does not exist. Put the target {noun} there (same relative paths as "
            f"the {noun}) or point --data.targets_dir at them."
        )
    return {path: mask_path(path, root / inputs_dir, target_root, suffixes) for path, _ in items}


def _label_map_reading(
    cfg: GenericImageDatasetConfig, foreground: bool = False
) -> tuple[Callable[[list], MaskReading], list[str]]:
    """(how a split's label maps are read, the class names) of a segmentation dataset: mask files mirroring the
    images or named by the labels CSV (optionally RGB by a colour table), or a COCO file's segments. `foreground`:
    a classification dataset's annotated segments, binary masks (0 background; 1 or 255 foreground)."""
    from glovita.datasets.coco import load_coco
    from glovita.datasets.label_maps import load_mask_colors, mask_path

    image_root = cfg.data_root_dir / cfg.images_dir
    binary = cfg.subtask == "binary" or foreground
    num_classes = 2 if foreground else cfg.num_classes
    if cfg.coco_file is not None:
        coco = load_coco(cfg.data_root_dir / cfg.coco_file, image_root, cfg.ignore_index)
        if len(coco.class_names) != cfg.num_classes:
            shown = ", ".join(coco.class_names[1:6]) + (", ..." if len(coco.class_names) > 6 else "")
            raise ValueError(
                f"data.num_classes={cfg.num_classes} but COCO file '{coco.file}' has {len(coco.class_names) - 1} "
                f"categories ({shown}) plus the background. Set --data.num_classes {len(coco.class_names)}."
            )
        return (
            lambda items: MaskReading([p for p, _ in items], cfg.num_classes, cfg.ignore_index, binary, coco=coco)
        ), coco.class_names
    mask_root = cfg.data_root_dir / str(cfg.masks_dir)
    if not mask_root.is_dir():
        raise FileNotFoundError(
            f"data.masks_dir: '{mask_root}' does not exist. Put the label maps there (same relative paths as the "
            "images) or point --data.masks_dir at them."
        )
    colors = load_mask_colors(cfg.data_root_dir / cfg.mask_colors_file) if cfg.mask_colors_file else None
    named = _csv_mask_paths(cfg) if cfg.csv_mask_column else None

    def mask_of(path: Path) -> Path:
        if named is None:
            return mask_path(path, image_root, mask_root)
        key = path.relative_to(image_root).as_posix()
        if key not in named:
            raise ValueError(f"data.csv_mask_column={cfg.csv_mask_column!r}: the labels CSV names no mask for "
                             f"'{key}'. Add its row.")  # fmt: skip
        return mask_root / named[key]

    def reading(items: list) -> MaskReading:
        paths = [mask_of(path) for path, _ in items]
        return MaskReading(paths, num_classes, cfg.ignore_index, binary, colors)

    return reading, [str(k) for k in range(cfg.num_classes)]


def _csv_mask_paths(cfg: GenericImageDatasetConfig) -> dict[str, str]:
    """Image id -> mask path (relative to masks_dir) from the labels CSV's data.csv_mask_column."""
    from glovita.datasets.generic_image import labels_from_csv

    path = cfg.data_root_dir / (cfg.labels_file or Path("labels.csv"))
    return {
        key: str(value) for key, value in labels_from_csv(path, cfg.csv_id_column, str(cfg.csv_mask_column)).items()
    }


def check_folds(cfg: DataConfig, folds: Sequence[int]) -> None:
    """Every fold of --folds exists where the data defines folds (a split file's fold keys, a slide folder's
    splits_<k>.csv), checked before the first fold trains: a missing one is named now, not after fold 0."""
    from glovita.datasets.generic_image import split_ids_from_json

    for fold in folds:
        try:
            if isinstance(cfg, GenericImageDatasetConfig | GenericVolumeDatasetConfig | GenericVideoDatasetConfig):
                if cfg.split_source == "splits_json":
                    split_ids_from_json(cfg.data_root_dir / cfg.splits_file, fold)
                elif cfg.split_source == "csv" and fold != 0:
                    raise ValueError("a manifest (data.split_source csv) has one split per row, no folds")
            elif isinstance(cfg, PrecomputedFeaturesConfig) and cfg.splits_dir is not None:
                splits_file = cfg.data_root_dir / cfg.splits_dir / f"splits_{fold}.csv"
                if not splits_file.is_file():
                    raise FileNotFoundError(f"'{splits_file}' does not exist")
        except (ValueError, FileNotFoundError) as err:
            listed = " ".join(str(f) for f in folds)
            raise ValueError(f"--folds {listed}: fold {fold}: {err} (checked before any fold trains).") from err


def _build_slide_datasets(cfg: PrecomputedFeaturesConfig) -> DatasetSplits:
    """One bag per slide file of a CLAM/TRIDENT feature folder (see docs/mil_slides.md)."""
    from glovita.datasets.slide_features import SlideFeatureDataset, read_slide_table
    from glovita.modalities.features import BagModality

    assert cfg.features_dir is not None and cfg.labels_csv is not None  # the config's validator says so
    root = cfg.data_root_dir
    regression = cfg.task == "Regression"
    splits_file = None if cfg.splits_dir is None else root / cfg.splits_dir / f"splits_{cfg.fold}.csv"
    columns = {name: getattr(cfg, name) for name in ("slide_id_column", "case_id_column", "label_column",
                                                     "split_column")}  # fmt: skip
    table = read_slide_table(
        root / cfg.features_dir, root / cfg.labels_csv, columns, splits_file, cfg.class_names, regression,
        cfg.num_classes,
    )  # fmt: skip
    for split in ("train", "val"):
        if not table.splits[split]:
            raise ValueError(f"The {split} split of '{splits_file or root / cfg.labels_csv}' lists no slide.")
    train = SlideFeatureDataset(table.splits["train"], regression, cfg.max_instances)
    targets = train.targets.tolist()
    if cfg.data_fraction < 1.0:
        keep = subsample(targets, cfg.data_fraction, _SUBSAMPLE_SEED, not regression)
        train, targets = train.subset(keep), [targets[i] for i in keep]
    count = sum(len(slides) for slides in table.splits.values())
    return DatasetSplits(
        train=train,
        val=SlideFeatureDataset(table.splits["val"], regression, None),
        test=SlideFeatureDataset(table.splits["test"], regression, None) if table.splits["test"] else None,
        class_names=table.class_names,
        train_targets=targets,
        modality=BagModality(sampled=cfg.max_instances is not None),
        feature_dim=table.feature_dim,
        description=f"'{root / cfg.features_dir}' ({count} slides, features of dim {table.feature_dim})",
    )


def _refuse_shared_feature_files(paths: dict[str, Path]) -> None:
    """Two splits reading one file (the same path, or the same bytes) would train on what they evaluate."""
    from glovita.datasets.precomputed_features import file_fingerprint

    seen: dict[tuple, str] = {}
    for split, path in paths.items():
        if not path.is_file():
            continue  # read_layout names the missing file
        key = file_fingerprint(path)
        if key in seen:
            raise ValueError(
                f"data.{seen[key]}_features_file and data.{split}_features_file are the same features ('{path}'): "
                f"the run would {'train on' if seen[key] == 'train' else 'select'} what it evaluates. Give each split "
                "its own file, or pass --data.allow_overlapping_splits if that is intended."
            )
        seen[key] = split


def _build_feature_datasets(cfg: PrecomputedFeaturesConfig) -> DatasetSplits:
    from glovita.datasets.precomputed_features import PrecomputedFeatureDataset, feature_statistics, read_layout
    from glovita.modalities.features import BagModality, InstanceModality

    if cfg.feature_layout == "slide_folder":
        return _build_slide_datasets(cfg)
    files = {"train": cfg.train_features_file, "val": cfg.val_features_file, "test": cfg.test_features_file}
    paths = {split: cfg.data_root_dir / path for split, path in files.items() if path is not None}
    if not cfg.allow_overlapping_splits:
        _refuse_shared_feature_files(paths)
    layouts = {split: read_layout(path) for split, path in paths.items()}
    train_layout = layouts["train"]
    for split, layout in layouts.items():
        if (layout.kind, layout.feature_dim) != (train_layout.kind, train_layout.feature_dim):
            raise ValueError(
                f"data.{split}_features_file '{paths[split]}' holds {layout.description}, but the training file "
                f"'{paths['train']}' holds {train_layout.description}. All files need the same layout and dim."
            )
    regression = cfg.task == "Regression"
    framewise = cfg.subtask == "framewise"
    datasets = {
        split: PrecomputedFeatureDataset(
            path, layouts[split], regression, cfg.num_classes, cfg.load_into_memory, framewise
        )
        for split, path in paths.items()
    }
    train = datasets["train"]
    targets = train.targets.tolist()
    train_set, targets = _with_fraction(train, targets, cfg.data_fraction, stratify=not (regression or framewise))
    names = [] if regression else [str(i) for i in range(cfg.num_classes)]
    statistics = None
    if cfg.standardize_features:
        statistics = feature_statistics(train, list(train_set.indices) if isinstance(train_set, Subset) else None)
    return DatasetSplits(
        train=train_set,
        val=datasets["val"],
        test=datasets.get("test"),
        class_names=names,
        train_targets=targets,
        modality=BagModality(framewise=framewise) if train_layout.kind == "bags" else InstanceModality(),
        feature_dim=train_layout.feature_dim,
        description=f"'{paths['train']}' ({train_layout.description})",
        standardization=statistics,
    )


def _build_volume_datasets(
    cfg: GenericVolumeDatasetConfig, channels: int | None, columns: Sequence[TargetColumn] = ()
) -> DatasetSplits:
    """Splits of a volume dataset (see docs/datasets/DATASET_STRUCTURE.md); a manifest's target `columns` become
    sample fields."""
    from glovita.datasets.volumes import VolumeDataset
    from glovita.modalities.volumes import VolumeModality

    segmentation = cfg.task == "Segmentation"  # else masks, when given, are annotated segments (binary)
    labelfree = cfg.task == "LabelFree"
    samples = _generic_samples(
        cfg, cfg.volumes_dir, cfg.split_source, labelled=not (segmentation or labelfree),
        **_manifest_listing(cfg, columns),
    )  # fmt: skip
    target_files = _target_volumes(cfg, samples) if labelfree else None
    pad_crop = cfg.shape_mismatch == "pad_crop"
    spacings = None
    if cfg.target_spacing is not None and (cfg.data_root_dir / cfg.spacing_file).is_file():
        import json

        raw = json.loads((cfg.data_root_dir / cfg.spacing_file).read_text())
        folder = cfg.data_root_dir / cfg.volumes_dir
        spacings = {
            str(folder / key): (float(value[0]), float(value[1]), float(value[2])) for key, value in raw.items()
        }

    def dataset(items: list) -> VolumeDataset:
        masks = None
        if cfg.masks_dir is not None:
            from glovita.datasets.label_maps import MaskReading, mask_path
            from glovita.runtime.volume_files import VOLUME_SUFFIXES

            mask_root = cfg.data_root_dir / cfg.masks_dir
            if not mask_root.is_dir():
                raise FileNotFoundError(
                    f"data.masks_dir: '{mask_root}' does not exist. Put the label maps there (same relative paths "
                    "as the volumes) or point --data.masks_dir at them."
                )
            paths = [mask_path(path, cfg.data_root_dir / cfg.volumes_dir, mask_root, VOLUME_SUFFIXES)
                     for path, _ in items]  # fmt: skip
            classes = cfg.num_classes if segmentation else 2
            masks = MaskReading(paths, classes, cfg.ignore_index, cfg.subtask == "binary" or not segmentation)
        return VolumeDataset(
            items, channels, cfg.volume_size, pad_crop, cfg.target_spacing, spacings, masks, samples.fields,
            cfg.cache_dir, target_files,
        )  # fmt: skip

    train = dataset(samples.train)
    stratify = cfg.task == "Classification"
    train_set, targets = _with_fraction(train, train.targets, cfg.data_fraction, stratify=stratify)
    return DatasetSplits(
        train=train_set,
        val=dataset(samples.val),
        test=dataset(samples.test) if samples.test else None,
        class_names=[str(k) for k in range(cfg.num_classes)] if segmentation else samples.class_names,
        train_targets=targets,
        modality=VolumeModality(
            cfg.augmentation.train_policy,
            cfg.augmentation.test_policy,
            tuple(cfg.volume_size),  # type: ignore[arg-type]
            cfg.target_spacing,
        ),
        description=f"volumes under '{cfg.data_root_dir / cfg.volumes_dir}'",
        field_classes=samples.column_classes,
    )


def _clip_sampling(cfg: GenericVideoDatasetConfig) -> "ClipSampling":
    from glovita.modalities.video import ClipSampling

    return ClipSampling(cfg.num_frames, cfg.frame_stride, cfg.clip_sampling, cfg.eval_clips, cfg.short_videos)


def video_modality(cfg: GenericVideoDatasetConfig) -> Modality:
    """The video modality of a video dataset config: clip sampling and frame policies (no file is read)."""
    from glovita.modalities.video import VideoModality

    sampling = _clip_sampling(cfg)
    augmentation = ImageAugmentation(**cfg.augmentation.model_dump())
    return VideoModality(augmentation, sampling, cfg.frame_labels_file is not None)


def _build_video_datasets(cfg: GenericVideoDatasetConfig) -> DatasetSplits:
    """Splits of a video dataset (see docs/video.md): clip labels as the generic image dataset reads them, or
    per-frame labels from data.frame_labels_file."""
    from glovita.datasets.generic_video import VideoDataset, read_frame_labels
    from glovita.datasets.videos import VIDEO_SUFFIXES, import_av

    framewise = cfg.frame_labels_file is not None
    samples = _generic_samples(cfg, cfg.videos_dir, cfg.split_source, suffixes=VIDEO_SUFFIXES, labelled=not framewise)
    parts = {"train": samples.train, "val": samples.val, "test": samples.test}
    if any(path.is_file() for items in parts.values() for path, _ in items):
        import_av()  # before any work: a missing PyAV is named at once
    class_names = samples.class_names
    frame_labels = infos = None
    if framewise:
        assert cfg.frame_labels_file is not None
        paths = [path for items in parts.values() for path, _ in items]
        frame_labels, class_names, infos = read_frame_labels(
            cfg.data_root_dir / cfg.frame_labels_file, cfg.data_root_dir / cfg.videos_dir, paths, cfg.num_classes
        )
    clip_frames = None if framewise else _clip_sampling(cfg).frames_needed
    built = {split: VideoDataset(items, frame_labels, infos, clip_frames, cfg.short_videos)
             for split, items in parts.items()}  # fmt: skip
    train = built["train"]
    stratify = cfg.task != "Regression" and not framewise
    train_set, targets = _with_fraction(train, train.targets, cfg.data_fraction, stratify=stratify)
    count = sum(len(items) for items in parts.values())
    return DatasetSplits(
        train=train_set,
        val=built["val"],
        test=built["test"] if samples.test else None,
        class_names=class_names,
        train_targets=targets,
        modality=video_modality(cfg),
        description=f"{count} videos under '{cfg.data_root_dir / cfg.videos_dir}'"
        + (" with per-frame labels" if framewise else ""),
    )


def _class_order(labels: set[str]) -> list[str]:
    """Class names in index order: numerically when every name is a number ('1' < '2' < '10'), else sorted."""
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def _build_series_datasets(cfg: GenericTimeseriesDatasetConfig) -> DatasetSplits:
    """Splits of a time-series dataset (.ts / .npz files or a set shipped with aeon), see docs/timeseries.md."""
    from glovita.datasets.timeseries import SeriesDataset, aeon_file, read_series_file, to_length
    from glovita.modalities.series import SeriesModality

    regression = cfg.task == "Regression"
    if cfg.aeon_dataset is not None:
        paths = {"train": aeon_file(cfg.aeon_dataset, "train"), "test": aeon_file(cfg.aeon_dataset, "test")}
    else:
        named = {"train": cfg.train_file, "val": cfg.val_file, "test": cfg.test_file}
        paths = {split: cfg.data_root_dir / path for split, path in named.items() if path is not None}
    labels_file = cfg.data_root_dir / cfg.labels_file if cfg.labels_file is not None else None
    files = {split: read_series_file(path, regression, labels_file) for split, path in paths.items()}
    channels = files["train"].series[0].shape[0]
    for split, read in files.items():
        if read.series[0].shape[0] != channels:
            raise ValueError(
                f"'{paths[split]}' holds series of {read.series[0].shape[0]} channel(s) but the training file "
                f"'{paths['train']}' {channels}. All files need the same channels."
            )
    class_names = _series_classes(cfg, files, paths)

    def targets(read: Any) -> torch.Tensor:
        if regression:
            return torch.tensor(read.labels, dtype=torch.float32).reshape(-1, 1)
        if not read.labelled:
            return torch.full((len(read.labels),), -1, dtype=torch.long)
        return torch.tensor([class_names.index(str(v)) for v in read.labels], dtype=torch.long)

    parts = _series_validation({split: (read.series, targets(read), read.names) for split, read in files.items()}, cfg)
    normalization = cfg.normalization
    if normalization == "auto":
        normalization = "per_series" if channels == 1 else "none"
    parts = _normalised_series(parts, normalization)
    length = cfg.series_length or max(values.shape[1] for series, _, _ in parts.values() for values in series)
    built = {
        split: SeriesDataset(to_length(s, length, cfg.length_policy), t, n, files.get(split, files["train"]).labelled)
        for split, (s, t, n) in parts.items()
    }
    train = built["train"]
    train_set, train_targets = _with_fraction(train, train.targets.tolist(), cfg.data_fraction, not regression)
    source = cfg.aeon_dataset or str(paths["train"])
    return DatasetSplits(
        train=train_set,
        val=built["val"],
        test=built.get("test"),
        class_names=class_names,
        train_targets=train_targets,
        modality=SeriesModality(cfg.train_policy, channels, length, normalization, cfg.length_policy == "pad_mask"),
        description=f"{source} ({len(train)} training series of {channels} channel(s), length {length})",
    )


def _series_classes(cfg: GenericTimeseriesDatasetConfig, files: dict[str, Any], paths: dict[str, Path]) -> list[str]:
    """The class names of a series dataset (the training file's declared or found labels; [] for regression),
    checked against data.num_classes and the other files; the training and validation files must be labelled."""
    for split in ("train", "val"):
        if split in files and not files[split].labelled:
            raise ValueError(f"'{paths[split]}' has no labels (@classLabel false, or an .npz without y); the "
                             f"{split} split needs them.")  # fmt: skip
    if cfg.task == "Regression":
        if cfg.num_classes != 1:
            raise ValueError(f"data.num_classes={cfg.num_classes}: time-series regression predicts one target per "
                             "series. Set --data.num_classes 1.")  # fmt: skip
        return []
    declared = files["train"].class_labels
    class_names = list(declared) if declared else _class_order({str(v) for v in files["train"].labels})
    if len(class_names) != cfg.num_classes:
        raise ValueError(
            f"data.num_classes={cfg.num_classes} but '{paths['train']}' has {len(class_names)} classes "
            f"({', '.join(class_names[:20])}). Set --data.num_classes {len(class_names)}."
        )
    for split, read in files.items():
        unknown = sorted({str(v) for v in read.labels} - set(class_names)) if read.labelled else []
        if unknown:
            raise ValueError(f"'{paths[split]}' has labels {unknown[:10]} that the training file lacks "
                             f"(classes: {', '.join(class_names)}).")  # fmt: skip
    return class_names


SeriesParts = dict[str, tuple[list, torch.Tensor, list[str]]]
"""(series, targets, names) per split."""


def _series_validation(parts: SeriesParts, cfg: GenericTimeseriesDatasetConfig) -> SeriesParts:
    """A validation split: the val file's, else fold data.fold of round(1 / data.val_fraction) of train."""
    if "val" in parts:
        if cfg.fold != 0:
            raise ValueError(f"data.fold={cfg.fold} picks a held-out validation fold; with --data.val_file there is "
                             "one validation split. Leave --data.fold at 0.")  # fmt: skip
        return parts
    series, target, names = parts["train"]
    folds = round(1 / cfg.val_fraction)
    if cfg.fold >= folds:
        raise ValueError(f"data.fold={cfg.fold} but data.val_fraction={cfg.val_fraction} makes {folds} folds "
                         f"(0..{folds - 1}). Choose another --data.fold.")  # fmt: skip
    stratify = cfg.task != "Regression"
    keep, held = kfold_partition(target.tolist(), folds, cfg.fold, _SUBSAMPLE_SEED, stratify=stratify)
    return {
        **parts,
        "val": ([series[i] for i in held], target[held], [names[i] for i in held]),
        "train": ([series[i] for i in keep], target[keep], [names[i] for i in keep]),
    }


def _normalised_series(parts: SeriesParts, normalization: str) -> SeriesParts:
    """Every split z-scored per series and channel (per_series) or by the training split's channel statistics."""
    from glovita.datasets.timeseries import channel_statistics, normalise_each

    if normalization == "per_series":
        return {split: (normalise_each(s), t, n) for split, (s, t, n) in parts.items()}
    if normalization == "train_statistics":
        mean, std = channel_statistics(parts["train"][0])
        return {split: ([(v - mean) / std for v in s], t, n) for split, (s, t, n) in parts.items()}
    return parts


def build_datasets(cfg: DataConfig, input_channels: int | None, columns: Sequence[TargetColumn] = ()) -> DatasetSplits:
    """Build the splits of the configured dataset; file and label checks happen here, before training. `columns`:
    the manifest columns named heads read (head_columns), given where their targets are used."""
    images = cfg.spatial_dims == 2  # what the dataset declares: 2D images are read with PIL
    mode = image_mode(input_channels or 3) if images else ""
    if cfg.subtask == "multilabel" and not isinstance(cfg, ChestXRay14Config | PrecomputedFeaturesConfig):
        raise ValueError(
            f"data.subtask='multilabel' is not supported by data.dataset={cfg.dataset!r} (single-label labels). "
            "Use --data.subtask multiclass, or a multilabel dataset such as chestxray14."
        )
    match cfg:
        case GenericImageDatasetConfig():
            return _build_generic_split_datasets(cfg, mode, image_modality(cfg.augmentation), columns)
        case DigitsConfig():
            from glovita.datasets.digits import prepare_digits

            prepare_digits(cfg.data_root_dir)
            layout = GenericImageDatasetConfig(
                data_root_dir=cfg.data_root_dir,
                num_classes=cfg.num_classes,
                fold=cfg.fold,
                data_fraction=cfg.data_fraction,
                split_source="splits_json",
                label_source="folder",
            )
            return _build_generic_split_datasets(layout, mode, image_modality(cfg.augmentation))
        case Cifar10Config() | Cifar100Config():
            from glovita.datasets.cifar import CifarDataset, load_cifar

            official_train = load_cifar(cfg.dataset, cfg.data_root_dir, train=True, download=cfg.download)
            official_test = load_cifar(cfg.dataset, cfg.data_root_dir, train=False, download=cfg.download)
            labels = list(official_train.targets)
            train_idx, val_idx = stratified_split(labels, cfg.val_fraction, _SUBSAMPLE_SEED, stratify=True)
            train = CifarDataset(official_train, train_idx, mode)
            train_set, targets = _with_fraction(train, train.targets, cfg.data_fraction, stratify=True)
            return DatasetSplits(
                train=train_set,
                val=CifarDataset(official_train, val_idx, mode),
                test=CifarDataset(official_test, list(range(len(official_test))), mode),
                class_names=list(official_train.classes),
                train_targets=targets,
                modality=image_modality(cfg.augmentation),
            )
        case ChestXRay14Config():
            from glovita.datasets.chestxray14 import collect_chestxray14
            from glovita.datasets.generic_image import GenericImageDataset

            samples, findings = collect_chestxray14(cfg.data_root_dir, cfg.val_fraction)
            chest_train = GenericImageDataset(samples["train"], mode)
            train_set, targets = _with_fraction(chest_train, chest_train.targets, cfg.data_fraction, stratify=False)
            return DatasetSplits(
                train=train_set,
                val=GenericImageDataset(samples["val"], mode),
                test=GenericImageDataset(samples["test"], mode) if samples["test"] else None,
                class_names=findings,
                train_targets=targets,
                modality=image_modality(cfg.augmentation),
            )
        case PrecomputedFeaturesConfig():
            return _build_feature_datasets(cfg)
        case GenericVolumeDatasetConfig():
            return _build_volume_datasets(cfg, input_channels, columns)
        case GenericTimeseriesDatasetConfig():
            return _build_series_datasets(cfg)
        case GenericVideoDatasetConfig():
            return _build_video_datasets(cfg)
        case _:  # an installed package's dataset: builder(data config, input_channels) -> DatasetSplits
            from glovita.configs.extensions import build_extension

            return cast(DatasetSplits, build_extension(cfg, input_channels))


def sample_ids(dataset: Dataset) -> list[str]:
    """Traceable ids (image paths, or `<dataset>:<split>:<index>`) in dataset order."""
    if isinstance(dataset, Subset):
        base = sample_ids(dataset.dataset)
        return [base[i] for i in dataset.indices]
    if hasattr(dataset, "samples"):
        return [str(path) for path, _ in dataset.samples]
    if hasattr(dataset, "sample_names"):
        return list(dataset.sample_names)
    if hasattr(dataset, "indices") and hasattr(dataset, "base"):
        split = "train" if getattr(dataset.base, "train", False) else "test"
        return [f"{type(dataset.base).__name__.lower()}:{split}:{i}" for i in dataset.indices]
    return [str(i) for i in range(len(dataset))]  # type: ignore[arg-type]
