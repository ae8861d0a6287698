"""The standard deep time-series classifiers as encoders (series (B, C, T) -> (B, D) by global average pooling):
FCN and ResNet of Wang et al. (2017, "Time series classification from scratch with deep neural networks") and
InceptionTime of Ismail Fawaz et al. (2020), at the papers' widths."""

import torch
from torch import nn


def _same_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """Conv1d keeping the length, padded explicitly like Keras' 'same' (the papers' even kernels included, which
    PyTorch's padding='same' handles through a warned-about copy)."""
    left = (kernel - 1) // 2
    return nn.Sequential(
        nn.ConstantPad1d((left, kernel - 1 - left), 0.0), nn.Conv1d(in_channels, out_channels, kernel, bias=False)
    )


class _ConvBlock(nn.Sequential):
    """Conv1d ('same' padding) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int) -> None:
        super().__init__(
            _same_conv(in_channels, out_channels, kernel),
            nn.BatchNorm1d(out_channels),
            nn.ReLU(inplace=True),
        )


def _fcn(in_channels: int) -> tuple[nn.Module, int]:
    """Three blocks of 128, 256, 128 filters with kernels 8, 5, 3."""
    return nn.Sequential(_ConvBlock(in_channels, 128, 8), _ConvBlock(128, 256, 5), _ConvBlock(256, 128, 3)), 128


class _ResidualBlock(nn.Module):
    """Three conv blocks (kernels 8, 5, 3; the last without ReLU) plus a (1x1-projected) shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _ConvBlock(in_channels, out_channels, 8),
            _ConvBlock(out_channels, out_channels, 5),
            _same_conv(out_channels, out_channels, 3),
            nn.BatchNorm1d(out_channels),
        )
        self.shortcut = nn.Sequential(nn.Conv1d(in_channels, out_channels, 1, bias=False), nn.BatchNorm1d(out_channels))

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(series) + self.shortcut(series))


def _resnet(in_channels: int) -> tuple[nn.Module, int]:
    """Three residual blocks of 64, 128, 128 filters."""
    return nn.Sequential(_ResidualBlock(in_channels, 64), _ResidualBlock(64, 128), _ResidualBlock(128, 128)), 128


class _InceptionModule(nn.Module):
    """Bottleneck (1x1 to 32 channels) -> parallel convolutions of kernels 10, 20, 40, plus max-pool -> 1x1;
    concatenated (4 x 32 channels) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, filters: int = 32, kernels: tuple[int, ...] = (10, 20, 40)) -> None:
        super().__init__()
        bottleneck = filters if in_channels > 1 else in_channels
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, 1, bias=False) if in_channels > 1 else nn.Identity()
        self.convs = nn.ModuleList(_same_conv(bottleneck, filters, k) for k in kernels)
        self.pool = nn.Sequential(nn.MaxPool1d(3, stride=1, padding=1), nn.Conv1d(in_channels, filters, 1, bias=False))
        self.norm = nn.BatchNorm1d(filters * (len(kernels) + 1))

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        reduced = self.bottleneck(series)
        branches = [conv(reduced) for conv in self.convs] + [self.pool(series)]
        return torch.relu(self.norm(torch.cat(branches, dim=1)))


class _InceptionNetwork(nn.Module):
    """Six inception modules with a residual connection every three (InceptionTime's single network)."""

    def __init__(self, in_channels: int, depth: int = 6, width: int = 128) -> None:
        super().__init__()
        self.modules_ = nn.ModuleList(_InceptionModule(in_channels if i == 0 else width) for i in range(depth))
        shortcuts = []
        for start in range(0, depth, 3):
            source = in_channels if start == 0 else width
            shortcuts.append(nn.Sequential(nn.Conv1d(source, width, 1, bias=False), nn.BatchNorm1d(width)))
        self.shortcuts = nn.ModuleList(shortcuts)

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        residual = series
        for i, module in enumerate(self.modules_):
            series = module(series)
            if i % 3 == 2:
                series = torch.relu(series + self.shortcuts[i // 3](residual))
                residual = series
        return series


_FAMILY = {"fcn": _fcn, "resnet": _resnet, "inception_time": lambda c: (_InceptionNetwork(c), 128)}


class SeriesCnnEncoder(nn.Module):
    """series (B, C, T) -> (B, out_dim): the network's feature maps (B, out_dim, T), averaged over time."""

    def __init__(self, name: str, input_channels: int) -> None:
        super().__init__()
        if name not in _FAMILY:
            raise ValueError(f"model.encoder.type={name!r} is not a series CNN. Choose one of {', '.join(_FAMILY)}.")
        self.body, self.out_dim = _FAMILY[name](input_channels)
        self.preprocessing = None
        self.takes_time_mask = True
        """forward(series, mask) averages over the real time steps only (data.length_policy pad_mask)."""

    def forward_features(self, series: torch.Tensor) -> torch.Tensor:
        """Feature maps (B, out_dim, T) over the time steps."""
        return self.body(series)

    def forward(self, series: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """series (B, C, T), optional mask (B, T) of real steps -> the feature maps' mean over the (real) steps."""
        features = self.forward_features(series)
        if mask is None:
            return features.mean(dim=-1)
        weights = mask.to(features.dtype)[:, None, :]
        return (features * weights).sum(dim=-1) / weights.sum(dim=-1).clamp(min=1.0)
