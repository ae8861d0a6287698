"""Encoders, aggregation, heads and PEFT: shapes, gradients, freezing, local weights, clear errors."""

from pathlib import Path

import pytest
import torch

from glovita.configs.model import (
    ClassificationHeadConfig,
    Dinov2EncoderConfig,
    Dinov3EncoderConfig,
    ModelConfig,
    PatchtstEncoderConfig,
    RegressionHeadConfig,
    ResidualEncoderConfig,
    SeriesCnnEncoderConfig,
    TimmEncoderConfig,
    TorchvisionEncoderConfig,
    TransformerEncoderConfig,
)
from glovita.configs.peft import FullFinetuningConfig, LinearProbingConfig
from glovita.models.aggregation import aggregate
from glovita.models.factory import build_encoder, build_model
from tests.conftest import labels_batch

TINY_VIT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
ENCODERS = {
    "timm": TimmEncoderConfig(type="test_resnet", pretrained=False),
    "torchvision": TorchvisionEncoderConfig(type="mobilenet_v3_small", pretrained=False),
    "transformer": TransformerEncoderConfig(
        type="vit", pretrained=False, model_kwargs={**TINY_VIT, "image_size": 32, "patch_size": 8}
    ),
    "dinov2": Dinov2EncoderConfig(type="vit_small_patch14_reg4_dinov2", pretrained=False, image_size=28,
                                  model_kwargs={"depth": 2}),
    "dinov3": Dinov3EncoderConfig(type="vit_small_patch16_dinov3", pretrained=False, image_size=32,
                                  model_kwargs={"depth": 2}),
    "residual_encoder": ResidualEncoderConfig(features_per_stage=(8, 16), blocks_per_stage=(1, 1), strides=(1, 2)),
    "series_cnn": SeriesCnnEncoderConfig(type="fcn", input_channels=3),
    "patchtst": PatchtstEncoderConfig(input_channels=3, context_length=32, patch_length=8, patch_stride=8, d_model=16,
                                      num_attention_heads=2, num_hidden_layers=1, ffn_dim=32),
}  # fmt: skip
IMAGE_SIZE = {"dinov2": 28}
"""Input size per family where 32 does not fit (patch 14)."""


def _inputs(encoder_tag: str, batch: int) -> torch.Tensor:
    """Images (B, 3, 32, 32), or series (B, 3, 32) for the time-series family."""
    size = IMAGE_SIZE.get(encoder_tag, 32)
    if ENCODERS[encoder_tag].spatial_dims == 1:
        return torch.randn(batch, 3, size)
    return torch.randn(batch, 3, size, size)


HEADS = {
    "classification": (ClassificationHeadConfig(hidden_dim=16), torch.tensor([0, 1, 2, 1])),
    "regression": (RegressionHeadConfig(), torch.randn(4, 3)),
}


@pytest.mark.parametrize("encoder_tag", sorted(ENCODERS))
@pytest.mark.parametrize("head_tag", sorted(HEADS))
def test_every_encoder_and_head_trains(encoder_tag: str, head_tag: str) -> None:
    head_cfg, targets = HEADS[head_tag]
    model = build_model(ModelConfig(encoder=ENCODERS[encoder_tag], head=head_cfg), FullFinetuningConfig(), 3, 0.0)
    outputs = model(_inputs(encoder_tag, 4))
    assert outputs.shape == (4, 3) and torch.isfinite(outputs).all()
    loss = model.head.loss(outputs, labels_batch(targets))
    loss.backward()
    without_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert without_grad == []


@pytest.mark.parametrize("encoder_tag", sorted(ENCODERS))
def test_every_encoder_gives_its_unpooled_features(encoder_tag: str) -> None:
    """forward_features: tokens (B, N, D) or maps (B, D, h, w) that carry gradients, and (where the family pools
    tokens) the avg aggregation of forward() is exactly the patch-token mean of those features."""
    images = _inputs(encoder_tag, 2)
    encoder = build_encoder(ModelConfig(encoder=ENCODERS[encoder_tag]))
    features = encoder.forward_features(images)
    assert features.shape[0] == 2 and features.ndim in (3, 4) and torch.isfinite(features).all()
    features.float().pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    if not ENCODERS[encoder_tag].pools_tokens:  # torchvision: pooled vectors only, no aggregation methods
        return
    pooled = build_encoder(ModelConfig(encoder=ENCODERS[encoder_tag], feature_aggregation_method="avg")).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        expected = aggregate(pooled.forward_features(images), "avg", getattr(pooled, "num_prefix_tokens", 0),
                             pooled.out_dim)  # fmt: skip
        torch.testing.assert_close(pooled(images), expected)


