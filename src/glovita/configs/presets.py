"""Named starting points (`--preset NAME`): whole configs that flags and --config files then override."""

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from glovita.configs.data import Cifar10Config, DigitsConfig, PrecomputedFeaturesConfig
from glovita.configs.dataloading import DataloadingConfig
from glovita.configs.model import (
    ClamHeadConfig,
    ClassificationHeadConfig,
    ModelConfig,
    PrecomputedEncoderConfig,
    TimmEncoderConfig,
)
from glovita.configs.optimizer import AdamwOptimizerConfig
from glovita.configs.root import RootConfig
from glovita.configs.training import TrainingConfig

_FEATURES = PrecomputedFeaturesConfig(
    data_root_dir=Path("features"),
    num_classes=2,
    train_features_file=Path("train.h5"),
    val_features_file=Path("val.h5"),
    test_features_file=Path("test.h5"),
)
"""Feature files under ./features; point --data.data_root_dir and --data.*_features_file at yours."""

PRESETS: dict[str, RootConfig] = {
    "digits_quick": RootConfig(
        data=DigitsConfig(),
        model=ModelConfig(encoder=TimmEncoderConfig(type="resnet18", pretrained=False)),
        training=TrainingConfig(epochs=3),
    ),
    "cifar10_resnet18": RootConfig(
        data=Cifar10Config(data_root_dir=Path("data")),
        model=ModelConfig(encoder=TimmEncoderConfig(type="resnet18", pretrained=False)),
        training=TrainingConfig(epochs=30, precision="bf16-mixed"),
        dataloading=DataloadingConfig(batch_size=128),
        optimizer=AdamwOptimizerConfig(lr=2e-3, weight_decay=0.05, warmup_epochs=2),
    ),
    "features_linear_probe": RootConfig(
        data=_FEATURES,
        model=ModelConfig(encoder=PrecomputedEncoderConfig(feature_dim=768), head=ClassificationHeadConfig()),
        training=TrainingConfig(epochs=30),
        dataloading=DataloadingConfig(batch_size=64, num_workers=0),
    ),
    "clam_slides": RootConfig(
        data=_FEATURES,
        model=ModelConfig(encoder=PrecomputedEncoderConfig(feature_dim=1024), head=ClamHeadConfig()),
        training=TrainingConfig(epochs=20),
        dataloading=DataloadingConfig(batch_size=1, num_workers=0),
        optimizer=AdamwOptimizerConfig(lr=2e-4, weight_decay=1e-5),
    ),
}
"""digits_quick: 3 epochs of resnet18 from scratch on the bundled digits. cifar10_resnet18: resnet18 from scratch
on CIFAR-10 (data/cifar-10-batches-py), bf16, 30 epochs. features_linear_probe: a linear head on 768-d feature
files. clam_slides: CLAM on 1024-d bags of patch features, one slide per batch."""


def preset_for(config_class: type[BaseModel], name: str) -> dict[str, Any]:
    """The preset `name` as data for a command's config class (glovita_train takes the whole tree; other commands
    the blocks of it they have); a command with none of those blocks is refused."""
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"--preset {name!r} is not one of {', '.join(sorted(PRESETS))}.{hint}")
    preset = PRESETS[name]
    if config_class is RootConfig:
        return preset.model_dump(mode="json")
    shared = {field: getattr(preset, field) for field in config_class.model_fields if field in RootConfig.model_fields}
    blocks = {k: v for k, v in shared.items() if isinstance(v, BaseModel)}
    if not blocks:
        raise ValueError(
            "--preset sets training blocks (data, model, optimizer, ...) and this command has none of them: leave "
            "--preset out (--config FILE gives this command's own settings)."
        )
    return {k: v.model_dump(mode="json") for k, v in blocks.items()}
