"""The assembled model: encoder -> head, with the interfaces every component satisfies."""

from collections.abc import Iterator
from typing import Any, Literal, NamedTuple, Protocol, cast

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.runtime.batch import Batch, present


class Encoder(Protocol):
    """inputs (B, C, H, W), (B, C, D, H, W) or features (..., D) -> features (..., out_dim). An nn.Module; the
    module methods the spine calls are listed so the type checker knows them."""

    @property
    def out_dim(self) -> int:
        """Width of the features it returns."""
        ...

    @property
    def preprocessing(self) -> Preprocessing | None:
        """Size and statistics its (pretrained) inputs expect; None where no image preprocessing applies."""
        ...

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor: ...

    def forward_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The unpooled output: tokens (B, N, D) or feature maps (B, D, h, w) / (B, D, d, h, w), for decoders
        and saliency methods."""
        ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def requires_grad_(self, requires_grad: bool = True) -> Any: ...

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, nn.Parameter]]: ...

    def named_modules(self) -> Iterator[tuple[str, nn.Module]]: ...


class Head(Protocol):
    """Pooled features (B, D), or bags (B, N, D) with a mask, -> outputs; owns its loss (reading the batch fields
    it needs by name) and turns outputs into logits (B, K) for metrics and predictions."""

    @property
    def consumes(self) -> Literal["vector", "bag", "frames", "pyramid"]:
        """What the head takes: one pooled vector per sample, a bag of instance features with its mask,
        per-frame features (B, T, D) of clips with their mask of real frames, or the encoder's pyramid (the input,
        then feature maps of increasing reduction) for a class per pixel."""
        ...

    def __call__(self, features: torch.Tensor, *mask: torch.Tensor) -> Any: ...

    def loss(self, outputs: Any, batch: Batch) -> torch.Tensor: ...

    def predict(self, outputs: Any) -> torch.Tensor: ...

    def logits(self, outputs: Any) -> torch.Tensor: ...

    def requires_grad_(self, requires_grad: bool = True) -> Any: ...


def encode(encoder: Encoder, inputs: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The encoder's output for `inputs`; padded series (B, C, T) also hand it their mask of real time steps (B, T)
    when it takes one (`takes_time_mask`). Training, evaluation, glovita_infer and extraction all encode here."""
    if mask is not None and getattr(encoder, "takes_time_mask", False):
        return cast(Any, encoder)(inputs, mask)
    return encoder(inputs)


def frame_features(encoder: Encoder, clips: torch.Tensor) -> torch.Tensor:
    """Per-frame features (B, T, D) of clips (B, C, T, H, W), from an encoder that gives them (framewise_image)."""
    forward_frames = getattr(encoder, "forward_frames", None)
    if forward_frames is None:
        raise ValueError(
            f"A framewise head needs a feature per frame, and {type(encoder).__name__} pools over time. Use "
            "--model.encoder.encoder_type framewise_image."
        )
    return forward_frames(clips)


def pyramid(encoder: Encoder, images: torch.Tensor) -> list[torch.Tensor]:
    """[images, then the encoder's feature maps of increasing reduction], from an encoder that gives them."""
    levels = getattr(encoder, "pyramid", None)
    if levels is None:
        raise ValueError(
            f"A dense head decodes feature maps at several scales, and {type(encoder).__name__} does not give them. "
            "Use --model.encoder.encoder_type timm (a CNN such as resnet18) or torchvision_segmentation."
        )
    return levels(images)


class HeadOutputs(NamedTuple):
    """The outputs of a model with named heads: the main head's, and each named head's by name."""

    main: Any
    named: dict[str, Any]


