"""Metrics via torchmetrics; each task (glovita/tasks/) lists its stable keys."""

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def undefined_classes_reported() -> Iterator[None]:
    """Hide torchmetrics' warnings about a class (or label) without positive or negative samples: GloViTa's
    metric sets report such a class themselves (NaN per class, left out of the macro means, and a warning
    naming it before training) instead of a library traceback line in the run's log."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No (positive|negative) samples", category=UserWarning)
        yield
