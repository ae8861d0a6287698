"""Dense heads: shapes at any input size, every parameter trained, the loss falls, whole torchvision weights load,
the metrics equal hand counts, and encoders without feature maps are refused by name."""

from pathlib import Path

import pytest
import torch

from glovita.configs.model import (
    ModelConfig,
    TimmEncoderConfig,
    TorchvisionEncoderConfig,
    TorchvisionSegmentationEncoderConfig,
    TorchvisionSegmentationHeadConfig,
    UnetHeadConfig,
)
from glovita.configs.peft import FullFinetuningConfig
from glovita.metrics.segmentation import SegmentationMetrics, image_confusion, scores_from_confusion
from glovita.models.factory import build_model
from glovita.models.heads.dense import soft_dice_loss
from glovita.runtime.batch import LABEL_MAP, Batch

UNET = ModelConfig(
    encoder=TimmEncoderConfig(type="test_resnet", pretrained=False),
    head=UnetHeadConfig(decoder_channels=(16, 16, 8, 8, 8)),
)
LRASPP = ModelConfig(
    encoder=TorchvisionSegmentationEncoderConfig(type="lraspp_mobilenet_v3_large"),
    head=TorchvisionSegmentationHeadConfig(),
)


def _batch(labels: torch.Tensor) -> Batch:
    return Batch(torch.zeros(len(labels)), torch.zeros(len(labels)), fields={LABEL_MAP: labels})


@pytest.mark.parametrize("name", ["unet", "lraspp"])
def test_dense_models_give_a_score_per_pixel_at_any_size_and_train_every_parameter(name: str) -> None:
    cfg = {"unet": UNET, "lraspp": LRASPP}[name]
    model = build_model(cfg, FullFinetuningConfig(), 3, 0.0)
    images = torch.randn(2, 3, 30, 38)  # sizes no power of two divides
    logits = model.head.logits(model(images))
    assert logits.shape == (2, 3, 30, 38) and torch.isfinite(logits).all()
    labels = torch.randint(0, 3, (2, 30, 38))
    labels[0, :4] = 255  # ignored
    model.head.loss(model(images), _batch(labels)).backward()
    without = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not without, without


def test_unet_loss_falls_on_a_tiny_problem() -> None:
    torch.manual_seed(0)
    model = build_model(UNET, FullFinetuningConfig(), 2, 0.0)
    images = torch.randn(4, 3, 32, 32)
    labels = (images[:, 0] > 0).long()  # the first channel's sign is the class
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = model.head.loss(model(images), _batch(labels))
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses  # falls steadily: about 0.5x after 30 steps


def test_whole_torchvision_weights_load_into_backbone_and_classifier(tmp_path: Path) -> None:
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large

    source = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=21)
    path = tmp_path / "lraspp.pth"
    torch.save(source.state_dict(), path)
    encoder = TorchvisionSegmentationEncoderConfig(type="lraspp_mobilenet_v3_large", pretrained_path=path,
                                                   pretrained=True)  # fmt: skip
    model = build_model(LRASPP.model_copy(update={"encoder": encoder}), FullFinetuningConfig(), 4, 0.0)
    state = model.state_dict()
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(state[f"encoder.backbone.{key}"], value), key
    assert torch.equal(state["head.decoder.classifier.cbr.0.weight"], source.classifier.cbr[0].weight)
    assert state["head.decoder.classifier.high_classifier.weight"].shape[0] == 4  # resized to the run's classes


def test_pretrained_without_a_file_is_refused() -> None:
    with pytest.raises(ValueError, match="model.encoder.pretrained_path"):
        TorchvisionSegmentationEncoderConfig(type="fcn_resnet50", pretrained=True)


def test_an_encoder_without_feature_maps_is_refused_naming_the_fix() -> None:
    cfg = UNET.model_copy(update={"encoder": TorchvisionEncoderConfig(type="mobilenet_v3_small", pretrained=False)})
    with pytest.raises(ValueError, match="encoder_type timm"):
        build_model(cfg, FullFinetuningConfig(), 2, 0.0)
    with pytest.raises(ValueError, match="torchvision_segmentation"):
        ModelConfig(head=TorchvisionSegmentationHeadConfig())


def test_segmentation_scores_equal_hand_counts() -> None:
    truth = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 1]])
    predicted = torch.tensor([[0, 1, 1, 1], [2, 0, 0, 1]])
    confusion = image_confusion(predicted, truth, 3, 255)
    # class 0: tp 1, fp 1 (truth 2 -> 0), fn 1 (truth 0 -> 1); class 1: tp 3, fp 1, fn 0; class 2: tp 1, fn 1
    assert confusion.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    values = scores_from_confusion(confusion)
    assert values["iou_class_0"] == pytest.approx(1 / 3)
    assert values["iou_class_1"] == pytest.approx(3 / 4)
    assert values["iou_class_2"] == pytest.approx(1 / 2)
    assert values["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert values["dice_class_1"] == pytest.approx(6 / 7)
    assert values["pixel_accuracy"] == pytest.approx(5 / 7)
    metrics = SegmentationMetrics(3, 255, torch.device("cpu"))
    logits = torch.nn.functional.one_hot(predicted, 3).permute(2, 0, 1)[None].float()
    metrics.update(logits, truth[None])
    assert metrics.compute()["miou"] == pytest.approx(values["miou"])
    absent = scores_from_confusion(image_confusion(torch.zeros(4), torch.zeros(4), 3, 255))
    assert absent["miou"] == 1.0 and absent["iou_class_2"] != absent["iou_class_2"]  # NaN: neither true nor predicted


def test_soft_dice_is_zero_for_a_perfect_prediction_and_skips_ignored_pixels() -> None:
    labels = torch.tensor([[[0, 1], [1, 255]]])
    perfect = torch.nn.functional.one_hot(labels.clamp_max(1), 2).permute(0, 3, 1, 2).float() * 100
    perfect[0, :, 1, 1] = torch.tensor([-100.0, 100.0])  # wrong where ignored: must not count
    assert float(soft_dice_loss(perfect, labels, 255, eps=0.0)) == pytest.approx(0.0, abs=1e-6)


def test_masks_go_back_to_the_image_size_through_the_evaluation_crop() -> None:
    """A 30x50 label map through Resize(24) + CenterCrop(24) and back: where the crop saw the image, the map put back
    gives the cropped map again when transformed the same way; the columns the crop cut off are the ignore index."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    from glovita.modalities.images import to_stored_size

    truth = torch.zeros(30, 50, dtype=torch.long)
    truth[5:20, 10:35] = 1
    truth[22:28, 18:30] = 2
    evaluate = v2.Compose([v2.Resize(24), v2.CenterCrop(24)])
    seen = evaluate(tv_tensors.Mask(truth)).as_subclass(torch.Tensor)  # (24, 24): a 24x40 resize, cropped
    scores = torch.nn.functional.one_hot(seen, 3).permute(2, 0, 1).float()
    stored = torch.from_numpy(to_stored_size(scores, (30, 50), 24, 24, outside=255)).long()
    assert stored.shape == (30, 50)
    # 8 of the 40 resized columns are cut on each side: 10 of the 50 stored ones
    assert (stored[:, :10] == 255).all() and (stored[:, -10:] == 255).all() and (stored[:, 10:40] != 255).all()
    again = evaluate(tv_tensors.Mask(stored)).as_subclass(torch.Tensor)
    assert float((again == seen).float().mean()) > 0.95  # resampled twice: edges move by a pixel
    assert float((stored[:, 12:38] == truth[:, 12:38]).float().mean()) > 0.93
