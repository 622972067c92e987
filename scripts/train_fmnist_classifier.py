"""Train the small Fashion-MNIST classifier used as the offline `fmnist` feature network.

Reads Fashion-MNIST from the Debian package (`apt-get install dataset-fashion-mnist`), trains
`stylegan.metrics.fmnist_net.FashionMnistNet` on the 60k training images (random shifts and
horizontal flips), evaluates on the 10k test images and writes

    src/stylegan/metrics/weights/fmnist_classifier.safetensors   (float32, < 1 MB)
    src/stylegan/metrics/weights/fmnist_classifier.json          (test accuracy, settings)

Run (about 10 minutes on 2 idle CPU cores):

    .venv/bin/python scripts/train_fmnist_classifier.py --epochs 6
"""
from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from stylegan.metrics.atomic import atomic_save_safetensors, atomic_write_text
from stylegan.data.fashion_mnist import FASHION_MNIST_DIR
from stylegan.metrics.preprocess import prepare
from stylegan.metrics.fmnist_net import INFO_FILE, WEIGHTS_FILE, FashionMnistNet, fashion_mnist_tensors


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift by up to 2 pixels, random horizontal flip, and for half of the batches the
    32x32 padded layout (2-pixel border, as `stylegan dataset` writes Fashion-MNIST) brought back to
    28x28 by the network's own resize, so both layouts give the same features."""
    n = images.shape[0]
    padded = F.pad(images, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=generator).tolist()
    out = padded[:, :, dy:dy + 28, dx:dx + 28]
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.where(flip.view(n, 1, 1, 1), out.flip(3), out)
    if torch.rand(1, generator=generator).item() < 0.5:
        out = prepare(F.pad(out, (2, 2, 2, 2)), 28, 1).mul(255).round().to(torch.uint8)
    return out


@torch.no_grad()
def accuracy(net: FashionMnistNet, images: torch.Tensor, labels: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    correct = 0
    for i in range(0, len(images), batch):
        _, logits = net(images[i:i + batch])
        correct += int((logits.argmax(1) == labels[i:i + batch]).sum())
    return correct / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--data", default=str(FASHION_MNIST_DIR), help="folder with the *-ubyte.gz files")
    parser.add_argument("--out", default=str(WEIGHTS_FILE))
    parser.add_argument("--info", default=str(INFO_FILE))
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    train_x, train_y = fashion_mnist_tensors("train", args.data)
    test_x, test_y = fashion_mnist_tensors("t10k", args.data)

    net = FashionMnistNet()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    steps_per_epoch = len(train_x) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train_x), generator=gen)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch:(step + 1) * args.batch]
            _, logits = net(augment(train_x[idx], gen))
            loss = F.cross_entropy(logits, train_y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        acc = accuracy(net, test_x, test_y)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / steps_per_epoch:.4f}, "
              f"test accuracy {acc:.4f}, {time.time() - start:.0f} s", flush=True)

    test_acc = accuracy(net, test_x, test_y)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    atomic_save_safetensors(args.out, state, metadata={"format": "pt", "network": "FashionMnistNet"})
    info = dict(test_accuracy=round(test_acc, 4), test_images=len(test_x), train_images=len(train_x),
                epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed,
                parameters=sum(v.numel() for v in state.values() if v.is_floating_point()),
                dataset="Fashion-MNIST (Debian package dataset-fashion-mnist)",
                script="scripts/train_fmnist_classifier.py")
    atomic_write_text(args.info, json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
