"""Named heads on one encoder: each reads its own target field, a missing target is left out of its loss and
metrics, the losses sum with their weights, metric keys are prefixed, and the configs name a wrong setting."""

import pytest
import torch
from pydantic import ValidationError

from glovita.configs.model import ModelConfig
from glovita.models.composite import GlovitaModel
from glovita.models.heads.classification import ClassificationHead
from glovita.models.heads.regression import RegressionHead
from glovita.models.img_encoder.precomputed import PrecomputedEncoder
from glovita.runtime.batch import Batch
from glovita.tasks.classification import ClassificationTask
from glovita.tasks.heads import HeadsMetrics, NamedTask
from glovita.tasks.regression import RegressionTask

CPU = torch.device("cpu")


def _model() -> GlovitaModel:
    torch.manual_seed(0)
    main = ClassificationHead(4, 3, 0.0, None, 0.0)
    return GlovitaModel(PrecomputedEncoder(4), main, {"size": (RegressionHead(4, 1, 0.0, None, "mse"), "size", 0.5)})


def test_a_missing_target_is_left_out_of_the_named_heads_loss() -> None:
    model = _model()
    size = torch.tensor([[1.0], [float("nan")], [3.0], [float("nan")]])
    batch = Batch(torch.randn(4, 4), torch.tensor([0, 1, 2, 0]), fields={"size": size})
    outputs = model(batch.inputs)
    total, named = model.loss_terms(outputs, batch)
    main = torch.nn.functional.cross_entropy(outputs.main, batch.targets)
    by_hand = ((outputs.named["size"][[0, 2]] - size[[0, 2]]) ** 2).mean()
    torch.testing.assert_close(named["size"], by_hand)
    torch.testing.assert_close(total, main + 0.5 * by_hand)
    none = batch.with_fields(fields={"size": torch.full((4, 1), float("nan"))})
    total, named = model.loss_terms(model(none.inputs), none)  # no sample has a size: the head adds 0
    assert float(named["size"].detach()) == 0.0 and torch.isfinite(total)
    total.backward()
    assert model.heads["size"].net[-1].weight.grad is not None  # still in the graph (DDP needs every parameter)


def test_metrics_of_named_heads_are_prefixed_and_skip_missing_targets() -> None:
    model = _model()
    metrics = HeadsMetrics(
        ClassificationTask(3).build_metrics(CPU), [NamedTask("size", RegressionTask(1), "size", 1)], CPU
    )
    size = torch.tensor([[1.0], [float("nan")], [3.0]])
    batch = Batch(torch.randn(3, 4), torch.tensor([0, 1, 2]), fields={"size": size})
    logits = model.logits_by_head(model(batch.inputs))
    metrics.update(logits, batch)
    values = metrics.compute()
    assert "accuracy" in values and "size_mae" in values and "size_accuracy" not in values
    by_hand = (logits["size"][[0, 2]] - size[[0, 2]]).abs().mean()
    assert values["size_mae"] == pytest.approx(float(by_hand))


def test_a_model_without_named_heads_returns_the_main_heads_outputs() -> None:
    model = GlovitaModel(PrecomputedEncoder(4), ClassificationHead(4, 3, 0.0, None, 0.0))
    inputs = torch.randn(2, 4)
    outputs = model(inputs)
    assert isinstance(outputs, torch.Tensor) and outputs.shape == (2, 3)
    assert torch.equal(model.logits_by_head(outputs)[""], outputs)


@pytest.mark.parametrize(
    ("heads", "message"),
    [
        ({"Size": {"target_field": "size", "num_outputs": 1}}, "'Size' is not a usable head name"),
        ({"size": {"target_field": "size", "num_outputs": 1, "task": "Regression", "subtask": "regression"}},
         "task='Regression' with head_type='classification'"),
        ({"grade": {"target_field": "targets", "num_outputs": 3}}, "target_field='targets' is taken"),
        ({"grade": {"target_field": "grade", "num_outputs": 3, "head": {"head_type": "abmil"}}},
         "a named head takes the pooled features"),
    ],
)  # fmt: skip
def test_named_head_configs_name_what_is_wrong(heads: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelConfig.model_validate({"heads": heads})