class GlovitaModel(nn.Module):
    """Encoder followed by a head, and optionally named heads on the same pooled features (each reading its targets
    from its own batch field). A frozen encoder stays in eval mode (BatchNorm statistics unchanged)."""

    encoder: Encoder
    head: Head

    def __init__(self, encoder: Encoder, head: Head, named: dict[str, tuple[Head, str, float]] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        named = named or {}
        self.input_mask: nn.Module | None = None
        """A frozen segmenter that blanks the background of images before the encoder (model.input_mask)."""
        self.heads = nn.ModuleDict({name: cast(nn.Module, head) for name, (head, _, _) in named.items()})
        """The named heads (model.heads)."""
        self.target_fields = {name: field for name, (_, field, _) in named.items()}
        """Each named head's batch field of targets."""
        self.loss_weights = {name: weight for name, (_, _, weight) in named.items()}
        self.encoder_frozen = False
        self.frozen_norms: list[str] = []
        """Names of normalisation layers that stay in eval mode (their statistics are frozen)."""

    @property
    def encoder_module(self) -> nn.Module:
        """The encoder as a module, for tools that walk modules (PEFT, depth groups, parameter groups)."""
        return cast(nn.Module, self.encoder)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> Any:
        """images (B, C, H, W), volumes (B, C, D, H, W) or features (B, D) -> outputs (B, K); bags (B, N, D) with
        their mask (B, N) -> the bag head's structured output; padded series (B, C, T) with their mask of real time
        steps (B, T) go to an encoder that takes it (takes_time_mask)."""
        if self.input_mask is not None:
            inputs = self.input_mask(inputs)
        if self.head.consumes == "bag":
            if mask is None:
                raise ValueError("A bag head needs the batch field 'mask', which this dataset does not provide.")
            return self.head(self.encoder(inputs), mask)
        if self.head.consumes == "pyramid":
            return cast(Any, self.head)(pyramid(self.encoder, inputs))
        if self.head.consumes == "frames":
            if mask is None:
                raise ValueError("A framewise head needs the batch field 'mask' (per-frame labels).")
            return self.head(frame_features(self.encoder, inputs), mask)
        features = encode(self.encoder, inputs, mask)
        if not self.heads:
            return self.head(features)
        return HeadOutputs(self.head(features), {name: head(features) for name, head in self.heads.items()})

    def main_outputs(self, outputs: Any) -> Any:
        """The main head's part of `outputs`."""
        return outputs.main if isinstance(outputs, HeadOutputs) else outputs

    def training_logs(self, outputs: Any, batch: Batch) -> dict[str, torch.Tensor]:
        """What the main head reports about a training batch beyond its loss (a classifier's accuracy on hard
        labels), logged as train_<key> beside the validation metric of the same name."""
        logs = getattr(self.head, "training_logs", None)
        return logs(self.main_outputs(outputs), batch) if logs is not None else {}

    def logits_by_head(self, outputs: Any) -> dict[str, torch.Tensor]:
        """Every head's logits (B, K) by name, '' for the main head."""
        logits = {"": self.head.logits(self.main_outputs(outputs))}
        if isinstance(outputs, HeadOutputs):
            for name, head in self.heads.items():
                logits[name] = cast(Head, head).logits(outputs.named[name])
        return logits

    def named_predictions(self, outputs: Any) -> dict[str, torch.Tensor]:
        """Each named head's probabilities or values (B, K) by name ({} without named heads)."""
        if not isinstance(outputs, HeadOutputs):
            return {}
        return {name: cast(Head, head).predict(outputs.named[name]) for name, head in self.heads.items()}

    def loss_terms(self, outputs: Any, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss to minimise (the main head's plus each named head's, weighted) and each named head's own loss.
        A named head's loss covers the samples that have its target (a negative class or a NaN is missing); a batch
        without any counts 0 for it."""
        loss = self.head.loss(self.main_outputs(outputs), batch)
        if not isinstance(outputs, HeadOutputs):
            return loss, {}
        named = {}
        for name, head in self.heads.items():
            targets = batch.read(self.target_fields[name])
            keep = present(targets)
            own = outputs.named[name]
            if bool(keep.any()):
                named[name] = cast(Head, head).loss(own[keep], batch.with_fields(targets=targets[keep], valid=None))
            else:
                named[name] = own.sum() * 0.0  # keeps the head in the graph (DDP expects every parameter used)
            loss = loss + self.loss_weights[name] * named[name]
        return loss, named

    def train(self, mode: bool = True) -> "GlovitaModel":
        super().train(mode)
        if self.encoder_frozen:
            self.encoder_module.eval()
        for name in self.frozen_norms:
            self.get_submodule(name).eval()
        return self
