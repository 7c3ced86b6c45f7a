"""The operations a layer can be: their options, output shapes, parameter and MAC counts.

Everything here is pure arithmetic on shapes ``(C, H, W)`` (or ``(F,)`` once flattened), so the
cost model and shape inference never need torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]


class ShapeError(Exception):
    """An op cannot take the shape it is given; the message says why."""


@dataclass(frozen=True)
class OpSpec:
    """What the syntax of one op kind accepts and how it computes."""

    kind: str
    options: dict[str, tuple[str, Any]] = field(default_factory=dict)  # name -> (type, default)
    kernel: bool = False  # takes KxK
    stride: bool = False  # takes /s
    out: str = "no"  # "required", "optional" or "no": takes -> C
    arg: str | None = None  # name of the positional argument, if any
    arg_type: str = "float"
    parametric: bool = False  # has weights, so it needs a name
    spatial: bool = True  # needs a (C, H, W) input


_ACT = (
    "relu",
    "relu6",
    "silu",
    "gelu",
    "sigmoid",
    "tanh",
    "identity",
    "hard_sigmoid",
    "hard_swish",
)
_CONV_OPTIONS: dict[str, tuple[str, Any]] = {
    "groups": ("int", 1),
    "dilation": ("int", 1),
    "padding": ("int", None),
    "bias": ("bool", False),
}

OPS: dict[str, OpSpec] = {
    "conv": OpSpec(
        "conv", _CONV_OPTIONS, kernel=True, stride=True, out="required", parametric=True
    ),
    # Weight-standardised conv (BiT): each filter is normalised to zero mean, unit variance.
    "ws_conv": OpSpec(
        "ws_conv",
        {**_CONV_OPTIONS, "eps": ("float", 1e-6)},
        kernel=True,
        stride=True,
        out="required",
        parametric=True,
    ),
    # ECA's 1-D conv across the channels of a pooled Cx1x1 map (kernel size as the argument).
    "channel_conv": OpSpec(
        "channel_conv", arg="size", arg_type="int", parametric=True, spatial=True
    ),
    "bn": OpSpec("bn", {"eps": ("float", 1e-5), "momentum": ("float", 0.1)}, parametric=True),
    "frozen_bn": OpSpec("frozen_bn", {"eps": ("float", 1e-5)}, parametric=True),
    "gn": OpSpec("gn", {"groups": ("int", 32), "eps": ("float", 1e-5)}, parametric=True),
    # EvoNorm-S0 (Liu et al. 2020): x * sigmoid(v * x) / group_std(x), then an affine; with
    # `act = false` only the affine (no `v`), as timm's EvoNorm2dS0(apply_act=False).
    "evonorm_s0": OpSpec(
        "evonorm_s0",
        {"groups": ("int", 32), "eps": ("float", 1e-5), "act": ("bool", True)},
        parametric=True,
    ),
    # Filter Response Normalization with its Thresholded Linear Unit (Singh & Krishnan 2020):
    # x / rms(x) over each map, an affine, then max(x, tau); `act = false` leaves out tau.
    "frn": OpSpec("frn", {"eps": ("float", 1e-5), "act": ("bool", True)}, parametric=True),
    # A fixed binomial low-pass filter, then subsampling (anti-aliased downsampling).
    "blur_pool": OpSpec("blur_pool", {"size": ("int", 3), "reflect": ("bool", True)}, stride=True),
    "pad": OpSpec("pad", {"value": ("float", 0.0)}, arg="amount", arg_type="int"),
    "global_maxpool": OpSpec("global_maxpool"),
    "channel_mean": OpSpec("channel_mean"),
    "channel_max": OpSpec("channel_max"),
    # Softmax over `paths` parallel branches (ResNeSt's radix softmax, SK's path softmax), in
    # `groups` independent groups; channels come in as (groups, paths, C) and go out as
    # (paths, groups, C), ready for split(..., paths).
    "softmax": OpSpec("softmax", {"paths": ("int", 2), "groups": ("int", 1)}),
    "zero_pad": OpSpec("zero_pad", stride=True, out="required"),
    "maxpool": OpSpec(
        "maxpool",
        {"padding": ("int", None), "ceil_mode": ("bool", False)},
        kernel=True,
        stride=True,
    ),
    "avgpool": OpSpec(
        "avgpool",
        {
            "padding": ("int", None),
            "ceil_mode": ("bool", False),
            "count_include_pad": ("bool", True),
        },
        kernel=True,
        stride=True,
    ),
    "global_avgpool": OpSpec("global_avgpool"),
    "flatten": OpSpec("flatten"),
    "linear": OpSpec(
        "linear", {"bias": ("bool", True)}, out="required", parametric=True, spatial=False
    ),
    "dropout": OpSpec("dropout", arg="p", spatial=False),
    "drop_path": OpSpec("drop_path", arg="rate", spatial=False),
    **{a: OpSpec(a, spatial=False) for a in _ACT},
}

#: Ops that are not layers: the graph's input and what values combine by (``a + b``, ``a * b``,
#: ``concat(...)``, ``split(...)``); a spec reaches them through expressions, not by name.
INTERNAL = ("input", "add", "mul", "concat", "slice")

#: Ops whose weights are conv filters (for initialisation, folding and zero-init).
CONVS = ("conv", "ws_conv")


def default_padding(kernel: int, dilation: int = 1) -> int:
    """'Same' padding for odd kernels: what torchvision's conv3x3 and the stem use."""
    return (kernel - 1) // 2 * dilation


