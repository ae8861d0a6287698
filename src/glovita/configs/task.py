"""Task-specific training behaviour: label smoothing, mixup/cutmix, plots."""

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
    plot_confusion_matrix: bool = True
    """Save confusion_matrix.png of the test split in the run directory (classification)."""
