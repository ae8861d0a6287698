"""Video: the moving-digits generator, decoding and its errors, clip sampling, clip-consistent policies, video
encoders, the framewise head and the temporal-segmentation metrics."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from glovita.augmentation.policies.video import POLICIES, as_video
from glovita.augmentation.preprocessing import Preprocessing
from glovita.cli.make_moving_digits import main as make_moving_digits
from glovita.cli.train import main as train
from glovita.datasets.generic_video import VideoSample
from glovita.datasets.videos import VideoInfo, probe_video, read_frames
from glovita.metrics.framewise import FramewiseMetrics, edit_score, overlap_counts, segments
from glovita.modalities.video import ClipSampling
from glovita.models.heads.framewise_decoder_1d import FramewiseDecoder1dHead
from glovita.runtime.batch import Batch


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("video") / "md"
    make_moving_digits(["--output_dir", str(root), "--num_videos", "16", "--num_frames", "6", "--frame_size", "16",
                        "--digit_size", "8"])  # fmt: skip
    return root


def test_moving_digits_are_real_mp4_files_moving_as_labelled(clips: Path) -> None:
    splits = json.loads((clips / "splits.json").read_text())
    listed = sorted(i for ids in splits.values() for i in ids)
    assert listed == sorted(p.relative_to(clips / "videos").as_posix() for p in (clips / "videos").rglob("*.mp4"))
    assert len(listed) == 16 and all(splits[name] for name in ("train", "val", "test"))
    for video_id in listed:
        info = probe_video(clips / "videos" / video_id)
        assert (info.num_frames, info.height, info.width) == (6, 16, 16)
        frames = read_frames(info, range(6)).float().mean(-1)  # (T, H, W)
        # the digit is the bright part: its centre moves the way the folder says
        ys, xs = np.indices((16, 16))
        weights = (frames > frames.flatten(1).quantile(0.9, dim=1)[:, None, None]).float()
        centre_y = (weights * torch.from_numpy(ys)).sum((1, 2)) / weights.sum((1, 2))
        centre_x = (weights * torch.from_numpy(xs)).sum((1, 2)) / weights.sum((1, 2))
        move = {"down": centre_y, "up": -centre_y, "right": centre_x, "left": -centre_x}[video_id.split("/")[0]]
        assert float(move[-1] - move[0]) > 2, video_id


def test_framewise_labels_cover_every_frame(tmp_path: Path) -> None:
    make_moving_digits(["--output_dir", str(tmp_path / "f"), "--framewise", "--num_videos", "5", "--num_frames", "12",
                        "--frame_size", "16", "--digit_size", "8", "--min_segment_frames", "3"])  # fmt: skip
    with (tmp_path / "f" / "frame_labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    by_video: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        by_video.setdefault(row["video"], []).append((int(row["start_frame"]), int(row["end_frame"])))
    assert len(by_video) == 5
    for spans in by_video.values():
        covered = [t for start, end in spans for t in range(start, end + 1)]
        assert covered == list(range(12))
        assert min(end - start + 1 for start, end in spans) >= 3


def test_a_truncated_mp4_is_named_before_training(
    clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "md"
    shutil.copytree(clips, data)
    victim = data / "videos" / json.loads((clips / "splits.json").read_text())["val"][0]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(SystemExit) as stopped:
        train(["--data.dataset", "generic_video_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "4",
               "--model.encoder.encoder_type", "framewise_image", "--model.encoder.type", "test_resnet",
               "--model.encoder.no_pretrained", "--experiments_dir", str(tmp_path / "exp")])  # fmt: skip
    assert stopped.value.code != 0
    message = " ".join(capsys.readouterr().err.split())
    assert f"val: Cannot read video file '{victim}'" in message and "Replace or remove the file" in message


def test_decoding_past_a_damaged_frame_names_the_file_and_the_frame(clips: Path, tmp_path: Path) -> None:
    path = next((clips / "videos").rglob("*.mp4"))
    info = probe_video(path)
    lying = VideoInfo(path, 20, info.height, info.width)  # the header said more frames than the file holds
    with pytest.raises(ValueError) as raised:
        read_frames(lying, [0, 19])
    assert f"'{path}' ends at frame 6 but its header says 20 frames (frame 19 was needed)" in str(raised.value)


def _sample(frames: int) -> VideoSample:
    return VideoSample(VideoInfo(Path("v.mp4"), frames, 8, 8))


def test_clip_sampling_by_hand() -> None:
    sampling = ClipSampling(num_frames=4, frame_stride=2, clip_sampling="random", eval_clips=3, short_videos="pad")
    assert sampling.eval_indices(_sample(17)) == [[0, 2, 4, 6], [5, 7, 9, 11], [10, 12, 14, 16]]
    torch.manual_seed(0)
    for _ in range(20):
        clip = sampling.train_indices(_sample(17), 0.0)
        assert np.diff(clip).tolist() == [2, 2, 2] and 0 <= clip[0] <= 10
    assert sampling.eval_indices(_sample(5)) == [[0, 2, 4, 4]] * 3  # padded with the last frame
    uniform = ClipSampling(4, 1, "uniform", 1, "pad")
    assert uniform.eval_indices(_sample(40)) == [[5, 15, 25, 35]]
    strict = ClipSampling(4, 2, "random", 1, "error")
    with pytest.raises(ValueError, match="'v.mp4' has 5 frames, fewer than a clip spans \\(7"):
        strict.train_indices(_sample(5), 0.0)


def test_policies_transform_every_frame_of_a_clip_alike() -> None:
    params = Preprocessing(12, 14, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
    frame = torch.randint(0, 255, (1, 16, 16, 3), dtype=torch.uint8)
    clip = as_video(frame.repeat(5, 1, 1, 1))
    for name, make in POLICIES.items():
        torch.manual_seed(3)
        out = make(params).spatial(clip)
        assert out.shape == (5, 3, 12, 12), name
        assert torch.equal(out[0], out[4]), name
    torch.manual_seed(1)
    first = POLICIES["default_video_1"](params).spatial(clip)
    torch.manual_seed(2)
    assert not torch.equal(first, POLICIES["default_video_1"](params).spatial(clip))


def test_video_encoders_average_the_clips_of_a_video() -> None:
    from glovita.models.video_encoder.framewise_image import FramewiseImageEncoder
    from glovita.models.video_encoder.torchvision_video import TorchvisionVideoEncoder

    clips = torch.randn(2, 3, 3, 4, 16, 16)  # 2 videos x 3 clips of 4 frames
    for encoder in (TorchvisionVideoEncoder("r3d_18", False, None, 3, {}),
                    FramewiseImageEncoder("test_resnet", False, None, 3, {}, None, "attention")):  # fmt: skip
        encoder.eval()
        with torch.no_grad():
            per_clip = torch.stack([encoder(clips[:, k]) for k in range(3)], dim=1)
            torch.testing.assert_close(encoder(clips), per_clip.mean(1), atol=1e-5, rtol=1e-5)
        assert per_clip.shape == (2, 3, encoder.out_dim)
    frames = FramewiseImageEncoder("test_resnet", False, None, 3, {}, None, "avg").eval()
    with torch.no_grad():
        per_frame = frames.forward_frames(clips[:, 0])
        assert per_frame.shape == (2, 4, frames.out_dim)
        torch.testing.assert_close(frames(clips[:, 0]), per_frame.mean(1))


def test_video_weights_are_never_downloaded() -> None:
    from glovita.models.video_encoder.torchvision_video import TorchvisionVideoEncoder

    with pytest.raises(FileNotFoundError, match="torchvision model 'r3d_18'.*never downloads.*pretrained_path"):
        TorchvisionVideoEncoder("r3d_18", True, None, 3, {})


def test_pytorchvideo_models_build_without_the_hub() -> None:
    pytest.importorskip("pytorchvideo")
    from glovita.models.video_encoder.pytorchvideo_encoder import PytorchvideoEncoder

    encoder = PytorchvideoEncoder("x3d_xs", None, 3, {}).eval()
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 4, 160, 160))
    assert features.shape == (1, encoder.out_dim) and encoder.out_dim == 2048
    assert encoder.preprocessing.image_size == 160


def test_segmentation_metrics_by_hand() -> None:
    truth = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    guess = [0, 0, 1, 1, 1, 1, 1, 1, 2, 2]
    assert segments(truth) == [(0, 0, 3), (1, 3, 7), (2, 7, 10)]
    assert edit_score(guess, truth) == 100.0
    assert edit_score([0, 0, 1, 0, 1, 2], truth) == pytest.approx(100 * (1 - 2 / 5))
    # IoUs: class 0 2/3, class 1 4/6, class 2 2/3 -> all match at 0.5, none at 0.7
    assert overlap_counts(guess, truth, 0.5) == (3, 0, 0)
    assert overlap_counts(guess, truth, 0.7) == (0, 3, 3)
    metrics = FramewiseMetrics(3, torch.device("cpu"))
    logits = torch.nn.functional.one_hot(torch.tensor([guess + [0, 0]]), 3).float()
    metrics.update(logits, torch.tensor([truth + [-100, -100]]))  # padding is not scored
    values = metrics.compute()
    assert values["accuracy"] == pytest.approx(0.8)
    assert values["f1_class_1"] == pytest.approx(2 * 4 / (4 + 6))
    assert (values["edit"], values["f1_at_50"]) == (100.0, 100.0)


def test_framewise_head_ignores_padded_frames() -> None:
    torch.manual_seed(0)
    head = FramewiseDecoder1dHead(8, 3, num_stages=2, num_layers=3, hidden_dim=8, dropout=0.0,
                                  smoothing_weight=0.15, smoothing_clamp=4.0).eval()  # fmt: skip
    features = torch.randn(1, 10, 8)
    targets = torch.randint(0, 3, (1, 10))
    short = Batch(features[:, :6], targets[:, :6], torch.ones(1, 6, dtype=torch.bool))
    padded_features = torch.cat([features[:, :6], 100 * torch.randn(1, 4, 8)], dim=1)
    padded_targets = torch.cat([targets[:, :6], torch.full((1, 4), -100)], dim=1)
    mask = torch.arange(10)[None] < 6
    padded = Batch(padded_features, padded_targets, mask)
    out_short, out_padded = head(short.inputs, short.valid), head(padded.inputs, padded.valid)
    assert out_padded.shape == (2, 1, 10, 3)
    torch.testing.assert_close(out_padded[:, :, :6], out_short, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(head.loss(out_padded, padded), head.loss(out_short, short), atol=1e-5, rtol=1e-5)
