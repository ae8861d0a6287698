"""Task-specific training behaviour: label smoothing, mixup/cutmix, class imbalance, plots."""

from pydantic import Field

from glovita.configs.base import GlovitaConfig


class TaskConfig(GlovitaConfig):
    """Loss shaping and evaluation outputs."""

    label_smoothing: float = Field(0.0, ge=0, lt=1)
    """Cross-entropy label smoothing (classification)."""
    mixup_alpha: float = Field(0.0, ge=0)
    """Beta(alpha, alpha) of mixup on training batches; 0 disables it (classification)."""
    cutmix_alpha: float = Field(0.0, ge=0)
    """Beta(alpha, alpha) of cutmix on training batches; 0 disables it (classification)."""
    mix_prob: float = Field(1.0, ge=0, le=1)
    """Probability that a training batch is mixed when mixup or cutmix is on."""
    multilabel_pos_weight: bool = False
    """Multilabel: weight each label's positives by negatives/positives in the training split (BCE pos_weight)."""
    class_weighted_loss: bool = False
    """Single-label classification: weight each class's cross-entropy by N / (K * count) in the training split."""
    class_balanced_sampling: bool = False
    """Classification: draw each epoch's training samples with replacement so every class is equally likely."""
    plot_confusion_matrix: bool = True
    """Save confusion_matrix.png of the test split in the run directory (classification)."""
    plot_reliability_diagram: bool = True
    """Save reliability_diagram.png (calibration of the test predictions) in the run directory (single-label)."""
