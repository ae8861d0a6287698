"""Metric values equal hand-computed ones; best-metric resolution and its errors."""

import warnings

import pytest
import torch

from glovita.metrics.classification import ClassificationMetrics
from glovita.metrics.regression import RegressionMetrics
from glovita.tasks.classification import ClassificationTask
from glovita.tasks.keys import resolve_best_metric
from glovita.tasks.regression import RegressionTask


def test_classification_metrics_by_hand() -> None:
    metrics = ClassificationMetrics(3, torch.device("cpu"))
    targets = torch.tensor([0, 0, 0, 1, 2, 2])
    predicted = torch.tensor([0, 0, 1, 1, 2, 0])
    logits = torch.nn.functional.one_hot(predicted, 3).float() * 5
    metrics.update(logits, targets)
    values = metrics.compute()
    assert values["accuracy"] == pytest.approx(4 / 6)
    assert values["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    f1 = [2 * (2 / 3 * 2 / 3) / (4 / 3), 2 * (0.5 * 1) / 1.5, 2 * (1 * 0.5) / 1.5]
    assert values["f1_macro"] == pytest.approx(sum(f1) / 3)
    assert values["f1_class_1"] == pytest.approx(f1[1])
    assert set(values) == set(ClassificationTask(3).metric_names())
    assert metrics.confusion_matrix().tolist() == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_the_test_pass_ranks_misses_by_the_probability_of_the_true_class() -> None:
    metrics = ClassificationMetrics(3, torch.device("cpu"))
    metrics.track_curves()
    probabilities = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.5, 0.4, 0.1]])  # right, wrong, wrong
    metrics.update(probabilities.log(), torch.tensor([0, 2, 1]))
    metrics.update(torch.tensor([[0.05, 0.05, 0.9]]).log(), torch.tensor([0]))  # wrong, p(true) 0.05
    misses = metrics.misses(2, ["cat", "dog", "fox"])
    assert [(m.position, m.truth, m.predicted) for m in misses] == [(3, "cat", "fox (p=0.90)"), (1, "fox",
                                                                    "dog (p=0.60)")]  # fmt: skip
    assert [m.wrongness for m in misses] == pytest.approx([0.95, 0.7])
    assert len(metrics.misses(10, [])) == 3 and metrics.misses(10, [])[2].truth == "1"
    plain = ClassificationMetrics(3, torch.device("cpu"))  # validation epochs keep no per-sample rows
    plain.update(probabilities.log(), torch.tensor([0, 2, 1]))
    assert plain.misses(5, []) == []


def test_regression_misses_are_the_largest_absolute_errors() -> None:
    metrics = RegressionMetrics(1, torch.device("cpu"))
    metrics.track_curves()
    metrics.update(torch.tensor([[1.0], [2.0], [0.0]]), torch.tensor([[1.5], [-1.0], [0.0]]))
    misses = metrics.misses(2, [])
    assert [(m.position, m.truth, m.predicted, m.wrongness) for m in misses] == [(1, "-1", "2", 3.0),
                                                                                 (0, "1.5", "1", 0.5)]  # fmt: skip


def test_macro_metrics_average_over_the_classes_present() -> None:
    """Class 2 has no samples in this split: it has no recall, F1 or AUROC, and does not lower the means."""
    metrics = ClassificationMetrics(3, torch.device("cpu"))
    targets = torch.tensor([0, 0, 1, 1, 1, 0])
    predicted = torch.tensor([0, 1, 1, 1, 2, 0])  # one sample wrongly predicted as the absent class
    metrics.update(torch.nn.functional.one_hot(predicted, 3).float() * 5, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # GloViTa reports the absent class; torchmetrics' own warning stays out
        values = metrics.compute()
    assert values["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    f1_0, f1_1 = 2 * (1 * 2 / 3) / (1 + 2 / 3), 2 * (2 / 3 * 2 / 3) / (4 / 3)
    assert values["f1_macro"] == pytest.approx((f1_0 + f1_1) / 2)
    assert values["f1_class_2"] != values["f1_class_2"]  # NaN: undefined, not 0
    assert values["auroc"] == pytest.approx((values["auroc_class_0"] + values["auroc_class_1"]) / 2)
    assert values["auroc_class_2"] != values["auroc_class_2"]


def test_regression_metrics_by_hand() -> None:
    metrics = RegressionMetrics(1, torch.device("cpu"))
    predictions = torch.tensor([[1.0], [2.0], [3.0], [5.0]])
    targets = torch.tensor([[1.0], [2.0], [4.0], [4.0]])
    metrics.update(predictions, targets)
    values = metrics.compute()
    assert values["mae"] == pytest.approx(0.5)
    assert values["mse"] == pytest.approx(0.5)
    assert values["r2"] == pytest.approx(1 - 2 / 6.75)
    assert values["pearson"] == pytest.approx(
        float(torch.corrcoef(torch.stack([predictions[:, 0], targets[:, 0]]))[0, 1])
    )


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (None, ("val_accuracy", "max")),
        ("F1", ("val_f1_macro", "max")),
        ("val_auroc", ("val_auroc", "max")),
        ("balanced_accuracy", ("val_balanced_accuracy", "max")),
        ("val_loss", ("val_loss", "min")),
        ("auroc_class_2", ("val_auroc_class_2", "max")),
    ],
)
def test_best_metric_resolution(requested: str | None, expected: tuple[str, str]) -> None:
    assert resolve_best_metric(requested, ClassificationTask(3)) == expected


def test_regression_best_metric_defaults_to_mae_min() -> None:
    assert resolve_best_metric(None, RegressionTask(1)) == ("val_mae", "min")
    assert resolve_best_metric("R2", RegressionTask(1)) == ("val_r2", "max")