def test_every_encoder_union_member_has_a_test_instance() -> None:
    from glovita.cli.argv import find_union_fields
    from glovita.configs.root import RootConfig

    tags = {u.path: set(u.subcommands) for u in find_union_fields(RootConfig)}
    # precomputed (identity) and the bag heads abmil/clam are exercised in tests/models/test_mil_heads.py and
    # tests/training/test_features_training.py; primus (3D only) in tests/models/test_model_zoo.py; the video
    # encoders and framewise_decoder_1d in tests/datasets/test_video.py and the video runs of
    # tests/inference/test_modality_consistency.py; the dense heads and torchvision_segmentation in
    # tests/segmentation/test_dense_models.py.
    video = {"torchvision_video", "pytorchvideo", "framewise_image"}
    assert tags["model.encoder"] == set(ENCODERS) | {"precomputed", "primus", "torchvision_segmentation"} | video
    dense = {"unet", "torchvision_segmentation"}
    assert tags["model.head"] == set(HEADS) | {"abmil", "clam", "framewise_decoder_1d"} | dense


@pytest.mark.parametrize(
    ("method", "shape"),
    [("cls_token", (2, 8)), ("avg", (2, 8)), ("sum", (2, 8)), ("mean_all", (2, 8)), ("joint", (2, 16))],
)
def test_aggregation_on_tokens(method: str, shape: tuple[int, int]) -> None:
    tokens = torch.arange(2 * 5 * 8, dtype=torch.float32).reshape(2, 5, 8)
    pooled = aggregate(tokens, method, num_prefix_tokens=1, dim=8)
    assert pooled.shape == shape
    expected = {
        "cls_token": tokens[:, 0],
        "avg": tokens[:, 1:].mean(1),
        "sum": tokens[:, 1:].sum(1),
        "mean_all": tokens.mean(1),
        "joint": torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], -1),
    }[method]
    assert torch.equal(pooled, expected)


def test_aggregation_on_feature_maps_matches_global_average() -> None:
    maps = torch.randn(2, 8, 3, 3)
    assert torch.allclose(aggregate(maps, "avg", 0, 8), maps.mean(dim=(2, 3)))
    assert torch.allclose(aggregate(maps.permute(0, 2, 3, 1), "sum", 0, 8), maps.sum(dim=(2, 3)), atol=1e-5)


@pytest.mark.parametrize("method", ["cls_token", "avg", "joint"])
def test_timm_vit_aggregation_dims(method: str) -> None:
    cfg = ModelConfig(encoder=TimmEncoderConfig(type="test_vit", pretrained=False), feature_aggregation_method=method)
    encoder = build_encoder(cfg)
    features = encoder(torch.randn(2, 3, 160, 160))
    assert features.shape == (2, encoder.out_dim)
    assert encoder.out_dim == (128 if method == "joint" else 64)
    assert encoder.preprocessing.patch_size is not None


def test_cls_token_on_a_cnn_is_refused() -> None:
    cfg = ModelConfig(encoder=ENCODERS["timm"], feature_aggregation_method="cls_token")
    with pytest.raises(ValueError, match="needs a class token.*test_resnet"):
        build_encoder(cfg)


def test_aggregation_on_torchvision_is_refused() -> None:
    with pytest.raises(ValueError, match="torchvision encoders return pooled vectors"):
        build_encoder(ModelConfig(encoder=ENCODERS["torchvision"], feature_aggregation_method="avg"))


def test_unknown_model_names_close_matches() -> None:
    with pytest.raises(ValueError, match="'resnet181' is not a timm model. Closest: resnet18"):
        build_encoder(ModelConfig(encoder=TimmEncoderConfig(type="resnet181", pretrained=False)))
    with pytest.raises(ValueError, match="not a torchvision classification model. Closest: resnet18"):
        build_encoder(ModelConfig(encoder=TorchvisionEncoderConfig(type="resnet181", pretrained=False)))


