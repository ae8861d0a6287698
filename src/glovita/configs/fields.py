"""Config fields shared across a choice, in a module that builds no choice: an extension's config module may import
it (and glovita.configs.base) while GloViTa's own config modules are still being imported."""

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig

TaskName = Literal["Classification", "Regression", "Segmentation", "LabelFree"]
SubtaskName = Literal["multiclass", "binary", "multilabel", "regression", "framewise"]


class DatasetFields(GlovitaConfig):
    """Fields every dataset shares (an extension's dataset config derives from it too)."""

    spatial_dims: ClassVar[int | None] = 2
    """What the samples are: 2D images (B, C, H, W); volume datasets 3, feature files None."""
    temporal: ClassVar[bool] = False
    """The samples have a time axis of frames (videos: clips (B, C, T, H, W) of 2D frames)."""
    frame_labels: ClassVar[bool] = False
    """The dataset can label every frame (data.subtask framewise): videos, and bags of per-frame features."""
    label_maps: ClassVar[bool] = False
    """The dataset can give each sample a label map of class indices over its pixels (data.task Segmentation)."""
    target_images: ClassVar[bool] = False
    """The dataset can give each sample an image to predict from it (data.task LabelFree, data.targets_dir)."""

    num_classes: int = Field(gt=0)
    """Number of classes (classification) or regression outputs; sets the head's output size."""
    task: TaskName = "Classification"
    """What is predicted: Classification, Regression, Segmentation (a class per pixel, from label maps) or LabelFree
    (an image from an image, e.g. one microscopy channel from another; data.num_classes is its channel count)."""
    subtask: SubtaskName = "multiclass"
    """multiclass, binary or multilabel (independent yes/no per class) for Classification; regression for Regression;
    framewise: a class per video frame (generic_video_dataset with data.frame_labels_file)."""
    fold: int = Field(0, ge=0)
    """Cross-validation fold: selects numeric keys of splits.json and names the run directory."""
    data_fraction: float = Field(1.0, gt=0, le=1)
    """Fraction of the training split to use (stratified for classification), e.g. for data-efficiency curves."""
    check_files: bool = True
    """Before the first step, check in parallel that every file of every split exists and its header decodes;
    turn off for very large sets (bad files are then found when they are read)."""

    @model_validator(mode="after")
    def _check_task(self) -> "DatasetFields":
        if self.task == "Regression" and self.subtask != "regression":
            raise ValueError(
                f"data.task='Regression' needs data.subtask='regression', got {self.subtask!r}. "
                "Pass --data.subtask regression."
            )
        if self.task == "Classification" and self.subtask == "regression":
            raise ValueError(
                "data.subtask='regression' needs data.task='Regression'. Pass --data.task Regression "
                "(or choose --data.subtask multiclass)."
            )
        if self.subtask == "framewise" and not self.frame_labels:
            raise ValueError(
                f"data.subtask='framewise' labels video frames; data.dataset={getattr(self, 'dataset', '')!r} has "
                "no frames. Use --data.dataset generic_video_dataset with --data.frame_labels_file, or bags of "
                "per-frame features (precomputed_features)."
            )
        if self.task == "Segmentation":
            if not self.label_maps:
                raise ValueError(
                    f"data.task='Segmentation' needs label maps; data.dataset={getattr(self, 'dataset', '')!r} has "
                    "none. Use --data.dataset generic_image_dataset with --data.masks_dir masks."
                )
            if self.subtask not in ("multiclass", "binary"):
                raise ValueError(
                    f"data.task='Segmentation' with data.subtask={self.subtask!r}: a pixel has one class. Use "
                    "--data.subtask multiclass (or binary for {0, 255} masks)."
                )
            if self.num_classes < 2:
                raise ValueError(
                    f"data.num_classes={self.num_classes}: segmentation counts the background as a class. Set "
                    "--data.num_classes 2 for foreground/background."
                )
        if self.task == "LabelFree" and not self.target_images:
            raise ValueError(
                f"data.task='LabelFree' predicts an image per sample; data.dataset={getattr(self, 'dataset', '')!r} "
                "has none. Use --data.dataset generic_image_dataset with --data.targets_dir targets."
            )
        if self.task == "Classification" and self.subtask != "multilabel" and self.num_classes < 2:
            raise ValueError(
                f"data.num_classes={self.num_classes} but classification needs at least 2 classes. "
                "Set --data.num_classes, or use --data.task Regression --data.subtask regression."
            )
        return self
