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
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(0)
    tf = transforms.Compose(
        [
            transforms.Grayscale(3),
            transforms.Resize(32),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    train = datasets.ImageFolder(args.train_dir, transform=tf)
    val = datasets.ImageFolder(args.val_dir, transform=tf)
    train_loader = torch.utils.data.DataLoader(
        train, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True
    )
    val_loader = torch.utils.data.DataLoader(val, batch_size=args.batch_size, num_workers=args.workers)
    model = timm.create_model(args.model, pretrained=False, num_classes=len(train.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(train_loader))
    rates = []
    accuracy = 0.0
    for _ in range(args.epochs):
        model.train()
        seen, epoch_start = 0, time.perf_counter()
        for images, targets in train_loader:
            loss = F.cross_entropy(model(images), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            seen += images.shape[0]
        rates.append(seen / (time.perf_counter() - epoch_start))
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, targets in val_loader:
                correct += (model(images).argmax(1) == targets).sum().item()
                total += targets.numel()
        accuracy = correct / total
    print(json.dumps({"rates": rates, "wall_seconds": time.perf_counter() - start, "val_accuracy": accuracy}))


if __name__ == "__main__":
    main()
