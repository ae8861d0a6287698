"""The regression head learns standardised targets: its outputs are in the targets' units, its loss in standard
units, its statistics come from the training targets and travel in the checkpoint."""

import pytest
import torch
import torch.nn.functional as F

from glovita.models.heads.regression import RegressionHead
from glovita.runtime.batch import Batch
from glovita.training.resolve import resolve_target_statistics


def test_outputs_are_in_the_targets_units_and_the_loss_in_standard_units() -> None:
    torch.manual_seed(0)
    head = RegressionHead(4, 2, 0.0, None, "mse")
    features, targets = torch.randn(5, 4), torch.tensor([[60.0, -1.0]] * 5)
    plain_out = head.net(features)
    assert torch.allclose(head(features), plain_out)  # before statistics: the regressor's values as they are
    head.set_target_statistics([50.0, 0.0], [10.0, 2.0])
    outputs = head(features)
    assert torch.allclose(outputs, plain_out * torch.tensor([10.0, 2.0]) + torch.tensor([50.0, 0.0]))
    by_hand = F.mse_loss(plain_out, (targets - torch.tensor([50.0, 0.0])) / torch.tensor([10.0, 2.0]))
    assert head.loss(outputs, Batch(features, targets)).item() == pytest.approx(by_hand.item())


def test_statistics_travel_in_the_state_dict_and_older_checkpoints_load_unstandardised() -> None:
    head = RegressionHead(3, 1, 0.0, None, "l1")
    head.set_target_statistics([7.0], [3.0])
    again = RegressionHead(3, 1, 0.0, None, "l1")
    again.load_state_dict(head.state_dict())
    assert again.target_mean.tolist() == [7.0] and again.target_std.tolist() == [3.0]
    older = {k: v for k, v in head.state_dict().items() if not k.startswith("target_")}
    again.load_state_dict(older)  # strict: a checkpoint from before the statistics existed
    assert again.target_mean.tolist() == [0.0] and again.target_std.tolist() == [1.0]


def test_statistics_are_the_training_targets_mean_and_std() -> None:
    assert resolve_target_statistics([1.0, 3.0, None]) == {"mean": [2.0], "std": [1.0]}
    assert resolve_target_statistics([(1.0, 5.0), (1.0, 9.0)]) == {"mean": [1.0, 7.0], "std": [1.0, 2.0]}
    manifest_cells = [torch.tensor([2.0]), torch.tensor([float("nan")]), torch.tensor([6.0])]  # NaN: an empty cell
    assert resolve_target_statistics(manifest_cells) == {"mean": [4.0], "std": [2.0]}
    with pytest.raises(ValueError, match="no_standardize_targets"):
        resolve_target_statistics([None, None])
