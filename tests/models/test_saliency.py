"""Saliency maps: equal to pytorch-grad-cam's, differentiable for training, safe on empty maps, and refused when
too coarse; the saliency-vs-mask terms and agreement measures equal hand-computed values."""

import numpy as np
import pytest
import torch
from torch import nn

from glovita.models.img_encoder.timm_encoder import TimmImgEncoder
from glovita.models.saliency import (
    cam_layer_of,
    cam_term,
    gradient_penalty,
    input_gradients,
    normalised,
    saliency_agreement,
    saliency_maps,
)


class _Classifier(nn.Module):
    """A timm encoder with a linear head, as GlovitaModel holds them (logits out)."""

    def __init__(self, name: str = "test_resnet", **kwargs: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = TimmImgEncoder(name, False, None, 3, dict(kwargs), None)
        self.head = nn.Linear(self.encoder.out_dim, 4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))


@pytest.mark.parametrize(
    ("ours", "theirs"), [("hirescam", "HiResCAM"), ("gradcam", "GradCAM"), ("gradcam++", "GradCAMPlusPlus")]
)
def test_cams_equal_pytorch_grad_cam(ours: str, theirs: str) -> None:
    """The in-house maps (used in training, evaluation and glovita_infer) against the grad-cam package's, on a
    small CNN at its third stage (4x4 on 64x64 images), each scaled to [0, 1] as grad-cam scales them."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _Classifier().eval()
    images = torch.randn(3, 3, 64, 64)
    classes = torch.tensor([0, 2, 3])
    layer = cam_layer_of(model.encoder, ours, "layer3")
    _, maps = saliency_maps(model, images, classes, ours, layer, create_graph=False)  # type: ignore[arg-type]
    maps = maps.detach()
    low = maps.flatten(1).amin(dim=1)[:, None, None]
    scaled = ((maps - low) / ((maps - low).flatten(1).amax(dim=1)[:, None, None] + 1e-7)).numpy()
    cam = getattr(pytorch_grad_cam, theirs)(model=model, target_layers=[model.encoder.model.layer3])
    reference = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    assert reference.shape == scaled.shape == (3, 64, 64)
    assert np.abs(reference - scaled).max() < 2e-3
    assert scaled.std() > 0.05  # the maps show something, so equality is not 0 == 0


@pytest.mark.parametrize("method", ["hirescam", "gradcam", "gradcam++", "input_gradient"])
def test_the_saliency_term_alone_sends_gradient_to_the_weights(method: str) -> None:
    model = _Classifier().train()
    images = torch.randn(4, 3, 32, 32)
    masks = torch.zeros(4, 32, 32)
    masks[:, 8:24, 8:24] = 1
    valid = torch.ones_like(masks)
    classes = torch.tensor([0, 1, 2, 3])
    if method == "input_gradient":
        _, gradients = input_gradients(model, images, create_graph=True)
        term = gradient_penalty(gradients, masks, valid).mean()
    else:
        layer = cam_layer_of(model.encoder, method, "layer2")  # type: ignore[arg-type]
        _, maps = saliency_maps(model, images, classes, method, layer, create_graph=True)  # type: ignore[arg-type]
        term = cam_term(maps, masks, valid, "overlap").mean()
    term.backward()  # once: autograd.grad built the map's own graph
    stem = model.encoder.model.conv1[0].weight.grad
    assert stem is not None and float(stem.abs().sum()) > 0 and bool(torch.isfinite(stem).all())
    assert float(model.head.weight.grad.abs().sum()) > 0


def test_an_all_zero_map_gives_a_finite_term_and_gradient() -> None:
    maps = torch.zeros(2, 8, 8, requires_grad=True)
    masks = torch.zeros(2, 8, 8)
    masks[:, 2:6, 2:6] = 1
    valid = torch.ones_like(masks)
    for term in ("overlap", "soft_iou"):
        value = cam_term(maps, masks, valid, term)
        (grad,) = torch.autograd.grad(value.sum(), maps)
        assert value.tolist() == [1.0, 1.0] and bool(torch.isfinite(grad).all())
    agreement = saliency_agreement(maps.detach(), masks, valid)
    assert bool(torch.isfinite(agreement["saliency_iou"]).all())


def test_terms_and_agreement_equal_hand_counts() -> None:
    """A 4x4 map with saliency 1 on 3 pixels inside a 4-pixel mask and 0.5 on 2 pixels outside it."""
    maps = torch.zeros(1, 4, 4)
    maps[0, 0, 0:3] = 1.0
    maps[0, 3, 2:4] = 0.5
    masks = torch.zeros(1, 4, 4)
    masks[0, 0, 0:4] = 1
    valid = torch.ones_like(masks)
    # overlap: 1 - inside / total = 1 - 3 / 4; soft IoU: 1 - 3 / (4 + 4 - 3)
    assert cam_term(maps, masks, valid, "overlap").item() == pytest.approx(0.25, abs=1e-5)
    assert cam_term(maps, masks, valid, "soft_iou").item() == pytest.approx(1 - 3 / 5, abs=1e-5)
    # thresholded at half the maximum: all 5 salient pixels shown; IoU = 3 / (5 + 4 - 3); the peak is in the mask
    agreement = saliency_agreement(maps, masks, valid)
    assert agreement["saliency_iou"].item() == pytest.approx(3 / 6)
    assert agreement["pointing_game"].item() == 1.0
    valid[0, 3] = 0  # ignored pixels leave both sides
    assert saliency_agreement(maps, masks, valid)["saliency_iou"].item() == pytest.approx(3 / 4)
    gradients = torch.ones(1, 2, 4, 4)
    assert gradient_penalty(gradients, masks, torch.ones_like(masks)).item() == 2 * 12  # 12 outside pixels x 2
    assert normalised(maps).amax().item() == 1.0


def test_a_cam_too_coarse_for_the_image_is_refused_naming_a_finer_layer() -> None:
    model = _Classifier().eval()
    layer = cam_layer_of(model.encoder, "hirescam", None)  # layer4: 1x1 at 32 px
    with pytest.raises(ValueError, match=r"'layer4' is 1x1 on 32x32.*--training.step.target_layer layer2"):
        saliency_maps(model, torch.randn(1, 3, 32, 32), torch.tensor([0]), "hirescam", layer, create_graph=False)
    with pytest.raises(ValueError, match="not a module of timm model 'test_resnet'.*layer1, layer2"):
        cam_layer_of(model.encoder, "hirescam", "layer9")


def test_vit_tokens_are_mapped_on_the_patch_grid() -> None:
    """A ViT's CAM (tokens entering the last block's attention, class token dropped) is 4x4 on 64x64 images with
    16-pixel patches, and not constant over the patches."""
    model = _Classifier("vit_tiny_patch16_224", img_size=64, depth=2).eval()
    layer = cam_layer_of(model.encoder, "hirescam", None)
    assert layer is not None and layer.name == "blocks.1.norm1"
    images = torch.randn(2, 3, 64, 64)
    _, maps = saliency_maps(model, images, torch.tensor([1, 2]), "hirescam", layer, create_graph=False)
    assert maps.shape == (2, 64, 64) and bool(torch.isfinite(maps).all()) and float(maps.sum()) > 0
    # Bilinear upsampling of a 4x4 grid: each 16x16 patch's centre carries its own cell's value.
    centres = maps[:, 8::16, 8::16]
    assert centres.shape == (2, 4, 4) and float(centres.std()) > 0


def test_the_steps_evaluation_logs_can_select_best_pt() -> None:
    from glovita.configs.data import DigitsConfig
    from glovita.configs.training import SaliencyGuidedStepConfig
    from glovita.tasks.factory import build_task
    from glovita.tasks.keys import resolve_best_metric

    task = build_task(DigitsConfig())
    keys = SaliencyGuidedStepConfig.eval_log_keys
    assert resolve_best_metric("saliency_iou", task, step_keys=keys) == ("val_saliency_iou", "max")
    assert resolve_best_metric("val_pointing_game", task, step_keys=keys) == ("val_pointing_game", "max")
    assert resolve_best_metric("saliency_loss", task, step_keys=keys) == ("val_saliency_loss", "min")


def test_masks_grow_by_the_dilation_and_keep_ignored_pixels_out() -> None:
    from glovita.models.saliency import dilated, foreground_masks

    labels = torch.zeros(1, 7, 7, dtype=torch.long)
    labels[0, 3, 3] = 1
    labels[0, 0, :] = 255
    masks, valid = foreground_masks(labels, 255)
    masks = dilated(masks, valid, 1)
    assert masks.sum() == 9 and masks[0, 2:5, 2:5].min() == 1  # the pixel and its 8 neighbours
    labels[0, 1, 1] = 1  # its grown square reaches row 0, which is ignored
    masks, valid = foreground_masks(labels, 255)
    masks = dilated(masks, valid, 1)
    assert masks[0, 0].sum() == 0 and valid[0, 0].sum() == 0
