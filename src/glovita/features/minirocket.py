"""MiniRocket features of time series (Dempster et al. 2021, aeon's transform): fitted on the training split,
written per split as precomputed-feature HDF5 files, so series train linear probes on the precomputed path."""

import time

import numpy as np

from glovita import __version__
from glovita.configs.extract import ExtractFeaturesConfig
from glovita.datasets.factory import build_datasets, sample_ids
from glovita.features.extract import ExtractedFile, output_path, write_features
from glovita.inference.restore import load_run
from glovita.runtime.progress import print_line


def _stack(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, T) float64 series and (N,) labels of a series dataset, as it serves them for evaluation."""
    samples = [dataset[i] for i in range(len(dataset))]
    series = np.nan_to_num(np.stack([s[0].numpy() for s in samples]).astype(np.float64))  # pad_mask: NaN -> 0
    labels = np.stack([np.asarray(s[1]) for s in samples])
    return series, labels


def extract_minirocket(cfg: ExtractFeaturesConfig) -> list[ExtractedFile]:
    """MiniRocket (10,000 kernels -> 9,996 features) fitted on the training split, applied to the chosen splits of
    the run's data (checkpoint mode; the checkpoint's weights are not used) or of --data."""
    data = load_run(cfg.checkpoint_path).config.data if cfg.checkpoint_path is not None else cfg.data
    if data.spatial_dims != 1:
        raise ValueError(f"method='minirocket' transforms time series; data.dataset={data.dataset!r} is not one. "
                         "Use it with --data.dataset generic_timeseries_dataset.")  # fmt: skip
    try:
        from aeon.transformations.collection.convolution_based import MiniRocket
    except ImportError as err:
        raise ValueError("method='minirocket' uses aeon's transform. Run: pip install -e '.[timeseries]'.") from err
    splits = build_datasets(data, None)
    train_series, _ = _stack(splits.train)
    began = time.perf_counter()
    transform = MiniRocket(random_state=0).fit(train_series)
    fit_seconds = time.perf_counter() - began
    available = {"train": splits.train, "val": splits.val, "test": splits.test}
    chosen = [cfg.split] if cfg.split else [name for name, ds in available.items() if ds is not None]
    dtype = np.float16 if cfg.precision == 16 else np.float32
    written = []
    for split in chosen:
        dataset = available[split]
        if dataset is None:
            raise ValueError(f"split={split!r}: {data.dataset} has no {split} split here.")
        series, labels = _stack(dataset)
        began = time.perf_counter()
        features = np.asarray(transform.transform(series), dtype=dtype)
        seconds = time.perf_counter() - began + (fit_seconds if split == "train" else 0.0)
        values = {
            "method": "minirocket",
            "model": "minirocket",
            "dataset": data.dataset,
            "split": split,
            "imgsize": f"{series.shape[1]}x{series.shape[2]}",
            "precision": str(cfg.precision),
            "checkpoint": "none",
        }
        path = output_path(cfg, values)
        attrs = {**values, "glovita_version": __version__, "feature_dim": features.shape[1]}
        write_features(path, features, labels, sample_ids(dataset), cfg.compression, attrs)
        print_line(f"{split}: {features.shape[0]} x {features.shape[1]} MiniRocket features -> {path}")
        written.append(ExtractedFile(path, split, features.shape[0], features.shape[1], seconds))
    return written
