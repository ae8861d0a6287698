"""Full fine-tuning: every parameter trains."""

from glovita.models.composite import GlovitaModel


def apply_full_finetuning(model: GlovitaModel) -> GlovitaModel:
    model.requires_grad_(True)
    model.encoder_frozen = False
    return model
