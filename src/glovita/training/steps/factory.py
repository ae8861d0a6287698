"""training.step -> the step object the Trainer calls."""

from typing import cast

from glovita.configs.root import RootConfig
from glovita.configs.training import (
    AdversarialStepConfig,
    SaliencyGuidedStepConfig,
    SemiSupervisedStepConfig,
    SupervisedStepConfig,
)
from glovita.training.steps.base import Step, StepFacts


def build_step(cfg: RootConfig, facts: StepFacts) -> Step:
    """The step of `cfg.training.step`, with what it needs from the rest of the config (e.g. task mixing) and from
    the run (`facts`: the model, task, data normalisation, device, step counts, extra training loaders)."""
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
        case SaliencyGuidedStepConfig():
            from glovita.models.saliency import cam_layer_of
            from glovita.training.steps.saliency_guided import SaliencyGuidedStep

            layer = cam_layer_of(facts.model.encoder, step.method, step.target_layer)
            ignore_index = int(getattr(cfg.data, "ignore_index", 255))
            return SaliencyGuidedStep(
                step.method, step.term, step.saliency_weight, layer, ignore_index, step.mask_dilation
            )
        case AdversarialStepConfig():
            from glovita.training.steps.adversarial import AdversarialStep

            if facts.normalization is None:
                raise ValueError(
                    "training.step.step_type='adversarial' attacks in pixel units of [0, 1], which needs 2D images "
                    f"normalised with fixed statistics; the {facts.modality.sample_noun} of {cfg.data.dataset} have "
                    "none. Train on images (or videos of them)."
                )
            return AdversarialStep(step, facts.normalization, facts.epochs, facts.seed)
        case SemiSupervisedStepConfig():
            from glovita.training.steps.semi_supervised import build_semi_supervised_step

            channels = int(getattr(cfg.model.encoder, "input_channels", 3))
            return build_semi_supervised_step(step, facts, cfg.dataloading.batch_size, channels)
        case _:  # an installed package's step: builder(step config, root config, facts) -> Step
            from glovita.configs.extensions import build_extension

            return cast(Step, build_extension(step, cfg, facts))
