"""Fine-tune a resnetc network from a torchvision-layout state_dict on a new set of classes.

    python examples/finetune.py spec/resnet18.resnet --weights resnet18-f37072fd.pth \\
        --num-classes 10 --freeze stem,layer1,layer2 --image-size 64 --epochs 5
    python examples/finetune.py spec/cifar_resnet.resnet --set image_size=8 \\
        --weights run/last.pt --num-classes 5 --freeze stem,layer1

The weights load with ``strict=True`` into the spec's network built with the file's own class
count and input channels (resnetc's zoo has torchvision's module tree, so torchvision's
``.pth`` files load as they are); then the classifier is replaced by a fresh one for
``--num-classes``, the ``--freeze`` parts stop learning (their BatchNorm statistics too), and
the rest trains with the options of ``train.py``. With fewer classes than the dataset, the
first ``--num-classes`` classes are used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import trainlib
from torch import nn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load torchvision-layout weights into a resnetc network, replace its "
        "classifier, freeze some stages, and fine-tune.",
    )
    trainlib.add_model_args(parser)
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        help="a state_dict (.pth) in torchvision's layout, or a checkpoint from train.py",
    )
    parser.add_argument("--num-classes", type=int, required=True, help="classes of the new head")
    parser.add_argument(
        "--freeze",
        default="",
        help="comma-separated parts to keep fixed: `stem` (everything before the first stage) "
        "and any module name such as layer1 or layer3.0",
    )
    parser.add_argument("--output", type=Path, help="save the fine-tuned state_dict here")
    trainlib.add_data_args(parser)
    trainlib.add_train_args(parser)
    parser.set_defaults(epochs=10, lr=0.01)
    return parser.parse_args(argv)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.pth`` file: a bare state_dict, or one under ``model`` (train.py's
    checkpoints) or ``state_dict``; a DDP ``module.`` prefix is dropped."""
    if not path.is_file():
        raise trainlib.ExampleError(f"weights file not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}


def stem_modules(model: nn.Module) -> list[nn.Module]:
    """The top-level modules before the first stage (an ``nn.Sequential`` of blocks)."""
    stem = []
    for module in model.children():
        if isinstance(module, nn.Sequential):
            break
        stem.append(module)
    return stem


def freeze(model: nn.Module, names: list[str]) -> list[nn.Module]:
    """Stop the named parts learning (``requires_grad_(False)``); returns their modules, which
    the training loop keeps in eval mode so BatchNorm statistics stay as loaded."""
    frozen: list[nn.Module] = []
    for name in names:
        if name == "stem":
            frozen += stem_modules(model)
            continue
        try:
            frozen.append(model.get_submodule(name))
        except AttributeError:
            available = ", ".join(["stem", *(n for n, _ in model.named_children())])
            raise trainlib.ExampleError(
                f"--freeze: the model has no part {name!r} (top level: {available})"
            ) from None
    for module in frozen:
        module.requires_grad_(False)
    return frozen


def load_pretrained(args: argparse.Namespace) -> nn.Module:
    """The spec's network with the weights loaded (strictly) and a new classifier."""
    state = read_state_dict(args.weights)
    # The file decides the network's class count (the last 2-D weight: the classifier) and
    # input channels (the first 4-D weight: the stem's convolution).
    head_key = [k for k, v in state.items() if k.endswith(".weight") and v.dim() == 2]
    stem_key = [k for k, v in state.items() if v.dim() == 4]
    if not head_key or not stem_key:
        raise trainlib.ExampleError(f"{args.weights} holds no convolution and linear weights")
    model = trainlib.build_model(
        args.spec,
        overrides=trainlib.parse_overrides(args.overrides),
        network=args.network,
        num_classes=state[head_key[-1]].shape[0],
        in_chans=state[stem_key[0]].shape[1],
    )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise trainlib.ExampleError(
            f"the weights in {args.weights} do not fit {args.spec}:\n{exc}"
        ) from None
    head = trainlib.classifier_path(model)
    old = model.get_submodule(head)
    assert isinstance(old, nn.Linear)
    trainlib.replace_module(model, head, nn.Linear(old.in_features, args.num_classes))
    return model


def run(args: argparse.Namespace) -> trainlib.TrainResult:
    if args.threads:
        torch.set_num_threads(args.threads)
    dist = trainlib.setup_distributed(args.device)
    try:
        trainlib.seed_everything(args.seed, args.deterministic)
        model = load_pretrained(args)
        data = trainlib.load_data(args.data, seed=args.seed, image_size=args.image_size)
        if args.num_classes != data.num_classes:
            data = trainlib.keep_classes(data, args.num_classes)
        in_chans = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
        data = trainlib.match_channels(data, in_chans)
        frozen = freeze(model, [n.strip() for n in args.freeze.split(",") if n.strip()])
        cfg = trainlib.TrainConfig.from_args(args, data)
        if dist.is_main:
            _, acc = trainlib.evaluate(
                model.to(dist.device), data, trainlib.Dist(device=dist.device)
            )
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
            total = sum(p.numel() for p in model.parameters())
            print(
                f"{args.weights} -> {args.spec}: {trainable:,} of {total:,} parameters train; "
                f"{data.name}: {len(data.y_train):,} train images; test accuracy before "
                f"fine-tuning {100 * acc:.1f}% (new head)"
            )
        result = trainlib.train(
            model,
            data,
            cfg,
            dist,
            checkpoint=args.checkpoint,
            resume=args.resume,
            frozen=frozen,
            meta={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            progress=not args.quiet and sys.stderr.isatty(),
        )
        if args.output is not None and dist.is_main:
            trainlib.save_checkpoint(args.output, result.model.state_dict())
            print(f"wrote {args.output}")
        return result
    finally:
        trainlib.cleanup_distributed()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return trainlib.exit_status(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
