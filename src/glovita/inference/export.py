"""`glovita_export`: a trained run's model as ONNX, TorchScript or safetensors, with its preprocessing recorded
beside it and the export checked against PyTorch on real samples of the run's test split.

The exported graph maps the model's inputs (images (B, C, H, W), volumes, series, feature vectors, or bags
(B, N, D) with their mask (B, N)) to logits; preprocessing.json says how inputs are made (size, mean, std, the
evaluation transform as the run recorded it) and how logits become probabilities. LoRA/DoRA runs are exported
with their adapters merged into plain layers.
"""

import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from glovita import __version__
from glovita.configs.export import ExportConfig
from glovita.configs.infer import InferConfig
from glovita.configs.peft import FullFinetuningConfig
from glovita.inference.predict import eval_pipeline, select_samples
from glovita.inference.restore import RestoredRun, load_run, rebuild_model
from glovita.modalities.base import Modality
from glovita.models.composite import GlovitaModel
from glovita.runtime.batch import Batch
from glovita.runtime.io import atomic_path, check_output_dir, save_json
from glovita.runtime.progress import print_line
from glovita.tasks.factory import build_named_tasks, build_task

_FILES = {"onnx": "model.onnx", "torchscript": "model.pt", "safetensors": "model.safetensors",
          "timm": "model.safetensors"}  # fmt: skip


class LogitsModule(nn.Module):
    """The model as one function: inputs (and the bag / time mask) -> logits (B, K); a model with named heads
    (model.heads) gives a tuple: the main head's logits, then each named head's, in model.heads' order."""

    def __init__(self, model: GlovitaModel, with_mask: bool) -> None:
        super().__init__()
        self.model = model
        self.with_mask = with_mask
        self.head_names = list(model.heads)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> Any:
        outputs = self.model(inputs, mask if self.with_mask else None)
        if not self.head_names:
            return self.model.head.logits(outputs)
        logits = self.model.logits_by_head(outputs)
        return (logits[""], *(logits[name] for name in self.head_names))

    def output_names(self) -> list[str]:
        """The outputs' names: logits, then <head>_logits per named head."""
        return ["logits", *(f"{name}_logits" for name in self.head_names)]


def _outputs(value: Any) -> list[torch.Tensor]:
    """An export's outputs as a list (one tensor, or a model with named heads' tuple)."""
    return [value] if isinstance(value, torch.Tensor) else list(value)


@dataclass(frozen=True)
class Exported:
    model_file: Path
    preprocessing_json: Path
    max_abs_diff: float
    argmax_agreement: float
    num_samples: int


def _plain_model(run: RestoredRun, use_ema: bool) -> GlovitaModel:
    """The run's model with its weights; LoRA/DoRA adapters merged into a model without adapters."""
    model = rebuild_model(run, use_ema)
    if run.config.peft.adapters:
        from glovita.models.peft.low_rank import merged_state_dict

        plain = rebuild_model(run, peft=FullFinetuningConfig(), weights=False)
        plain.load_state_dict(merged_state_dict(model))
        model = plain
    return model.eval()


def _samples(run: RestoredRun, model: GlovitaModel, count: int) -> tuple[Batch, Modality]:
    """Up to `count` samples of the run's test split (else val), through its evaluation pipeline, as one batch."""
    from glovita.configs.dataloading import DataloadingConfig
    from glovita.runtime.loaders import one_pass_loader
    from glovita.training.resolve import resolve_dataloading

    class_names = list(run.resolved.get("class_names") or [])
    split = "test"
    try:
        samples = select_samples(InferConfig(checkpoint_path=run.checkpoint_path, split="test"), run, class_names)
    except ValueError:
        split = "val"
        samples = select_samples(InferConfig(checkpoint_path=run.checkpoint_path, split="val"), run, class_names)
    dataset = eval_pipeline(run, samples.modality, model).eval_dataset(samples.dataset)
    loading = resolve_dataloading(DataloadingConfig(batch_size=count, num_workers=0), torch.device("cpu"))
    loader = one_pass_loader(dataset, loading, samples.modality.collate)
    batch = next(iter(loader))
    if len(batch) < 2:
        raise ValueError(f"The run's {split} split has {len(batch)} sample; the export check needs at least 2.")
    return batch, samples.modality


