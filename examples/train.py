"""Train a resnetc network on real images: one process, several, or several machines.

    python examples/train.py spec/cifar_resnet.resnet --set depth=20 --set width=8 \\
        --set image_size=8 --epochs 30                       # digits, the default dataset
    resnetc build spec/cifar_resnet.resnet -o out/resnet20.py
    python examples/train.py out/resnet20.py --data ~/data/cifar-10-batches-py --amp bf16
    torchrun --nproc_per_node=4 examples/train.py spec/cifar_resnet.resnet --data ... --sync-bn
    python examples/train.py ... --checkpoint run/last.pt          # written after each epoch
    python examples/train.py ... --checkpoint run/last.pt --resume run/last.pt

The model is the spec's ``create_model(num_classes, in_chans)``, sized for the dataset. See
docs/training.md for the options and for multi-node runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import trainlib


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train a .resnet spec (or a module from `resnetc build`) on digits or "
        "CIFAR-10; runs under torchrun for DistributedDataParallel.",
    )
    trainlib.add_model_args(parser)
    trainlib.add_data_args(parser)
    trainlib.add_train_args(parser)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> trainlib.TrainResult:
    """Everything ``main`` does, returning the trained model and its history (for tests and
    other scripts). Raises :class:`trainlib.ExampleError` for bad input."""
    if args.threads:
        torch.set_num_threads(args.threads)
    dist = trainlib.setup_distributed(args.device)
    try:
        trainlib.seed_everything(args.seed, args.deterministic)
        data = trainlib.load_data(args.data, seed=args.seed, image_size=args.image_size)
        model = trainlib.build_model(
            args.spec,
            overrides=trainlib.parse_overrides(args.overrides),
            network=args.network,
            num_classes=data.num_classes,
            in_chans=data.in_chans,
            zero_init_residual=args.zero_init_residual,
        )
        if dist.is_main:
            params = sum(p.numel() for p in model.parameters())
            print(
                f"{args.spec}: {params:,} parameters; {data.name}: {len(data.y_train):,} train / "
                f"{len(data.y_test):,} test images of {data.in_chans}x{data.size}x{data.size}; "
                f"{dist.world_size} process(es) on {dist.device}"
            )
        meta = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        return trainlib.train(
            model,
            data,
            trainlib.TrainConfig.from_args(args, data),
            dist,
            checkpoint=args.checkpoint,
            resume=args.resume,
            meta=meta,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    finally:
        trainlib.cleanup_distributed()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return trainlib.exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
