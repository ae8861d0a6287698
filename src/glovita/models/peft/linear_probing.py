"""Linear probing: the encoder is frozen, BatchNorm statistics included; only the head trains."""

from glovita.models.composite import GlovitaModel


def apply_linear_probing(model: GlovitaModel) -> GlovitaModel:
    model.encoder.requires_grad_(False)
    model.head.requires_grad_(True)
    model.encoder_frozen = True
    return model