def test_unknown_best_metric_lists_valid_keys() -> None:
    with pytest.raises(ValueError, match="Valid keys: val_loss, val_mae, val_mse, val_r2, val_pearson"):
        resolve_best_metric("accuracy", RegressionTask(1))


def test_multilabel_auroc_skips_labels_without_both_classes() -> None:
    import math

    from glovita.metrics.multilabel import MultilabelMetrics

    metrics = MultilabelMetrics(3, torch.device("cpu"))
    targets = torch.tensor([[1, 0, 0], [0, 0, 1], [1, 0, 1], [0, 0, 0]])
    logits = torch.tensor([[3.0, 0.0, -1.0], [-3.0, 0.0, 2.0], [2.0, 0.0, -2.0], [-1.0, 0.0, 1.0]])
    metrics.update(logits, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = metrics.compute()
    assert values["auroc_class_0"] == pytest.approx(1.0)
    assert math.isnan(values["auroc_class_1"])  # label 1 never occurs: undefined, not 0
    assert values["auroc_class_2"] == pytest.approx(0.5)  # positives scored 2 and -2, negatives -1 and 1
    assert values["auroc"] == pytest.approx(0.75)
    # Average precision: label 0 ranks both positives first (1.0); label 2 ranks them 1st and 4th
    # ((1/1 + 2/4) / 2 = 0.75); label 1 has no positives and stays out of the mean instead of counting as 0.
    assert values["map"] == pytest.approx((1.0 + 0.75) / 2)
    # F1 at 0.5 (logit > 0): label 0 all right (1.0), label 2 one hit, one false alarm, one miss (2 / 4);
    # label 1 is neither present nor predicted (0 / 0) and stays out of the mean.
    assert values["f1_macro"] == pytest.approx((1.0 + 0.5) / 2)
    metrics.reset()
    metrics.update(torch.tensor([[1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]]), torch.tensor([[1, 0, 0], [0, 0, 0]]))
    assert metrics.compute()["f1_macro"] == pytest.approx((1.0 + 0.0) / 2)  # a false alarm on label 1 counts


def _multilabel_rank(rank: int, init_file: str, queue) -> None:
    import torch.distributed as dist

    from glovita.metrics.multilabel import MultilabelMetrics

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    metrics = MultilabelMetrics(2, torch.device("cpu"))
    # Label 1 is all negative on rank 0 and all positive on rank 1: defined only over both processes.
    targets = torch.tensor([[1, 0], [0, 0]]) if rank == 0 else torch.tensor([[0, 1], [1, 1]])
    logits = torch.tensor([[2.0, -1.0], [-2.0, -2.0]]) if rank == 0 else torch.tensor([[-1.0, 1.0], [1.0, 2.0]])
    metrics.update(logits, targets)
    values = metrics.compute()
    dist.destroy_process_group()
    queue.put((rank, values["auroc_class_1"], values["map"]))


def test_multilabel_metrics_count_labels_over_all_processes(tmp_path) -> None:
    import torch.multiprocessing as mp

    from glovita.metrics.multilabel import MultilabelMetrics

    context = mp.get_context("spawn")  # a forked child can deadlock in the OpenMP pool the parent has used
    queue = context.Queue()
    processes = [
        context.Process(target=_multilabel_rank, args=(rank, str(tmp_path / "init"), queue)) for rank in (0, 1)
    ]
    for process in processes:
        process.start()
    results = sorted(queue.get(timeout=60) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    reference = MultilabelMetrics(2, torch.device("cpu"))
    reference.update(
        torch.tensor([[2.0, -1.0], [-2.0, -2.0], [-1.0, 1.0], [1.0, 2.0]]),
        torch.tensor([[1, 0], [0, 0], [0, 1], [1, 1]]),
    )
    expected = reference.compute()
    assert expected["auroc_class_1"] == pytest.approx(1.0)  # positives scored 1 and 2, negatives -1 and -2
    for _rank, auroc_1, average_precision in results:
        assert auroc_1 == pytest.approx(expected["auroc_class_1"])
        assert average_precision == pytest.approx(expected["map"])


def test_ece_equals_torchmetrics_and_bins_add_up() -> None:
    from torchmetrics.classification import MulticlassCalibrationError

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(500, 4, generator=generator) * 2
    targets = torch.randint(0, 4, (500,), generator=generator)
    metrics = ClassificationMetrics(4, torch.device("cpu"))
    for start in range(0, 500, 64):  # accumulated over batches like an evaluation loop
        metrics.update(logits[start : start + 64], targets[start : start + 64])
    values = metrics.compute()
    reference = MulticlassCalibrationError(4, n_bins=15, norm="l1")(logits.softmax(-1), targets)
    assert values["ece"] == pytest.approx(float(reference), abs=1e-6)
    bins = metrics.reliability()
    assert sum(bins["count"]) == 500
    correct = sum(c * a for c, a in zip(bins["count"], bins["accuracy"], strict=True) if c)
    assert correct / 500 == pytest.approx(values["accuracy"])


def test_reliability_diagram_png(tmp_path) -> None:
    from PIL import Image

    from glovita.metrics.plots import save_reliability_diagram

    metrics = ClassificationMetrics(3, torch.device("cpu"))
    metrics.update(torch.randn(50, 3), torch.randint(0, 3, (50,)))
    ece = metrics.compute()["ece"]
    save_reliability_diagram(metrics.reliability(), ece, tmp_path / "r.png", "title")
    with Image.open(tmp_path / "r.png") as image:
        assert image.format == "PNG" and image.size == (768, 720)  # the legend beside the bars, not over them
