"""Model zoo and PEFT: 3D families, token aggregation per family, LoRA/DoRA/BitFit/partial fine-tuning,
layer-wise LR decay, weights from local files (HF directories, GloViTa checkpoints, channel adaptation)."""

import json
from pathlib import Path

import pytest
import torch

from glovita.configs.model import (
    ModelConfig,
    PrimusEncoderConfig,
    ResidualEncoderConfig,
    TimmEncoderConfig,
    TorchvisionVideoEncoderConfig,
    TransformerEncoderConfig,
)
from glovita.configs.optimizer import AdamwOptimizerConfig
from glovita.configs.peft import (
    BitfitConfig,
    DoraConfig,
    FullFinetuningConfig,
    LoraConfig,
    PartialFinetuningConfig,
)
from glovita.models.factory import build_model
from glovita.models.peft.low_rank import merged_state_dict
from glovita.training.optim import build_optimizer
from tests.conftest import labels_batch
from tests.models.test_models import TINY_VIT

VIT_TINY = TimmEncoderConfig(type="vit_tiny_patch16_224", pretrained=False, model_kwargs={"img_size": 32})


def _step(model: torch.nn.Module, size: int = 32) -> dict[str, torch.Tensor]:
    """One AdamW step on random data; returns the state dict before it."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(AdamwOptimizerConfig(lr=1e-2), model, fused=False)
    model.train()
    loss = model.head.loss(model(torch.randn(4, 3, size, size)), labels_batch(torch.tensor([0, 1, 2, 1])))
    loss.backward()
    optimizer.step()
    return before


def _changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


@pytest.mark.parametrize(
    "encoder",
    [
        PrimusEncoderConfig(input_shape=(16, 16, 16), patch_size=(8, 8, 8), embed_dim=48, depth=2, num_heads=2),
        ResidualEncoderConfig(
            spatial_dims=3, input_channels=1, features_per_stage=(8, 16), blocks_per_stage=(1, 1), strides=(1, 2)
        ),
    ],
    ids=["primus", "residual_encoder_3d"],
)
def test_3d_families_train_on_volumes(encoder) -> None:
    model = build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 3, 0.0)
    volumes = torch.randn(2, 1, 16, 16, 16)
    outputs = model(volumes)
    assert outputs.shape == (2, 3)
    unpooled = model.encoder.forward_features(volumes)  # tokens (B, N, D) or a 3D map (B, D, d, h, w)
    assert unpooled.shape[0] == 2 and unpooled.ndim in (3, 5) and model.encoder.out_dim in unpooled.shape
    model.head.loss(outputs, labels_batch(torch.tensor([0, 2]))).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_3d_encoder_on_2d_data_is_refused() -> None:
    from glovita.cli.train import parse_root_config

    with pytest.raises(SystemExit):
        parse_root_config(["--model.encoder.encoder_type", "primus"])


@pytest.mark.parametrize(
    ("method", "width"), [("cls_token", 32), ("avg", 32), ("sum", 32), ("mean_all", 32), ("joint", 64)]
)
def test_transformer_aggregation(method: str, width: int) -> None:
    encoder = TransformerEncoderConfig(
        type="vit", pretrained=False, model_kwargs={**TINY_VIT, "image_size": 32, "patch_size": 8}
    )
    model = build_model(ModelConfig(encoder=encoder, feature_aggregation_method=method), FullFinetuningConfig(), 2, 0)
    assert model.encoder(torch.randn(2, 3, 32, 32)).shape == (2, width) and model.encoder.out_dim == width


def test_class_token_methods_refused_on_the_residual_encoder() -> None:
    with pytest.raises(ValueError, match="needs a class token, and the residual encoder has none"):
        build_model(
            ModelConfig(encoder=ResidualEncoderConfig(), feature_aggregation_method="cls_token"),
            FullFinetuningConfig(),
            2,
            0.0,
        )


def test_lora_on_vit_tiny_trains_a_small_fraction_and_reloads() -> None:
    model = build_model(ModelConfig(encoder=VIT_TINY), LoraConfig(), 3, 0.0)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    assert 0.03 < trainable / total < 0.07  # ~5 % with the head
    before = _step(model)
    changed = _changed(model, before)
    assert changed and all("lora_" in k or k.startswith("head.") for k in changed)

    model.eval()
    images = torch.randn(3, 3, 32, 32)
    rebuilt = build_model(ModelConfig(encoder=VIT_TINY), LoraConfig(), 3, 0.0).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(images), model(images), rtol=0, atol=0)

    plain = build_model(ModelConfig(encoder=VIT_TINY), FullFinetuningConfig(), 3, 0.0).eval()
    plain.load_state_dict(merged_state_dict(model))
    torch.testing.assert_close(plain(images), model(images), rtol=1e-4, atol=1e-5)


def test_dora_on_a_cnn_merges_to_the_same_outputs() -> None:
    encoder = TimmEncoderConfig(type="test_resnet", pretrained=False)
    model = build_model(ModelConfig(encoder=encoder), DoraConfig(rank=4), 3, 0.0)
    _step(model)
    assert any("lora_magnitude_vector" in k for k in model.state_dict())
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    plain = build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 3, 0.0).eval()
    plain.load_state_dict(merged_state_dict(model))
    torch.testing.assert_close(plain(images), model(images), rtol=1e-4, atol=1e-4)


def test_lora_on_a_video_resnet_trains_reloads_and_merges() -> None:
    """torchvision's r3d_18 subclasses Conv3d with its own constructor, and its shortcuts are 1x1x1 Conv3d
    layers whose merge peft gets wrong: both are handled (models/peft/low_rank.py)."""
    encoder = TorchvisionVideoEncoderConfig(type="r3d_18", pretrained=False)
    model = build_model(ModelConfig(encoder=encoder), LoraConfig(rank=4), 3, 0.0)
    clips = torch.randn(2, 3, 4, 16, 16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(AdamwOptimizerConfig(lr=1e-2), model, fused=False)
    model.head.loss(model(clips), labels_batch(torch.tensor([0, 2]))).backward()
    optimizer.step()
    changed = {k for k, v in model.named_parameters() if not torch.equal(v, before[k])}  # not BN statistics
    assert any(".downsample.0.lora_B." in k for k in changed)  # the 1x1x1 shortcut convolutions are adapted
    assert changed and all("lora_" in k or k.startswith("head.") for k in changed)

    model.eval()
    rebuilt = build_model(ModelConfig(encoder=encoder), LoraConfig(rank=4), 3, 0.0).eval()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(clips), model(clips), rtol=0, atol=0)
    plain = build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 3, 0.0).eval()
    plain.load_state_dict(merged_state_dict(model))
    torch.testing.assert_close(plain(clips), model(clips), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"dora: peft cannot merge DoRA into 1x1x1 Conv3d layers \(.*downsample"):
        build_model(ModelConfig(encoder=encoder), DoraConfig(), 3, 0.0)


def test_lora_leaves_depthwise_convolutions_of_a_cnn_alone() -> None:
    """peft needs rank % groups == 0 and merges no grouped convolution: the default targets skip them."""
    from peft.tuners.lora import LoraLayer

    model = build_model(ModelConfig(encoder=TimmEncoderConfig(type="efficientnet_b0", pretrained=False)),
                        LoraConfig(rank=4), 3, 0.0)  # fmt: skip
    adapted = [module.get_base_layer() for module in model.modules() if isinstance(module, LoraLayer)]
    assert len(adapted) > 30 and all(layer.groups == 1 for layer in adapted)
    assert any(getattr(module, "groups", 1) > 1 for module in model.modules())  # depthwise layers left as they are


def test_bitfit_changes_only_biases_and_head() -> None:
    model = build_model(ModelConfig(encoder=VIT_TINY), BitfitConfig(), 3, 0.0)
    changed = _changed(model, _step(model))
    encoder_changes = {k for k in changed if k.startswith("encoder.")}
    assert encoder_changes and all(k.endswith("bias") for k in encoder_changes)


def test_partial_finetuning_freezes_early_layers_and_their_batchnorm_statistics() -> None:
    encoder = TimmEncoderConfig(type="resnet18", pretrained=False)
    model = build_model(ModelConfig(encoder=encoder), PartialFinetuningConfig(trainable_blocks=2), 3, 0.0)
    changed = _changed(model, _step(model))
    assert any(k.startswith("encoder.model.layer4.1.") for k in changed)
    frozen = [
        k
        for k in model.state_dict()
        if k.startswith(("encoder.model.conv1", "encoder.model.bn1", "encoder.model.layer1."))
    ]
    assert frozen and not set(frozen) & changed  # weights and running statistics alike


def test_layer_decay_scales_learning_rates_by_depth() -> None:
    model = build_model(ModelConfig(encoder=VIT_TINY), FullFinetuningConfig(), 3, 0.0)
    optimizer = build_optimizer(AdamwOptimizerConfig(lr=1.0, layer_decay=0.5), model, fused=False)
    rates = {g["name"].removesuffix("_no_decay"): g["lr"] for g in optimizer.param_groups}
    assert rates["model"] == 1.0  # the head
    depths = sorted(int(name[-2:]) for name in rates if name.startswith("encoder_depth"))
    assert depths == list(range(13))  # stem, then 12 blocks (timm groups the final norm with the last block)
    assert [rates[f"encoder_depth{d:02d}"] for d in depths] == [0.5 ** (13 - d) for d in depths]


def test_transformer_from_a_local_directory(tmp_path: Path) -> None:
    from transformers import AutoModel, ViTConfig

    config = ViTConfig(**TINY_VIT, image_size=32, patch_size=8)
    saved = AutoModel.from_config(config)
    saved.save_pretrained(tmp_path / "tiny_vit")
    encoder = TransformerEncoderConfig(type=str(tmp_path / "tiny_vit"), pretrained=True)
    model = build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 2, 0.0)
    loaded = model.encoder.model.state_dict()
    for key, value in loaded.items():
        assert torch.equal(value, saved.state_dict()[key]), key


def test_transformer_weights_not_on_this_machine() -> None:
    encoder = TransformerEncoderConfig(type="google/vit-base-patch16-224-in21k", pretrained=True)
    with pytest.raises(FileNotFoundError, match="is not on this machine .* never downloads weights"):
        build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 2, 0.0)


def test_glovita_checkpoint_as_pretrained_path_with_channel_adaptation(tmp_path: Path, capsys) -> None:
    from glovita.runtime.io import save_torch

    source = build_model(ModelConfig(encoder=TimmEncoderConfig(type="test_resnet", pretrained=False)),
                         FullFinetuningConfig(), 10, 0.0)  # fmt: skip
    path = tmp_path / "best.pt"
    save_torch({"model": source.state_dict(), "glovita_version": "test", "epoch": 0}, path)
    encoder = TimmEncoderConfig(type="test_resnet", pretrained_path=path, input_channels=1)
    model = build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 3, 0.0)
    captured = capsys.readouterr()
    report = " ".join((captured.out + captured.err).split())  # rich wraps long lines
    assert f"Loaded encoder weights from {path}: 1 adapted (model.conv1.0.weight)" in report
    first = source.encoder.model.conv1[0].weight
    torch.testing.assert_close(model.encoder.model.conv1[0].weight, first.sum(dim=1, keepdim=True))
    loaded, original = model.encoder.state_dict(), source.encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in original.items() if k != "model.conv1.0.weight")


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    from glovita.runtime.io import save_torch

    vit = build_model(ModelConfig(encoder=VIT_TINY), FullFinetuningConfig(), 3, 0.0)
    path = tmp_path / "vit.pt"
    save_torch({"model": vit.state_dict(), "glovita_version": "test"}, path)
    encoder = ResidualEncoderConfig(pretrained=True, pretrained_path=path)
    with pytest.raises(ValueError, match="no key of .* fits this encoder"):
        build_model(ModelConfig(encoder=encoder), FullFinetuningConfig(), 3, 0.0)


def test_run_config_records_peft(tmp_path: Path) -> None:
    from glovita.cli.train import parse_root_config

    cfg = parse_root_config(["--peft.method", "lora", "--peft.rank", "4", "--peft.target_modules", "qkv", "proj"])
    saved = json.loads(json.dumps(cfg.model_dump(mode="json")))
    assert saved["peft"] == {
        "method": "lora", "rank": 4, "alpha": 16.0, "dropout": 0.0, "target_modules": ["qkv", "proj"],
        "save_merged": True,
    }  # fmt: skip


def test_glovita_checkpoint_into_a_torchvision_encoder(tmp_path: Path) -> None:
    from glovita.configs.model import TorchvisionEncoderConfig
    from glovita.runtime.io import save_torch

    config = TorchvisionEncoderConfig(type="mobilenet_v3_small", pretrained=False)
    source = build_model(ModelConfig(encoder=config), FullFinetuningConfig(), 10, 0.0)
    path = tmp_path / "best.pt"
    save_torch({"model": source.state_dict(), "glovita_version": "test", "epoch": 0}, path)
    loaded = config.model_copy(update={"pretrained": True, "pretrained_path": path})
    model = build_model(ModelConfig(encoder=loaded), FullFinetuningConfig(), 3, 0.0)
    original = source.encoder.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in model.encoder.state_dict().items())
