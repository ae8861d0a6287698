"""The reference: a plain hand-written PyTorch training loop on the digits train/val images.

torchvision ImageFolder + DataLoader, timm resnet18, AdamW, cross-entropy, validation every epoch: what a user
writes by hand. Prints one JSON line with per-epoch training throughput and total wall time.
"""

import argparse
import json
import time

import timm
import torch
import torch.nn.functional as F
from torchvision import datasets, transforms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_dir", required=True)
    parser.add_argument("--val_dir", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["32", "bf16-mixed", "16-mixed"], default="32")
    parser.add_argument("--channels_last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(0)
    device = torch.device(args.device)
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=args.precision == "16-mixed")
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    tf = transforms.Compose(
        [
            transforms.Grayscale(3),
            transforms.Resize(args.image_size),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    train = datasets.ImageFolder(args.train_dir, transform=tf)
    val = datasets.ImageFolder(args.val_dir, transform=tf)
    pin = device.type == "cuda"
    train_loader = torch.utils.data.DataLoader(
        train, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True, pin_memory=pin
    )
    val_loader = torch.utils.data.DataLoader(val, batch_size=args.batch_size, num_workers=args.workers, pin_memory=pin)
    model = timm.create_model(args.model, pretrained=False, num_classes=len(train.classes))
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    forward = torch.compile(model) if args.compile else model

    def autocast():  # the same mixed precision as glovita_train's --training.precision
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))
    rates = []
    accuracy = 0.0
    for _ in range(args.epochs):
        model.train()
        seen, epoch_start = 0, time.perf_counter()
        for images, targets in train_loader:
            images = images.to(device, non_blocking=pin).contiguous(memory_format=memory_format)
            targets = targets.to(device, non_blocking=pin)
            with autocast():
                loss = F.cross_entropy(forward(images), targets)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            seen += images.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(seen / (time.perf_counter() - epoch_start))
        model.eval()
        correct = total = 0
        with torch.no_grad(), autocast():
            for images, targets in val_loader:
                images = images.to(device).contiguous(memory_format=memory_format)
                correct += (forward(images).argmax(1).cpu() == targets).sum().item()
                total += targets.numel()
        accuracy = correct / total
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    print(json.dumps({"rates": rates, "wall_seconds": time.perf_counter() - start, "val_accuracy": accuracy,
                      "cuda_peak_memory_gb": peak}))  # fmt: skip


if __name__ == "__main__":
    main()
