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


_ACT = ("relu", "relu6", "silu", "gelu", "sigmoid", "tanh", "identity")

OPS: dict[str, OpSpec] = {
    "conv": OpSpec(
        "conv",
        {
            "groups": ("int", 1),
            "dilation": ("int", 1),
            "padding": ("int", None),
            "bias": ("bool", False),
        },
        kernel=True,
        stride=True,
        out="required",
        parametric=True,
    ),
    "bn": OpSpec("bn", {"eps": ("float", 1e-5), "momentum": ("float", 0.1)}, parametric=True),
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
    "se": OpSpec("se", out="required", parametric=True),
    **{a: OpSpec(a, spatial=False) for a in _ACT},
}

#: Ops only the compiler inserts (shortcuts, the graph's ends); a spec cannot name them.
INTERNAL = ("input", "add", "zero_pad")


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


def _se_shape(a: dict[str, Any], shape: Shape, kind: str) -> Shape:
    # bn and se keep the shape but need a CxHxW input (BatchNorm2d, pooled gates).
    _spatial(shape, kind)
    return shape


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
    "se": _se_shape,
    "bn": _se_shape,
    "zero_pad": _zero_pad_shape,
}


def params(kind: str, a: dict[str, Any], inp: Shape, out: Shape) -> int:
    """Trainable parameters (BN running statistics are buffers, not parameters)."""
    if kind == "conv":
        kh, kw = a["kernel"]
        return kh * kw * (inp[0] // a["groups"]) * out[0] + (out[0] if a["bias"] else 0)
    if kind == "bn":
        return 2 * inp[0]
    if kind == "linear":
        return inp[0] * out[0] + (out[0] if a["bias"] else 0)
    if kind == "se":
        c, r = inp[0], a["out"]
        return c * r + r + r * c + c
    return 0


def macs(kind: str, a: dict[str, Any], inp: Shape, out: Shape) -> int:
    """Multiply-adds of convolutions and linear layers, as torchvision's GFLOPS column counts."""
    if kind == "conv":
        kh, kw = a["kernel"]
        return kh * kw * (inp[0] // a["groups"]) * out[0] * out[1] * out[2]
    if kind == "linear":
        return inp[0] * out[0]
    if kind == "se":
        return 2 * inp[0] * a["out"]
    return 0


def fmt_shape(shape: Shape | None) -> str:
    """``64x56x56``."""
    return "?" if shape is None else "x".join(str(d) for d in shape)