def _window(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool = False) -> int:
    # PyTorch's formula, including ceil mode's partial last window.
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # PyTorch drops a last window that would start in the right padding
    if out < 1:
        raise ShapeError(f"a {k}x{k} window (dilation {d}, padding {p}) does not fit in {size}")
    return out


def _spatial(shape: Shape, kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"{kind} needs a CxHxW input, but its input is flat ({shape[0]} features)")
    return shape  # type: ignore[return-value]


def out_shape(kind: str, a: dict[str, Any], shape: Shape) -> Shape:
    """The output shape of op ``kind`` with attributes ``a`` on input ``shape``."""
    return _SHAPES.get(kind, _same)(a, shape, kind)


def _same(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    return shape


def _conv_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, h, w = _spatial(shape, kind)
    g = a["groups"]
    if g < 1 or c % g or a["out"] % g:
        raise ShapeError(
            f"groups={g} must divide both the input channels ({c}) "
            f"and the output channels ({a['out']})"
        )
    kh, kw = a["kernel"]
    s, d, (ph, pw) = a["stride"], a["dilation"], a["padding"]
    return (a["out"], _window(h, kh, s, ph, d), _window(w, kw, s, pw, d))


def _pool_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, h, w = _spatial(shape, kind)
    kh, kw = a["kernel"]
    s, (ph, pw) = a["stride"], a["padding"]
    if 2 * ph > kh or 2 * pw > kw:
        raise ShapeError(f"padding {ph} must be at most half the {kh}x{kw} window")
    cm = a["ceil_mode"]
    return (c, _window(h, kh, s, ph, 1, cm), _window(w, kw, s, pw, 1, cm))


def _gap_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, _, _ = _spatial(shape, kind)
    return (c, 1, 1)


def _flatten_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    return (math.prod(shape),)


def _linear_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    if len(shape) != 1:
        raise ShapeError(
            f"linear needs flat features, but its input is {fmt_shape(shape)}; "
            "put `flatten` (after `global_avgpool`) before it"
        )
    return (a["out"],)


def _spatial_same(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    # Norms keep the shape but need a CxHxW input (BatchNorm2d, GroupNorm).
    c, _, _ = _spatial(shape, kind)
    if kind in ("gn", "evonorm_s0") and (a["groups"] < 1 or c % a["groups"]):
        raise ShapeError(f"{kind}: groups={a['groups']} must divide the channels ({c})")
    return shape


def _channel_conv_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, h, w = _spatial(shape, kind)
    if (h, w) != (1, 1):
        raise ShapeError(
            f"channel_conv runs along the channels of a pooled Cx1x1 map, not {fmt_shape(shape)}"
        )
    if a["size"] < 1 or a["size"] % 2 == 0:
        raise ShapeError(f"channel_conv needs an odd size, got {a['size']}")
    return shape


def _blur_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, h, w = _spatial(shape, kind)
    k, s = a["size"], a["stride"]
    if k < 2:
        raise ShapeError(f"blur_pool needs a filter size of at least 2, got {k}")
    p = blur_padding(k, s)
    if a["reflect"] and min(h, w) <= p:
        raise ShapeError(f"reflect padding of {p} needs a map larger than {h}x{w}")
    return (c, _window(h, k, s, p, 1), _window(w, k, s, p, 1))


def blur_padding(size: int, stride: int) -> int:
    """The padding on each side of a blur pool (timm's ``get_padding``)."""
    return (stride - 1 + size - 1) // 2


def _pad_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, h, w = _spatial(shape, kind)
    p = a["amount"]
    return (c, h + 2 * p, w + 2 * p)


def _channel_pool_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    _, h, w = _spatial(shape, kind)
    return (1, h, w)


def _softmax_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c = shape[0]
    paths, groups = a["paths"], a["groups"]
    if paths < 1 or groups < 1 or c % (paths * groups):
        raise ShapeError(
            f"softmax over {paths} paths in {groups} groups needs channels divisible by "
            f"{paths * groups}, got {c}"
        )
    return shape


def _slice_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    if a["start"] + a["size"] > shape[0]:
        raise ShapeError(f"channels {a['start']}..{a['start'] + a['size']} of {shape[0]}")
    return (a["size"], *shape[1:])


def combine_shapes(kind: str, shapes: list[Shape]) -> Shape:
    """The output shape of ``add``, ``mul`` or ``concat`` over its inputs' shapes."""
    if kind == "concat":
        first = shapes[0]
        for other in shapes[1:]:
            if len(other) != len(first) or other[1:] != first[1:]:
                raise ShapeError(
                    "concat needs the same spatial size on every input, got "
                    + ", ".join(fmt_shape(s) for s in shapes)
                )
        return (sum(s[0] for s in shapes), *first[1:])
    out = shapes[0]
    for other in shapes[1:]:
        merged = _broadcast(out, other) if kind == "mul" else (out if out == other else None)
        if merged is None:
            verb = "multiply" if kind == "mul" else "add"
            raise ShapeError(
                f"cannot {verb} "
                + " and ".join(fmt_shape(s) for s in shapes)
                + (" (a gate must be Cx1x1, 1xHxW or the same shape)" if kind == "mul" else "")
            )
        out = merged
    return out


def _broadcast(a: Shape, b: Shape) -> Shape | None:
    if len(a) != len(b):
        return None
    dims = []
    for x, y in zip(a, b, strict=True):
        if x != y and 1 not in (x, y):
            return None
        dims.append(max(x, y))
    return tuple(dims)


def _zero_pad_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    c, h, w = _spatial(shape, kind)
    if a["out"] < c:
        raise ShapeError(f"a zero-pad shortcut cannot reduce channels ({c} -> {a['out']})")
    s = a["stride"]
    return (a["out"], -(-h // s), -(-w // s))


_SHAPES: dict[str, Callable[[dict[str, Any], Shape, str], Shape]] = {
    "conv": _conv_shape,
    "maxpool": _pool_shape,
    "avgpool": _pool_shape,
    "global_avgpool": _gap_shape,
    "flatten": _flatten_shape,
    "linear": _linear_shape,
    "bn": _spatial_same,
    "frozen_bn": _spatial_same,
    "gn": _spatial_same,
    "evonorm_s0": _spatial_same,
    "frn": _spatial_same,
    "ws_conv": _conv_shape,
    "channel_conv": _channel_conv_shape,
    "blur_pool": _blur_shape,
    "pad": _pad_shape,
    "global_maxpool": _gap_shape,
    "channel_mean": _channel_pool_shape,
    "channel_max": _channel_pool_shape,
    "softmax": _softmax_shape,
    "slice": _slice_shape,
    "zero_pad": _zero_pad_shape,
}


def params(kind: str, a: dict[str, Any], inp: Shape, out: Shape) -> int:
    """Trainable parameters (BN running statistics are buffers, not parameters)."""
    if kind in CONVS:
        kh, kw = a["kernel"]
        return kh * kw * (inp[0] // a["groups"]) * out[0] + (out[0] if a["bias"] else 0)
    if kind in ("bn", "gn"):
        return 2 * inp[0]
    if kind in ("evonorm_s0", "frn"):
        return (3 if a["act"] else 2) * inp[0]
    if kind == "channel_conv":
        return int(a["size"])
    if kind == "linear":
        return inp[0] * out[0] + (out[0] if a["bias"] else 0)
    return 0


def macs(kind: str, a: dict[str, Any], inp: Shape, out: Shape) -> int:
    """Multiply-adds of convolutions (the fixed blur filter and ECA's 1-D conv included) and
    linear layers: what torchvision's GFLOPS column and torch's FlopCounterMode count. Norms,
    pools, activations, softmax, add and multiply are not counted."""
    if kind in CONVS:
        kh, kw = a["kernel"]
        return kh * kw * (inp[0] // a["groups"]) * out[0] * out[1] * out[2]
    if kind == "blur_pool":
        return a["size"] * a["size"] * out[0] * out[1] * out[2]
    if kind == "channel_conv":
        return int(a["size"]) * out[0]
    if kind == "linear":
        return inp[0] * out[0]
    return 0


def fmt_shape(shape: Shape | None) -> str:
    """``64x56x56``."""
    return "?" if shape is None else "x".join(str(d) for d in shape)
