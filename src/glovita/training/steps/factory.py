"""training.step -> the step object the Trainer calls."""

from glovita.configs.root import RootConfig
from glovita.configs.training import SupervisedStepConfig
from glovita.training.steps.base import Step


def build_step(cfg: RootConfig) -> Step:
    """The step of `cfg.training.step`, with what it needs from the rest of the config (e.g. task mixing)."""
    step = cfg.training.step
    match step:
        case SupervisedStepConfig():
            from glovita.training.mixing import BatchMixer
            from glovita.training.steps.supervised import SupervisedStep

            task = cfg.task
            mixer = None
            if task.mixup_alpha > 0 or task.cutmix_alpha > 0:
                mixer = BatchMixer(cfg.data.num_classes, task.mixup_alpha, task.cutmix_alpha, task.mix_prob)
            return SupervisedStep(mixer)
        case _:
            raise TypeError(f"No step branch for {type(step).__name__} in glovita/training/steps/factory.py.")
