"""Dataset selection (discriminated by `dataset`) and each dataset's defaults."""

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from glovita.configs.augmentation import ImageAugmentationConfig, VideoAugmentationConfig, VolumeAugmentationConfig
from glovita.configs.base import choice
from glovita.configs.fields import DatasetFields, SubtaskName


class GenericImageDatasetConfig(DatasetFields):
    """Any folder of images with scalar labels: split subfolders or a splits.json, labels from folders/JSON/CSV."""

    dataset: Literal["generic_image_dataset"] = "generic_image_dataset"
    """Dataset tag."""
    data_root_dir: Path
    """Dataset folder holding the images folder, splits.json and label files."""
    num_classes: int = Field(gt=0)
    """Number of classes (classification) or regression outputs; must match the labels found."""
    images_dir: Path = Path("images")
    """Folder of images, relative to data_root_dir; sample ids are paths relative to it."""
    split_source: Literal["splits_json", "subdirs", "csv", "imagefolder"] = "splits_json"
    """Where split membership comes from: a splits file, images/train, images/val, images/test subfolders, a
    manifest CSV (data.manifest_file) listing each image with its split and labels, or imagefolder: torchvision's
    ImageFolder layout (one folder per class under images_dir, no split folders) split at random per class into
    train, val (data.val_fraction, default 0.1) and test (data.test_fraction, default 0.1), the same split every run."""
    splits_file: Path = Path("splits.json")
    """Split file (relative to data_root_dir) used with split_source=splits_json."""
    manifest_file: Path = Path("manifest.csv")
    """split_source csv: a CSV (relative to data_root_dir) with a row per image (its path relative to the CSV, its
    split, its labels), or a folder of train.csv, valid.csv and test.csv."""
    csv_split_column: str = "split"
    """split_source csv: the manifest column naming each row's split (train, val or valid, test)."""
    label_source: Literal["folder", "json", "csv"] = "folder"
    """Where labels come from: each image's parent folder name, a JSON map, or a CSV table (split_source csv: the
    manifest itself)."""
    labels_file: Path | None = None
    """Labels file relative to data_root_dir; unset means labels.json or labels.csv by label_source."""
    csv_id_column: str = "image"
    """CSV column holding the image path relative to images_dir."""
    csv_label_column: str = "label"
    """CSV column holding the label (class name, class index or number)."""
    val_fraction: float | None = Field(None, gt=0, lt=1)
    """When the source has no validation split, hold out this fraction of train (stratified, fixed seed)."""
    test_fraction: float | None = Field(None, gt=0, lt=1)
    """split_source imagefolder: the share of each class held out as the test split (default 0.1)."""
    allow_overlapping_splits: bool = False
    """Accept a sample listed in two splits (or twice in one); by default that stops the run naming the overlaps."""
    masks_dir: Path | None = None
    """Folder of label maps mirroring images_dir (same relative path, .png/.tif; read as class indices, no colour
    conversion), relative to data_root_dir; set for data.task Segmentation."""
    ignore_index: int = Field(255, ge=0)
    """Label-map value that marks pixels without a label: skipped by the loss and the metrics."""
    csv_mask_column: str | None = None
    """With label_source csv: the column naming each image's mask (relative to masks_dir), instead of mirroring
    the images' paths."""
    mask_colors_file: Path | None = None
    """JSON {"#rrggbb": class index} (relative to data_root_dir) that reads RGB masks by colour; without it RGB
    masks are refused."""
    coco_file: Path | None = None
    """COCO instances JSON (relative to data_root_dir) whose polygon / RLE segments give the label maps, instead of
    masks_dir: background 0, then its categories in id order; file_name is relative to images_dir."""
    augmentation: ImageAugmentationConfig = ImageAugmentationConfig(train_policy="default_2d_1", test_policy="default")
    """Augmentation policies and preprocessing overrides."""

    targets_dir: Path | None = None
    """data.task LabelFree: the folder of target images, mirroring images_dir (the same relative path; any image
    format), relative to data_root_dir; each is read at the image's size, with data.num_classes channels."""
    csv_target_column: str | None = None
    """data.task LabelFree with split_source csv: the manifest column naming each row's target file (relative to the
    CSV's folder), instead of data.targets_dir."""

    label_maps: ClassVar[bool] = True
    target_images: ClassVar[bool] = True

    @model_validator(mode="after")
    def _check_masks(self) -> "GenericImageDatasetConfig":
        check_target_fields(self.task, self.targets_dir, self.csv_target_column, self.split_source)
        if self.task == "LabelFree" and self.num_classes not in (1, 3):
            raise ValueError(f"data.num_classes={self.num_classes}: a LabelFree target image has 1 (grayscale) or 3 "
                             "(RGB) channels. Set --data.num_classes 1 or 3.")  # fmt: skip
        if self.coco_file is not None and self.masks_dir is not None:
            raise ValueError("data.coco_file and data.masks_dir are two sources of label maps; set one of them.")
        if self.coco_file is not None and self.task != "Segmentation":
            raise ValueError("data.coco_file paints label maps for --data.task Segmentation; annotated segments of a "
                             "classification dataset come from --data.masks_dir.")  # fmt: skip
        source = self.masks_dir if self.coco_file is None else self.coco_file
        check_label_map_fields(self.task, self.subtask, self.num_classes, source, self.ignore_index, True)
        check_manifest_fields(self.split_source, self.masks_dir or self.coco_file)
        if self.test_fraction is not None and self.split_source != "imagefolder":
            raise ValueError("data.test_fraction splits an ImageFolder layout; it needs --data.split_source "
                             "imagefolder (other layouts name their test split).")  # fmt: skip
        if self.split_source == "imagefolder" and (self.val_fraction or 0.1) + (self.test_fraction or 0.1) >= 1:
            raise ValueError("data.val_fraction + data.test_fraction must leave images to train on (sum below 1).")
        if self.csv_mask_column is not None and (self.label_source != "csv" or self.masks_dir is None):
            raise ValueError("data.csv_mask_column reads mask paths from the labels CSV: it needs "
                             "--data.label_source csv and --data.masks_dir.")  # fmt: skip
        return self