def spatial_axis_names(count: int) -> list[str]:
    """Names of the last `count` axes of a dense model's inputs and logits: height, width (and depth first)."""
    return ["depth", "height", "width"][-count:]


def _export_onnx(module: LogitsModule, batch: Batch, bags: bool, dense: bool, path: Path, opset: int) -> None:
    try:
        import onnxscript  # noqa: F401  # the exporter needs it
    except ImportError as err:
        raise ValueError("ONNX export needs onnx and onnxscript: pip install 'glovita[export]'.") from err
    from torch.export import Dim

    args: tuple[torch.Tensor, ...] = (batch.inputs,) if batch.valid is None else (batch.inputs, batch.valid)
    batch_dim = Dim("batch", min=1, max=65536)
    shapes: dict[str, Any] = {"inputs": {0: batch_dim}}
    if dense:  # label maps follow the image: any height and width
        names = spatial_axis_names(len(batch.inputs.shape) - 2)
        shapes["inputs"].update({2 + i: Dim(name, min=8, max=16384) for i, name in enumerate(names)})
    if batch.valid is not None:
        if bags:  # any number of instances per bag
            instances = Dim("instances", min=1, max=2**24)
            shapes = {"inputs": {0: batch_dim, 1: instances}, "mask": {0: batch_dim, 1: instances}}
        else:
            shapes["mask"] = {0: batch_dim}
    names = ["inputs"] + (["mask"] if batch.valid is not None else [])
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on axis names and deprecations
            program = torch.onnx.export(
                module, args, dynamic_shapes=shapes, opset_version=opset, input_names=names,
                output_names=module.output_names(), dynamo=True, external_data=False, verbose=False,
            )  # fmt: skip
            assert program is not None
            program.save(str(tmp))
    except Exception as err:  # the exporter raises many types; name the op when it says which
        ops = sorted(set(re.findall(r"aten[:.]{1,2}[A-Za-z0-9_.]+", str(err))))
        detail = f"unsupported op(s) {', '.join(ops[:5])}" if ops else str(err).strip().splitlines()[0][:300]
        raise ValueError(f"ONNX export (opset {opset}) failed: {detail}. Try another --opset, or --format "
                         "torchscript / safetensors.") from err  # fmt: skip


def _run_onnx(path: Path, batch: Batch) -> list[torch.Tensor]:
    try:
        import onnxruntime
    except ImportError as err:
        raise ValueError("Checking the ONNX file needs onnxruntime: pip install 'glovita[export]'.") from err
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"inputs": batch.inputs.numpy()}
    if batch.valid is not None:
        feeds["mask"] = batch.valid.numpy()
    return [torch.from_numpy(value) for value in session.run(None, feeds)]


def _export_torchscript(module: LogitsModule, batch: Batch, path: Path) -> Any:
    args = (batch.inputs,) if batch.valid is None else (batch.inputs, batch.valid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notices
        traced = torch.jit.trace(module, args, check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return loaded(*args)


def _export_safetensors(model: GlovitaModel, run: RestoredRun, batch: Batch, path: Path, use_ema: bool) -> Any:
    from safetensors.torch import load_file, save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"glovita_version": __version__, "format": "pt"})
    config = run.config.model_dump(mode="json")
    if run.config.peft.adapters:  # the weights are merged: they load into a model without adapters
        config["peft"] = FullFinetuningConfig().model_dump(mode="json")
    save_json(config, path.with_name("config.json"))
    reloaded = _plain_model(run, use_ema)
    reloaded.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        return LogitsModule(reloaded, batch.valid is not None)(batch.inputs, batch.valid)


