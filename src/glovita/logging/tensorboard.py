"""The `tensorboard` backend: event files in the run directory (`<run>/tensorboard/`), so `tensorboard --logdir
experiments` shows every run: per-epoch scalars (losses, metrics, learning rates), the run's plots as images, the
config as text, and the hyper-parameters with the final test metrics (the HParams tab)."""

import json
from pathlib import Path
from typing import Any

from glovita.logging.base import LoggerContext, flatten, import_backend, numeric


class TensorboardLogger:
    """torch.utils.tensorboard's SummaryWriter (which needs the tensorboard package) on `<run_dir>/tensorboard`."""

    run_id = None
    """TensorBoard has no run ids: a resumed run appends to the same folder."""

    def __init__(self, context: LoggerContext) -> None:
        import_backend("tensorboard", "tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self.folder = context.run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.folder))
        self.hparams: dict[str, Any] = {}
        self.final: dict[str, float] = {}
        self.step = 0

    def log_config(self, config: dict[str, Any], metadata: dict[str, Any]) -> None:
        text = json.dumps({**config, "add_log": metadata}, indent=1)
        self.writer.add_text("config", f"```\n{text}\n```")
        for key, value in {**flatten(config), **flatten(metadata, "add_log.")}.items():
            plain = value if isinstance(value, bool | int | float | str) else str(value)
            self.hparams[key] = plain[:500] if isinstance(plain, str) else plain

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.step = max(self.step, step)
        for key, value in numeric(metrics).items():
            self.writer.add_scalar(key, value, step)
            if key.startswith("test_"):
                self.final[key] = value
        self.writer.flush()

    def log_artifact(self, path: Path) -> None:
        if path.suffix.lower() != ".png":
            return
        import numpy as np
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
        self.writer.add_image(path.stem, pixels, self.step, dataformats="HWC")
        self.writer.flush()

    def finish(self, status: str) -> None:
        if self.final:  # the HParams tab: the settings beside the test metrics, in this run's folder
            self.writer.add_hparams(self.hparams, self.final, run_name=".", global_step=self.step)
        self.writer.add_text("status", status, self.step)
        self.writer.close()