def check_manifest_fields(split_source: str, masks: Path | None) -> None:
    """A manifest (split_source csv) lists images with scalar targets; label maps come from the other layouts."""
    if split_source == "csv" and masks is not None:
        raise ValueError(
            "data.split_source='csv' reads images and their class/number targets from a manifest; label maps "
            "(data.masks_dir, data.coco_file) are read with --data.split_source splits_json or subdirs."
        )


def check_target_fields(task: str, targets_dir: Path | None, target_column: str | None, split_source: str) -> None:
    """data.task LabelFree reads its targets from data.targets_dir or a manifest's data.csv_target_column (one of
    them), and only it does."""
    if target_column is not None and split_source != "csv":
        raise ValueError("data.csv_target_column names a column of the manifest: set --data.split_source csv, or "
                         "give the targets' folder with --data.targets_dir.")  # fmt: skip
    if targets_dir is not None and target_column is not None:
        raise ValueError("data.targets_dir and data.csv_target_column are two sources of target files; set one.")
    if (task == "LabelFree") != (targets_dir is not None or target_column is not None):
        raise ValueError("data.task LabelFree reads its targets from --data.targets_dir (or a manifest's "
                         "--data.csv_target_column), and only it does: set both or neither.")  # fmt: skip


def check_label_map_fields(
    task: str, subtask: str, num_classes: int, masks_dir: Path | None, ignore_index: int, annotated: bool = False
) -> None:
    """The rules of a dataset with label maps (data.masks_dir) that a config can check alone; `annotated`: the
    dataset also takes masks beside class labels (binary foreground segments for saliency-guided training)."""
    if task == "Segmentation" and masks_dir is None:
        raise ValueError(
            "data.task='Segmentation' needs label maps, what a segmenter learns: set --data.masks_dir masks "
            "(or --data.coco_file)."
        )
    annotating = annotated and task == "Classification" and subtask != "multilabel"
    if masks_dir is not None and task != "Segmentation" and not annotating:
        where = "single-label classification" if annotated else "segmentation"
        raise ValueError(
            f"data.masks_dir (or data.coco_file) with data.task={task!r}/{subtask!r}: masks go with {where} "
            "(--data.task Segmentation, or Classification with annotated segments). Unset --data.masks_dir."
        )
    if task == "Segmentation" and subtask == "binary" and num_classes != 2:
        raise ValueError(
            f"data.subtask='binary' segments foreground from background: data.num_classes must be 2, got "
            f"{num_classes}. Set --data.num_classes 2 or use --data.subtask multiclass."
        )
    if task == "Segmentation" and ignore_index < num_classes:
        raise ValueError(
            f"data.ignore_index={ignore_index} is a class index (data.num_classes={num_classes}). Choose a value "
            "outside 0..num_classes-1, e.g. 255."
        )


