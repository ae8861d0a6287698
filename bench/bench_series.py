"""Time-series classification: GloViTa's InceptionTime and ResNet against aeon's MiniRocket, trained in the same
run on UCR/UEA sets that aeon ships (read from the installed package, nothing downloaded).

Protocol as in the InceptionTime paper: each network trains on the whole training file and keeps the epoch of
lowest loss on it (here: --data.val_file = the training file, best.pt by val_loss), Adam(W) lr 1e-3, batch 16;
test accuracy on the official test file. MiniRocket (aeon's MiniRocketClassifier: 10k features + ridge) fits the
same training cases, as GloViTa reads them by default (univariate sets z-normalised per series, multivariate ones
as stored; unequal lengths zero-padded to the longest). Wall time: the whole glovita_train command (in process) vs
MiniRocket's fit + predict.

    .venv/bin/python bench/bench_series.py --epochs 150 [--networks inception_time resnet patchtst]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from glovita.cli.train import main as train_main
from glovita.configs.data import GenericTimeseriesDatasetConfig
from glovita.datasets.factory import build_datasets
from glovita.datasets.timeseries import aeon_file, read_ts_file

SETS = {"GunPoint": 2, "ItalyPowerDemand": 2, "ArrowHead": 3, "BasicMotions": 4, "JapaneseVowels": 9}


def _config(name: str) -> GenericTimeseriesDatasetConfig:
    """The whole training file as training and validation data (the paper's protocol), the official test file."""
    train, test = aeon_file(name, "train"), aeon_file(name, "test")
    return GenericTimeseriesDatasetConfig(data_root_dir=train.parent, train_file=Path(train.name),
                                          val_file=Path(train.name), test_file=Path(test.name),
                                          num_classes=SETS[name])  # fmt: skip


def _arrays(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and test series as GloViTa reads them by default (normalisation, length), with their labels."""
    splits = build_datasets(_config(name), None)
    assert splits.test is not None
    train = [splits.train[i] for i in range(len(splits.train))]  # type: ignore[arg-type]
    test = [splits.test[i] for i in range(len(splits.test))]  # type: ignore[arg-type]
    return (np.stack([s[0].numpy() for s in train]).astype(np.float64), np.array([int(s[1]) for s in train]),
            np.stack([s[0].numpy() for s in test]).astype(np.float64), np.array([int(s[1]) for s in test]))  # fmt: skip


def minirocket(name: str) -> tuple[float, float]:
    from aeon.classification.convolution_based import MiniRocketClassifier

    x_train, y_train, x_test, y_test = _arrays(name)
    began = time.perf_counter()
    model = MiniRocketClassifier(random_state=0).fit(x_train, y_train)
    accuracy = float((model.predict(x_test) == y_test).mean())
    return accuracy, time.perf_counter() - began


def glovita(name: str, network: str, epochs: int, work: Path) -> tuple[float, float]:
    train, test = aeon_file(name, "train"), aeon_file(name, "test")
    read = [read_ts_file(path, regression=False) for path in (train, test)]
    channels = read[0].series[0].shape[0]
    if network == "patchtst":  # built for one length: the longest series of the set
        length = max(s.shape[1] for r in read for s in r.series)
        encoder = ["--model.encoder.encoder_type", "patchtst", "--model.encoder.context_length", str(length)]
    else:
        encoder = ["--model.encoder.encoder_type", "series_cnn", "--model.encoder.type", network]
    group = f"{name}_{network}"
    began = time.perf_counter()
    train_main(["--data.dataset", "generic_timeseries_dataset", "--data.data_root_dir", str(train.parent),
                "--data.train_file", train.name, "--data.val_file", train.name, "--data.test_file", test.name,
                "--data.num_classes", str(SETS[name]), *encoder, "--model.encoder.input_channels", str(channels),
                "--training.epochs", str(epochs), "--dataloading.batch_size", "16",
                "--training.best_checkpoint_metric", "val_loss", "--training.checkpoint_every_n_epochs", "0",
                "--experiments_dir", str(work), "--group", group])  # fmt: skip
    wall = time.perf_counter() - began
    metrics = json.loads((work / "generic_timeseries_dataset" / group / "0" / "test_metrics.json").read_text())
    return metrics["test_accuracy"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--networks", nargs="*", default=["inception_time", "resnet"],
                        help="GloViTa networks: inception_time, resnet, fcn, patchtst")  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glovita-series-"))
    rows = {}
    for name in args.sets:
        rows[name] = {"minirocket": minirocket(name)}
        for network in args.networks:
            rows[name][network] = glovita(name, network, args.epochs, work)
    print(json.dumps(rows, indent=1))
    columns = [*args.networks, "minirocket"]
    print(f"\n| set | {' | '.join(columns)} ({args.epochs} epochs) | wall s: {' / '.join(columns)} |")
    print("|---|" + "---:|" * len(columns) + "---|")
    for name, row in rows.items():
        accuracies = " | ".join(f"{row[c][0]:.3f}" for c in columns)
        walls = " / ".join(f"{row[c][1]:.1f}" for c in columns)
        print(f"| {name} | {accuracies} | {walls} |")


if __name__ == "__main__":
    main()