def export_model(cfg: ExportConfig) -> Exported:
    """Write the model file and preprocessing.json into cfg.output_dir, after checking the export."""
    check_output_dir(cfg.output_dir)
    began = time.perf_counter()
    run = load_run(cfg.checkpoint_path)
    if cfg.format == "timm":
        from glovita.inference.timm_export import check_timm_export

        check_timm_export(run)
    model = _plain_model(run, cfg.use_ema)
    batch, modality = _samples(run, model, cfg.verify_samples)
    module = LogitsModule(model, batch.valid is not None).eval()
    with torch.no_grad():
        expected = _outputs(module(batch.inputs, batch.valid))
    path = cfg.output_dir / _FILES[cfg.format]
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    task = build_task(run.config.data)
    named = build_named_tasks(run.config.model, run.resolved.get("head_class_names") or {})
    if cfg.format == "onnx":
        _export_onnx(module, batch, modality.bags, task.dense, path, cfg.opset)
        got = _run_onnx(path, batch)
    elif cfg.format == "torchscript":
        got = _outputs(_export_torchscript(module, batch, path))
    elif cfg.format == "timm":
        from glovita.inference.timm_export import export_timm

        loaded = export_timm(model, run, cfg.output_dir)
        with torch.no_grad():
            got = [loaded(batch.inputs)]
    else:
        got = _outputs(_export_safetensors(model, run, batch, path, cfg.use_ema))
    difference = max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True))
    class_axis = 1 if task.dense else -1  # label maps (B, K, H, W) score the classes on axis 1
    classifying = [(got[0], expected[0], class_axis)] if task.classifies else []
    classifying += [(got[k + 1], expected[k + 1], -1) for k, head in enumerate(named) if head.task.classifies]
    agreement = min(
        (float((a.argmax(axis) == b.argmax(axis)).float().mean()) for a, b, axis in classifying), default=1.0
    )
    if difference > cfg.tolerance or agreement < 1.0:
        path.unlink(missing_ok=True)
        if cfg.format == "timm":
            (cfg.output_dir / "config.json").unlink(missing_ok=True)
        raise ValueError(
            f"The {cfg.format} export does not reproduce the model on {len(batch)} samples of the run's data: max "
            f"|logit difference| {difference:.3g} (tolerance {cfg.tolerance:g}), predicted class agrees on "
            f"{agreement:.1%}{' of pixels' if task.dense else ''}. Nothing was kept; try another --opset or format."
        )
    record = {
        "format": cfg.format,
        "model_file": path.name,
        "inputs": {
            "inputs": {
                "shape": ["batch", int(batch.inputs.shape[1]), *spatial_axis_names(len(batch.inputs.shape) - 2)]
                if task.dense
                else ["batch", *batch.inputs.shape[1:]],
                "dtype": "float32",
            },
            **(
                {"mask": {"shape": ["batch", *batch.valid.shape[1:]], "dtype": "bool"}}
                if batch.valid is not None
                else {}
            ),  # fmt: skip
        },
        "outputs": {
            "logits": {"shape": ["batch", int(expected[0].shape[1]), *spatial_axis_names(len(expected[0].shape) - 2)]}
            if task.dense
            else {"shape": ["batch", int(expected[0].shape[-1])]},
            **{
                f"{head.name}_logits": {
                    "shape": ["batch", head.task.num_outputs],
                    "task": head.task.name,
                    "probabilities": head.task.probabilities_text,
                    **({"class_names": head.names()} if head.task.classifies else {}),
                }
                for head in named
            },
        },
        "probabilities": task.probabilities_text,
        "task": run.config.data.task,
        "subtask": run.config.data.subtask,
        "class_names": list(run.resolved.get("class_names") or []),
        "preprocessing": run.resolved.get("augmentation") or {},
        "encoder_preprocessing": run.resolved.get("encoder_preprocessing") or {},
        "checkpoint": str(run.checkpoint_path),
        "weights": "ema" if cfg.use_ema else "model",
        "adapters_merged": run.config.peft.adapters,
        "verification": {
            "samples": len(batch),
            "max_abs_logit_difference": difference,
            "argmax_agreement": agreement,
        },  # fmt: skip
        "glovita_version": __version__,
    }
    preprocessing = cfg.output_dir / "preprocessing.json"
    save_json(record, preprocessing)
    print_line(
        f"{cfg.format} model -> {path} ({path.stat().st_size / 2**20:.1f} MB, {time.perf_counter() - began:.1f} s); "
        f"checked on {len(batch)} samples: max |logit difference| {difference:.2g}, same class {agreement:.0%}; "
        f"preprocessing -> {preprocessing}"
    )
    return Exported(path, preprocessing, difference, agreement, len(batch))