class GenericVolumeDatasetConfig(DatasetFields):
    """3D volumes (.npy, .npz, .nii/.nii.gz, .tif/.tiff) listed in splits.json, labels from JSON or CSV."""

    dataset: Literal["generic_volume_dataset"] = "generic_volume_dataset"
    """Dataset tag."""
    spatial_dims: ClassVar[int | None] = 3
    """What the samples are: 3D volumes (B, C, D, H, W)."""
    data_root_dir: Path
    """Dataset folder holding the volumes folder, splits.json and the labels file."""
    num_classes: int = Field(gt=0)
    """Number of classes (classification) or regression outputs; must match the labels found."""
    volumes_dir: Path = Path("volumes")
    """Folder of volumes, relative to data_root_dir; sample ids are paths relative to it."""
    split_source: Literal["splits_json", "csv"] = "splits_json"
    """Where split membership comes from: a splits file, or a manifest CSV (data.manifest_file) listing each volume
    with its split and labels."""
    splits_file: Path = Path("splits.json")
    """Split file (train/val/test lists, or numeric fold keys), relative to data_root_dir."""
    manifest_file: Path = Path("manifest.csv")
    """split_source csv: a CSV (relative to data_root_dir) with a row per volume (its path relative to the CSV, its
    split, its labels), or a folder of train.csv, valid.csv and test.csv."""
    csv_split_column: str = "split"
    """split_source csv: the manifest column naming each row's split (train, val or valid, test)."""
    label_source: Literal["json", "csv"] = "json"
    """Labels from a JSON map {id: label} or a CSV table (split_source csv: the manifest itself)."""
    labels_file: Path | None = None
    """Labels file relative to data_root_dir; unset means labels.json or labels.csv by label_source."""
    csv_id_column: str = "volume"
    """CSV column holding the volume path relative to volumes_dir."""
    csv_label_column: str = "label"
    """CSV column holding the label."""
    target_spacing: tuple[float, float, float] | None = None
    """Resample every volume to this voxel spacing (same axis order as the arrays) before pad/crop; the
    spacing comes from the NIfTI header, else from spacing_file. Unset keeps the voxels as stored."""
    spacing_file: Path = Path("spacing.json")
    """JSON {volume id: [s0, s1, s2]} with the spacing of volumes without a header (.npy, .npz, .tif)."""
    volume_size: tuple[int, int, int] = (64, 64, 64)
    """(D, H, W) every volume is brought to: centre crop / zero pad (shape_mismatch pad_crop) or required."""
    shape_mismatch: Literal["error", "pad_crop"] = "pad_crop"
    """Volumes of another shape than volume_size: centre-crop/zero-pad them, or stop naming the file."""
    cache_dir: Path | None = None
    """Keep each volume as prepared (read, resampled, cropped / padded, with its label map) in this folder, reused by
    later epochs and runs (keyed by file path, size, mtime and these settings; augmentation runs after it)."""
    val_fraction: float | None = Field(None, gt=0, lt=1)
    """When splits.json has no validation split, hold out this fraction of train (stratified, fixed seed)."""
    allow_overlapping_splits: bool = False
    """Accept a sample listed in two splits (or twice in one); by default that stops the run naming the overlaps."""
    masks_dir: Path | None = None
    """Folder of label maps mirroring volumes_dir (same relative path; class indices of the volume's shape),
    relative to data_root_dir; set for data.task Segmentation."""
    ignore_index: int = Field(255, ge=0)
    """Label-map value that marks voxels without a label: skipped by the loss and the metrics."""
    augmentation: VolumeAugmentationConfig = VolumeAugmentationConfig()
    """Augmentation policies (3D ones: default_3d, default_3d_1..4, default_nnunet, default_nnunet_DA5)."""
    targets_dir: Path | None = None
    """data.task LabelFree: the folder of target volumes, mirroring volumes_dir (the same relative path; any volume
    format), relative to data_root_dir; each has its volume's shape and data.num_classes channels, and is resampled
    and cropped / padded with it."""
    csv_target_column: str | None = None
    """data.task LabelFree with split_source csv: the manifest column naming each row's target file (relative to the
    CSV's folder), instead of data.targets_dir."""
    target_range: tuple[float, float] = (0.0, 1.0)
    """data.task LabelFree: the values (low, high) of the target volumes, mapped to [0, 1] for the loss and the
    metrics and back for the predicted volumes glovita_infer writes; a target outside it stops the run naming the
    file."""

    label_maps: ClassVar[bool] = True
    target_images: ClassVar[bool] = True

    @model_validator(mode="after")
    def _check_masks(self) -> "GenericVolumeDatasetConfig":
        check_target_fields(self.task, self.targets_dir, self.csv_target_column, self.split_source)
        if self.target_range[1] <= self.target_range[0]:
            raise ValueError(f"data.target_range={self.target_range}: give (low, high) with low < high, e.g. "
                             "--data.target_range 0 1000.")  # fmt: skip
        check_manifest_fields(self.split_source, self.masks_dir)
        check_label_map_fields(self.task, self.subtask, self.num_classes, self.masks_dir, self.ignore_index, True)
        return self