@pytest.mark.parametrize("channels", [1, 4])
def test_input_channels(channels: int) -> None:
    for encoder in (
        TimmEncoderConfig(type="test_resnet", pretrained=False, input_channels=channels),
        TorchvisionEncoderConfig(type="resnet18", pretrained=False, input_channels=channels),
    ):
        model = build_encoder(ModelConfig(encoder=encoder))
        assert model(torch.randn(2, channels, 32, 32)).shape == (2, model.out_dim)


def test_timm_weights_from_local_file(tmp_path: Path) -> None:
    import timm

    source = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    encoder = build_encoder(ModelConfig(encoder=TimmEncoderConfig(type="test_resnet", pretrained_path=path)))
    loaded = encoder.model.state_dict()
    for key, value in loaded.items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_timm_weights_from_a_model_directory(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    source = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    (tmp_path / "my_model").mkdir()
    save_file(source.state_dict(), tmp_path / "my_model" / "model.safetensors")
    encoder = build_encoder(
        ModelConfig(encoder=TimmEncoderConfig(type="test_resnet", pretrained_path=tmp_path / "my_model"))
    )
    for key, value in encoder.model.state_dict().items():
        assert torch.equal(value, source.state_dict()[key]), key


def test_torchvision_weights_from_local_file_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    source = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(source.state_dict(), path)
    encoder = build_encoder(ModelConfig(encoder=TorchvisionEncoderConfig(type="resnet18", pretrained_path=path)))
    assert torch.equal(encoder.model.conv1.weight, source.conv1.weight)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="torchvision model 'resnet18' are not on this machine"):
        build_encoder(ModelConfig(encoder=TorchvisionEncoderConfig(type="resnet18")))
    cached = tmp_path / "hub" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(source.state_dict(), cached)
    encoder = build_encoder(ModelConfig(encoder=TorchvisionEncoderConfig(type="resnet18")))
    assert torch.equal(encoder.model.conv1.weight, source.conv1.weight)


def test_missing_weights_file_names_the_flag(tmp_path: Path) -> None:
    cfg = TimmEncoderConfig(type="test_resnet", pretrained_path=tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="model.encoder.pretrained_path: '.*nope.pth' does not exist"):
        build_encoder(ModelConfig(encoder=cfg))


def test_linear_probing_freezes_encoder_and_batchnorm() -> None:
    model = build_model(ModelConfig(encoder=ENCODERS["timm"]), LinearProbingConfig(), 3, 0.0)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    for _ in range(2):
        loss = model.head.loss(model(torch.randn(4, 3, 32, 32)), labels_batch(torch.tensor([0, 1, 2, 0])))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running statistics
    assert any(not torch.equal(head_before[k], v) for k, v in model.head.state_dict().items())


def test_label_smoothing_and_soft_targets_in_classification_loss() -> None:
    from glovita.models.heads.classification import ClassificationHead

    head = ClassificationHead(4, 3, 0.0, None, label_smoothing=0.1)
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0]), label_smoothing=0.1)
    assert torch.allclose(head.loss(logits, labels_batch(torch.tensor([0]))), expected)
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    assert torch.isfinite(head.loss(logits, labels_batch(soft)))


POOLED_CNNS = {
    "timm": ENCODERS["timm"],
    "torchvision": TorchvisionEncoderConfig(type="resnet18", pretrained=False),
    "residual_encoder": ENCODERS["residual_encoder"],
}
"""CNNs whose pooled vector is the average of their feature map (torchvision's MobileNets are not: their vector
comes out of the classifier's hidden layer, which the encoder keeps)."""


@pytest.mark.parametrize("encoder_tag", sorted(POOLED_CNNS))
def test_the_pooled_vector_is_the_average_of_the_feature_map(encoder_tag: str) -> None:
    """What an encoder declares it gives a head agrees: encoder(x) == mean(forward_features(x)); encoders with a
    pyramid end it with that same map."""
    torch.manual_seed(0)
    encoder = build_encoder(ModelConfig(encoder=POOLED_CNNS[encoder_tag])).eval()
    images = _inputs(encoder_tag, 2)
    with torch.no_grad():
        maps = encoder.forward_features(images)
        torch.testing.assert_close(encoder(images), maps.flatten(2).mean(-1), atol=1e-5, rtol=1e-5)
        pyramid = getattr(encoder, "pyramid", None)
        if pyramid is not None:
            levels = pyramid(images)
            assert levels[0] is images and [int(v.shape[1]) for v in levels] == encoder.pyramid_channels
            torch.testing.assert_close(levels[-1], maps)
