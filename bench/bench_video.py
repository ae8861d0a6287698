"""Video, measured on this machine.

1. Loading: decoded clips per second of GloViTa's video loader (generic_video_dataset, evaluation clips through
   the modality's pipeline: PyAV decode, frame selection, resize/crop, normalisation, collate) against a bare loop
   that decodes the same frames of the same files with PyAV and normalises them with torch, in the same process,
   alternated over rounds (median reported). Both stop decoding after the clip's last frame.
2. Training step: seconds per clip of one r3d_18 step (forward, loss, backward, AdamW) at 8x112x112 through
   GloViTa's model and step (encoder + classification head owning its loss, SupervisedStep) against a bare
   torchvision r3d_18 with a linear layer and cross-entropy, same batch, alternated.

    .venv/bin/python bench/bench_video.py                   # both parts
    .venv/bin/python bench/bench_video.py --part load --videos 32
"""

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _glovita_clips(root: Path, frames: int, stride: int, batch: int) -> int:
    from glovita.augmentation.preprocessing import Preprocessing
    from glovita.configs.data import GenericVideoDatasetConfig
    from glovita.datasets.factory import build_datasets
    from glovita.runtime.loaders import ResolvedDataloading, one_pass_loader

    cfg = GenericVideoDatasetConfig(data_root_dir=root, num_classes=4, num_frames=frames, frame_stride=stride,
                                    check_files=False)  # fmt: skip
    splits = build_datasets(cfg, 3)
    size = 112
    pipeline = splits.modality.pipeline(Preprocessing(size, size, (0.43, 0.39, 0.37), (0.22, 0.22, 0.21),
                                                              "bilinear", None), 3)  # fmt: skip
    loading = ResolvedDataloading(batch, batch, 0, False, False, None, False)
    count = 0
    for batch_of in one_pass_loader(pipeline.eval_dataset(splits.train), loading, splits.modality.collate):
        count += batch_of.inputs.shape[0]
    return count


def _bare_clips(root: Path, frames: int, stride: int, batch: int) -> int:
    import json

    import av

    ids = json.loads((root / "splits.json").read_text())["train"]
    mean = torch.tensor((0.43, 0.39, 0.37))[:, None, None, None]
    std = torch.tensor((0.22, 0.22, 0.21))[:, None, None, None]
    wanted = [i * stride for i in range(frames)]
    clips = []
    count = 0
    for video_id in ids:
        with av.open(str(root / "videos" / video_id)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            decoded = []
            for position, frame in enumerate(container.decode(stream)):
                if position in wanted:
                    decoded.append(frame.to_ndarray(format="rgb24"))
                if position >= wanted[-1]:
                    break
        clip = torch.from_numpy(np.stack(decoded)).permute(3, 0, 1, 2).float().div(255)
        clips.append((clip - mean) / std)
        if len(clips) == batch:
            count += torch.stack(clips).shape[0]
            clips = []
    return count + (torch.stack(clips).shape[0] if clips else 0)


def bench_load(videos: int, rounds: int) -> None:
    from glovita.configs.moving_digits import MovingDigitsConfig
    from glovita.datasets.moving_digits import make_moving_digits

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "md"
        make_moving_digits(MovingDigitsConfig(output_dir=root, num_videos=videos, num_frames=32, frame_size=112,
                                              digit_size=48))  # fmt: skip
        rates: dict[str, list[float]] = {"glovita": [], "bare": []}
        for _ in range(rounds):
            for name, run in (("glovita", _glovita_clips), ("bare", _bare_clips)):
                began = time.perf_counter()
                clips = run(root, 8, 2, 8)
                rates[name].append(clips / (time.perf_counter() - began))
        glovita, bare = statistics.median(rates["glovita"]), statistics.median(rates["bare"])
        print(f"load: {clips} clips of 8x112x112 (stride 2) per round, {rounds} rounds, median clips/s: "
              f"glovita {glovita:.1f}, bare PyAV {bare:.1f}, ratio {glovita / bare:.2f}x")  # fmt: skip


def bench_step(batch: int, steps: int, rounds: int) -> None:
    import torch.nn.functional as F
    from torchvision.models.video import r3d_18

    from glovita.configs.model import ModelConfig, TorchvisionVideoEncoderConfig
    from glovita.configs.peft import FullFinetuningConfig
    from glovita.models.factory import build_model
    from glovita.runtime.batch import Batch
    from glovita.training.steps.base import StepContext
    from glovita.training.steps.supervised import SupervisedStep

    torch.manual_seed(0)
    inputs = torch.randn(batch, 3, 8, 112, 112)
    targets = torch.randint(0, 4, (batch,))
    config = ModelConfig(encoder=TorchvisionVideoEncoderConfig(pretrained=False))
    model = build_model(config, FullFinetuningConfig(), 4, 0.0).train()
    step = SupervisedStep(None)
    context = StepContext(model, contextlib.nullcontext)
    glovita_opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    bare = r3d_18()
    bare.fc = torch.nn.Linear(512, 4)
    bare.train()
    bare_opt = torch.optim.AdamW(bare.parameters(), lr=1e-4)

    def glovita_step() -> None:
        out = step.train_step(model, Batch(inputs, targets), context)
        glovita_opt.zero_grad(set_to_none=True)
        out.loss.backward()
        glovita_opt.step()

    def bare_step() -> None:
        loss = F.cross_entropy(bare(inputs), targets)
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        bare_opt.step()

    glovita_step(), bare_step()  # warm-up
    seconds: dict[str, list[float]] = {"glovita": [], "bare": []}
    for _ in range(rounds):
        for name, run in (("glovita", glovita_step), ("bare", bare_step)):
            began = time.perf_counter()
            for _ in range(steps):
                run()
            seconds[name].append((time.perf_counter() - began) / (steps * batch))
    glovita, plain = statistics.median(seconds["glovita"]), statistics.median(seconds["bare"])
    print(
        f"step: r3d_18, batch {batch} of 8x112x112, {steps} steps x {rounds} rounds, median s/clip: glovita "
        f"{glovita:.3f}, bare {plain:.3f}, ratio {glovita / plain:.2f}x (threads {torch.get_num_threads()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["load", "step", "all"], default="all")
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("load", "all"):
        bench_load(args.videos, args.rounds)
    if args.part in ("step", "all"):
        bench_step(args.batch, args.steps, args.rounds)


if __name__ == "__main__":
    main()