class DigitsConfig(DatasetFields):
    """scikit-learn's bundled 8x8 handwritten digits, written once to disk and read as a generic image dataset."""

    dataset: Literal["digits"] = "digits"
    """Dataset tag."""
    data_root_dir: Path = Path("data/digits")
    """Where the digits are written as PNG files + splits.json on first use."""
    num_classes: int = Field(10, gt=0)
    """Number of classes (the digits have 10)."""
    augmentation: ImageAugmentationConfig = ImageAugmentationConfig(
        train_policy="digits", test_policy="default", image_size=32, resize_size=32
    )
    """Augmentation policies and preprocessing overrides."""


class _CifarFields(DatasetFields):
    """Fields the CIFAR datasets share."""

    data_root_dir: Path = Path("data")
    """Folder that holds (or receives, with download) the extracted CIFAR python files."""
    download: bool = False
    """Download the files into data_root_dir when missing (needs a network)."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """Fraction of the official training set held out for validation (stratified, fixed seed)."""
    augmentation: ImageAugmentationConfig = ImageAugmentationConfig(train_policy="randaugment", test_policy="default")
    """Augmentation policies and preprocessing overrides."""


class Cifar10Config(_CifarFields):
    """CIFAR-10 through torchvision, read from data_root_dir/cifar-10-batches-py."""

    dataset: Literal["cifar10"] = "cifar10"
    """Dataset tag."""
    num_classes: int = Field(10, gt=0)
    """Number of classes (CIFAR-10 has 10)."""


class Cifar100Config(_CifarFields):
    """CIFAR-100 through torchvision, read from data_root_dir/cifar-100-python."""

    dataset: Literal["cifar100"] = "cifar100"
    """Dataset tag."""
    num_classes: int = Field(100, gt=0)
    """Number of classes (CIFAR-100 has 100)."""


class ChestXRay14Config(DatasetFields):
    """NIH ChestX-ray14: 14 findings per image (multilabel), official patient-level train/test lists."""

    dataset: Literal["chestxray14"] = "chestxray14"
    """Dataset tag."""
    data_root_dir: Path = Path("data/ChestXray14")
    """Folder with images/ (all PNGs), Data_Entry_2017.csv, train_val_list.txt and test_list.txt."""
    num_classes: int = Field(14, gt=0)
    """Number of findings (ChestX-ray14 has 14)."""
    subtask: SubtaskName = "multilabel"
    """Each image may show several findings (or none)."""
    val_fraction: float = Field(0.1, gt=0, lt=1)
    """Fraction of the patients of train_val_list.txt held out for validation (fixed seed, no patient in both)."""
    augmentation: ImageAugmentationConfig = ImageAugmentationConfig(
        train_policy="default_2d_2", test_policy="shared_default_2d"
    )
    """Augmentation policies and preprocessing overrides."""


class PrecomputedFeaturesConfig(DatasetFields):
    """Features in HDF5 files (instances, fixed-size bags or variable-size bags), see docs/precomputed_features.md."""

    dataset: Literal["precomputed_features"] = "precomputed_features"
    """Dataset tag."""
    spatial_dims: ClassVar[int | None] = None
    """What the samples are: precomputed feature vectors or bags, no spatial axes."""
    frame_labels: ClassVar[bool] = True
    """data.subtask framewise: bag files whose `frame_labels` (M,) label every instance (the per-frame features
    glovita_extract_features writes for a framewise video run)."""
    data_root_dir: Path = Path(".")
    """Folder that relative feature-file paths are resolved against."""
    num_classes: int = Field(gt=0)
    """Number of classes (classification) or regression outputs; must be set for feature files."""
    feature_layout: Literal["split_files", "slide_folder"] = "split_files"
    """split_files: one HDF5 file per split (instances, fixed-size or variable-size bags); slide_folder: one file
    per slide as CLAM and TRIDENT write them (h5_files/<slide_id>.h5 or pt_files/<slide_id>.pt) with a labels CSV,
    see docs/mil_slides.md."""
    train_features_file: Path | None = None
    """split_files: HDF5 file with the training features and labels."""
    val_features_file: Path | None = None
    """split_files: HDF5 file with the validation features and labels."""
    test_features_file: Path | None = None
    """split_files: HDF5 file with the test features and labels (optional)."""
    allow_overlapping_splits: bool = False
    """split_files: accept one feature file (the same path or bytes) for two splits; by default that stops the run,
    since it would train or select on what it evaluates."""
    features_dir: Path | None = None
    """slide_folder: folder holding h5_files/ or pt_files/ (or the .h5 / .pt files themselves)."""
    labels_csv: Path | None = None
    """slide_folder: CSV with one row per slide (CLAM's dataset CSV): slide id, label and optionally case id."""
    slide_id_column: str = "slide_id"
    """slide_folder: column of labels_csv naming the slide (its file name without suffix)."""
    case_id_column: str = "case_id"
    """slide_folder: column of labels_csv naming the patient/case; slides of one case stay in one split. A CSV
    without it treats every slide as its own case."""
    label_column: str = "label"
    """slide_folder: column of labels_csv holding the label (class name or index; numbers for regression,
    several separated by ';')."""
    class_names: list[str] | None = None
    """slide_folder: the label names in class-index order (CLAM's label_dict); unset: integer labels are indices,
    names are sorted."""
    splits_dir: Path | None = None
    """slide_folder: folder of CLAM-style splits_<fold>.csv files (columns train, val, test listing slide ids);
    data.fold picks the file. Unset: the split comes from labels_csv's split column."""
    split_column: str = "split"
    """slide_folder without splits_dir: column of labels_csv holding train, val or test."""
    max_instances: int | None = Field(None, gt=0)
    """slide_folder: read at most this many instances of a training slide, sampled at random afresh each epoch;
    evaluation always reads every instance."""
    load_into_memory: Literal["auto", "always", "never"] = "auto"
    """Read a whole file into memory (auto: when it fits comfortably) or read rows lazily from disk."""
    standardize_features: bool = False
    """Standardise each feature dimension with the training split's mean and standard deviation; the statistics
    are stored in the run's checkpoints, so glovita_infer and glovita_extract_features apply the same."""
    probe_optimizer: Literal["lbfgs", "configured"] = "lbfgs"
    """Optimizer of a linear classification/regression head on instance features while the --optimizer block is
    left at its defaults: full-batch lbfgs (converges like logistic regression), or the configured one (adamw)."""

    @model_validator(mode="after")
    def _check_layout(self) -> "PrecomputedFeaturesConfig":
        if self.feature_layout == "split_files":
            if self.train_features_file is None or self.val_features_file is None:
                raise ValueError(
                    "feature_layout 'split_files' needs --data.train_features_file and --data.val_features_file "
                    "(or choose --data.feature_layout slide_folder with --data.features_dir and --data.labels_csv)."
                )
            if self.max_instances is not None:
                raise ValueError("data.max_instances samples instances of per-slide files; it needs "
                                 "--data.feature_layout slide_folder.")  # fmt: skip
        elif self.features_dir is None or self.labels_csv is None:
            raise ValueError(
                "feature_layout 'slide_folder' needs --data.features_dir (the folder with h5_files/ or pt_files/) "
                "and --data.labels_csv (slide_id,label[,case_id] per slide)."
            )
        if self.feature_layout == "slide_folder" and self.standardize_features:
            raise ValueError("data.standardize_features reads the whole training split; it is not available for "
                             "slide_folder. Standardise the features when extracting them.")  # fmt: skip
        if self.subtask == "framewise" and self.feature_layout != "split_files":
            raise ValueError("data.subtask='framewise' reads bag files with frame_labels; it needs --data."
                             "feature_layout split_files.")  # fmt: skip
        if self.subtask == "framewise" and self.standardize_features:
            raise ValueError("data.subtask='framewise' does not support data.standardize_features yet. Leave it off.")
        if self.feature_layout == "slide_folder" and self.subtask == "multilabel":
            raise ValueError("slide_folder labels are one class or value per slide; data.subtask='multilabel' "
                             "does not apply.")  # fmt: skip
        return self


class GenericTimeseriesDatasetConfig(DatasetFields):
    """Time series (univariate or multivariate): UCR/UEA .ts files, .npz arrays, or a UCR/UEA set shipped with
    aeon (--data.aeon_dataset GunPoint); see docs/timeseries.md."""

    dataset: Literal["generic_timeseries_dataset"] = "generic_timeseries_dataset"
    """Dataset tag."""
    spatial_dims: ClassVar[int | None] = 1
    """What the samples are: series (B, C, T) with one time axis."""
    data_root_dir: Path = Path(".")
    """Folder that relative train/val/test file paths are resolved against."""
    aeon_dataset: str | None = None
    """A UCR/UEA set shipped inside the installed aeon package (GunPoint, ItalyPowerDemand, ArrowHead, BasicMotions,
    JapaneseVowels, ...): its <name>_TRAIN.ts / <name>_TEST.ts are read from there, nothing is downloaded."""
    train_file: Path | None = None
    """Training cases: a .ts file, an .npz with X (N, C, T) and y (N,), or a folder of CSV files (one series
    each: a row per time step, a column per channel) labelled by data.labels_file."""
    labels_file: Path | None = None
    """Labels of CSV-folder series: a CSV with columns id (file name without .csv) and label."""
    val_file: Path | None = None
    """Validation cases; unset holds data.val_fraction of the training file out (stratified, fold data.fold)."""
    test_file: Path | None = None
    """Test cases (optional)."""
    val_fraction: float = Field(0.2, gt=0, lt=1)
    """Share of the training cases held out for validation when there is no val_file; data.fold picks which of
    the round(1 / val_fraction) folds it is."""
    length_policy: Literal["pad", "pad_mask", "resample"] = "pad"
    """Series of unequal length: zero-pad to series_length (after normalisation); pad_mask also gives the encoder
    a mask of the real time steps (series_cnn then averages over those only); or resample linearly to it."""
    series_length: int | None = Field(None, gt=1)
    """Length every series is brought to; unset = the longest series of any split (a test series longer than
    every training series still fits)."""
    normalization: Literal["auto", "per_series", "train_statistics", "none"] = "auto"
    """Z-normalise each channel of each series on its own (per_series, the UCR convention), with the training
    split's per-channel mean and std, or not at all; auto: per_series for univariate series, none for multivariate
    ones (as UEA sets are used: their channels' levels carry information)."""
    train_policy: Literal["none", "default_series_1", "default_series_2", "default_series_3"] = "default_series_1"
    """Training augmentation, seeded per sample: 1 jitter + scaling, 2 adds magnitude and time warping,
    3 adds window slicing; none disables it."""

    @model_validator(mode="after")
    def _check_source(self) -> "GenericTimeseriesDatasetConfig":
        if (self.aeon_dataset is None) == (self.train_file is None):
            raise ValueError(
                "generic_timeseries_dataset needs exactly one source: --data.aeon_dataset NAME (a set shipped "
                "with aeon) or --data.train_file FILE (.ts or .npz)."
            )
        if self.subtask == "multilabel":
            raise ValueError("generic_timeseries_dataset has one label per series; data.subtask='multilabel' "
                             "does not apply.")  # fmt: skip
        return self


class GenericVideoDatasetConfig(DatasetFields):
    """Videos (.mp4, .avi, .mkv, .mov, .webm decoded with PyAV, or folders of frame images) with a label per video
    (split subfolders or splits.json; labels from folders/JSON/CSV) or per frame (frame_labels_file); see
    docs/video.md."""

    dataset: Literal["generic_video_dataset"] = "generic_video_dataset"
    """Dataset tag."""
    temporal: ClassVar[bool] = True
    """What the samples are: clips of 2D frames (B, C, T, H, W)."""
    frame_labels: ClassVar[bool] = True
    """Per-frame labels with data.frame_labels_file."""
    data_root_dir: Path
    """Dataset folder holding the videos folder, splits.json and label files."""
    num_classes: int = Field(gt=0)
    """Number of classes (classification) or regression outputs; must match the labels found."""
    videos_dir: Path = Path("videos")
    """Folder of videos, relative to data_root_dir; sample ids are paths relative to it (a file, or a folder of
    frames)."""
    split_source: Literal["splits_json", "subdirs"] = "splits_json"
    """Where split membership comes from: a splits file, or videos/train, videos/val, videos/test subfolders (video
    files only; frame folders are listed in splits.json)."""
    splits_file: Path = Path("splits.json")
    """Split file (relative to data_root_dir) used with split_source=splits_json."""
    label_source: Literal["folder", "json", "csv"] = "folder"
    """Where clip labels come from: each video's parent folder name, a JSON map, or a CSV table."""
    labels_file: Path | None = None
    """Labels file relative to data_root_dir; unset means labels.json or labels.csv by label_source."""
    csv_id_column: str = "video"
    """CSV column holding the video path relative to videos_dir."""
    csv_label_column: str = "label"
    """CSV column holding the label (class name, class index or number)."""
    frame_labels_file: Path | None = None
    """Per-frame labels (framewise heads): a CSV of segments video,start_frame,end_frame,label (end inclusive,
    frames counted before frame_stride), or a folder of <video id>.npy arrays of one label per frame. Set, it
    replaces label_source."""
    num_frames: int = Field(8, gt=0)
    """Frames per clip (framewise datasets: frames per training window; evaluation reads whole videos)."""
    frame_stride: int = Field(1, gt=0)
    """Take every frame_stride-th frame."""
    clip_sampling: Literal["random", "uniform"] = "random"
    """random: consecutive frames (every frame_stride-th) from a random start in training, evenly spaced clips in
    evaluation; uniform: num_frames frames spread over the whole video (one random frame per segment in training,
    the middles in evaluation)."""
    eval_clips: int = Field(1, gt=0)
    """Clips per video in evaluation and inference; their features are averaged into one prediction per video."""
    short_videos: Literal["pad", "error"] = "pad"
    """A video with fewer frames than a clip spans: repeat its last frame, or stop naming the file."""
    val_fraction: float | None = Field(None, gt=0, lt=1)
    """When the source has no validation split, hold out this fraction of train (stratified, fixed seed)."""
    allow_overlapping_splits: bool = False
    """Accept a sample listed in two splits (or twice in one); by default that stops the run naming the overlaps."""
    augmentation: VideoAugmentationConfig = VideoAugmentationConfig()
    """Clip policies and frame preprocessing overrides."""

    @model_validator(mode="after")
    def _check_video(self) -> "GenericVideoDatasetConfig":
        if self.subtask == "multilabel":
            raise ValueError("generic_video_dataset has one label per video or frame; data.subtask='multilabel' "
                             "does not apply.")  # fmt: skip
        if self.frame_labels_file is not None and self.task != "Classification":
            raise ValueError("data.frame_labels_file gives class labels per frame; it needs data.task "
                             "Classification.")  # fmt: skip
        if (self.frame_labels_file is not None) != (self.subtask == "framewise"):
            raise ValueError("data.subtask='framewise' and data.frame_labels_file go together: per-frame labels are "
                             "read from that file. Pass both, or neither.")  # fmt: skip
        return self


DataConfigMembers = (
    DigitsConfig
    | GenericImageDatasetConfig
    | GenericVolumeDatasetConfig
    | Cifar10Config
    | Cifar100Config
    | ChestXRay14Config
    | PrecomputedFeaturesConfig
    | GenericTimeseriesDatasetConfig
    | GenericVideoDatasetConfig
)
"""The members of DataConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    DataConfig = DataConfigMembers
else:
    DataConfig = choice(DataConfigMembers, discriminator="dataset")
