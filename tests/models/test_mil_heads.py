"""ABMIL and CLAM: masks respected, padding changes nothing, k_sample clamped, instance loss trains."""

import pytest
import torch

from glovita.models.heads.abmil import AbmilHead
from glovita.models.heads.clam import ClamHead, smooth_top1_svm
from tests.conftest import labels_batch


def _clam(**overrides) -> ClamHead:
    args = dict(in_dim=8, num_classes=3, variant="sb", size="small", dropout=0.0, instance_eval=True, k_sample=8,
                bag_weight=0.7, instance_loss="ce", subtyping=False)  # fmt: skip
    return ClamHead(**{**args, **overrides}).eval()


HEADS = {
    "abmil": lambda: AbmilHead(8, 3, 16, 8, True, 0.0).eval(),
    "clam_sb": lambda: _clam(),
    "clam_mb": lambda: _clam(variant="mb"),
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_padding_changes_nothing_and_gets_no_attention(name: str) -> None:
    torch.manual_seed(0)
    head = HEADS[name]()
    bag = torch.randn(1, 5, 8)
    alone = head(bag, torch.ones(1, 5, dtype=torch.bool))
    padded_features = torch.cat([bag, 100 * torch.randn(1, 4, 8)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 4])
    padded = head(padded_features, mask)
    assert torch.allclose(alone.logits, padded.logits, atol=1e-5)
    assert padded.attention[..., 5:].abs().max() == 0
    assert torch.allclose(padded.attention.sum(-1), torch.ones(padded.attention.shape[:2]))
    branches = 3 if name == "clam_mb" else 1
    assert padded.attention.shape == (1, branches, 9) and padded.logits.shape == (1, 3)


def test_clam_k_sample_is_clamped_to_small_bags() -> None:
    head = _clam(k_sample=8, subtyping=True).train()
    features = torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    outputs = head(features, mask)
    loss = head.loss(outputs, labels_batch(torch.tensor([0, 2])))
    assert torch.isfinite(loss)
    loss.backward()
    assert head.instance_classifiers[0].weight.grad.abs().sum() > 0
    assert head.instance_classifiers[1].weight.grad.abs().sum() > 0  # subtyping: other classes' top instances


def test_instance_loss_only_with_instance_eval() -> None:
    torch.manual_seed(0)
    features, mask, targets = torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool), torch.tensor([1, 2])
    with_eval, without = _clam(instance_eval=True), _clam(instance_eval=False)
    without.load_state_dict(with_eval.state_dict())
    outputs = with_eval(features, mask)
    bag_loss = torch.nn.functional.cross_entropy(outputs.logits, targets)
    assert torch.allclose(without.loss(outputs, labels_batch(targets)), bag_loss)
    assert not torch.allclose(with_eval.loss(outputs, labels_batch(targets)), bag_loss)


def test_smooth_top1_svm_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.5]])
    expected = torch.logsumexp(torch.tensor([2.0, 1.5]), 0) - 2.0
    assert torch.allclose(smooth_top1_svm(logits, torch.tensor([0])), expected)
    svm_head = _clam(instance_loss="svm")
    outputs = svm_head(torch.randn(1, 5, 8), torch.ones(1, 5, dtype=torch.bool))
    assert torch.isfinite(svm_head.loss(outputs, labels_batch(torch.tensor([1]))))
