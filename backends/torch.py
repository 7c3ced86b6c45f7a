"""The PyTorch backend: IR graph -> standalone Python source that imports only torch.

Layout of the emitted file (after timm's resnet.py): header, imports, helper modules the network
needs, one class per block definition (its constructor takes the block's parameters, like
torchvision's ``Bottleneck(inplanes, planes, stride, downsample, ...)``), the network class,
``init_weights`` and ``create_model``. Names from the spec reach the source only through
:class:`~backends.codegen.Namespace`; values only as ``repr`` of ints, floats and bools.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import resnetc
from resnetc import nodes as n
from resnetc.elaborate import SHORTCUT_OP, is_tensor_expr, names_in, ops_in, tensor_names
from resnetc.errors import CompileError
from resnetc.evaluate import Evaluator, infer_type
from resnetc.formatter import ExprPrinter
from resnetc.ir import (
    BlockInstance,
    FeatureSplit,
    Graph,
    NetworkInfo,
    StageInfo,
    blocks,
    feature_info,
    feature_split,
    net,
    pretrained_cfg,
)
from resnetc.layout import layout
from resnetc.nodes import structure
from resnetc.ops import OPS, default_padding

from .codegen import Namespace, Writer, class_name, literal

_INPLACE = ("relu", "relu6", "silu")


# ---------------------------------------------------------------- module constructors


def _conv(cin: str, a: dict[str, str]) -> str:
    extra = "".join(f", {k}={a[k]}" for k in ("dilation", "groups") if a.get(k, "1") != "1")
    return (
        f"nn.Conv2d({cin}, {a['out']}, kernel_size={a['kernel']}, stride={a['stride']}, "
        f"padding={a['padding']}{extra}, bias={a.get('bias', 'False')})"
    )


def _bn(cin: str, a: dict[str, str]) -> str:
    extra = "".join(f", {k}={a[k]}" for k in ("eps", "momentum") if k in a)
    return f"nn.BatchNorm2d({cin}{extra})"


def _ws_conv(cin: str, a: dict[str, str]) -> str:
    conv = _conv(cin, a)
    eps = f", eps={a['eps']}" if "eps" in a else ""
    return "StdConv2d" + conv[len("nn.Conv2d") : -1] + eps + ")"


def _keywords(cls: str, cin: str, a: dict[str, str], names: tuple[str, ...]) -> str:
    extra = "".join(f", {k}={a[k]}" for k in names if k in a)
    return f"{cls}({cin}{extra})"


def _blur(cin: str, a: dict[str, str]) -> str:
    extra = "".join(f", {k}={a[k]}" for k in ("size", "stride", "reflect") if k in a)
    return f"BlurPool2d({cin}{extra})"


def _pool(cls: str, a: dict[str, str], flags: tuple[str, ...]) -> str:
    extra = "".join(f", {k}={a[k]}" for k in flags if k in a)
    return (
        f"nn.{cls}(kernel_size={a['kernel']}, stride={a['stride']}, padding={a['padding']}{extra})"
    )


_CTORS: dict[str, Callable[[str, dict[str, str]], str]] = {
    "conv": _conv,
    "bn": _bn,
    "relu": lambda cin, a: f"nn.ReLU(inplace={a.get('inplace', 'True')})",
    "relu6": lambda cin, a: f"nn.ReLU6(inplace={a.get('inplace', 'True')})",
    "silu": lambda cin, a: f"nn.SiLU(inplace={a.get('inplace', 'True')})",
    "gelu": lambda cin, a: "nn.GELU()",
    "sigmoid": lambda cin, a: "nn.Sigmoid()",
    "tanh": lambda cin, a: "nn.Tanh()",
    "identity": lambda cin, a: "nn.Identity()",
    "maxpool": lambda cin, a: _pool("MaxPool2d", a, ("ceil_mode",)),
    "avgpool": lambda cin, a: _pool("AvgPool2d", a, ("ceil_mode", "count_include_pad")),
    "global_avgpool": lambda cin, a: "nn.AdaptiveAvgPool2d((1, 1))",
    "flatten": lambda cin, a: "nn.Flatten(1)",
    "linear": lambda cin, a: (
        f"nn.Linear({cin}, {a['out']}"
        + (f", bias={a['bias']})" if a.get("bias", "True") != "True" else ")")
    ),
    "dropout": lambda cin, a: f"nn.Dropout(p={a['p']})",
    "drop_path": lambda cin, a: f"DropPath({a['rate']})",
    "zero_pad": lambda cin, a: f"ZeroPadShortcut({a['stride']}, {a['out']} - {cin})",
    "ws_conv": _ws_conv,
    "frozen_bn": lambda cin, a: (
        f"FrozenBatchNorm2d({cin}" + (f", eps={a['eps']})" if "eps" in a else ")")
    ),
    "gn": lambda cin, a: (
        f"nn.GroupNorm({a.get('groups', '32')}, {cin}"
        + (f", eps={a['eps']})" if "eps" in a else ")")
    ),
    "channel_conv": lambda cin, a: f"ChannelConv({a['size']})",
    "evonorm_s0": lambda cin, a: _keywords("EvoNormS0", cin, a, ("groups", "eps", "act")),
    "frn": lambda cin, a: _keywords("FilterResponseNorm", cin, a, ("eps", "act")),
    "blur_pool": _blur,
    "pad": lambda cin, a: f"nn.ConstantPad2d({a['amount']}, {a.get('value', '0.0')})",
    "global_maxpool": lambda cin, a: "nn.AdaptiveMaxPool2d((1, 1))",
    "channel_mean": lambda cin, a: "ChannelMean()",
    "channel_max": lambda cin, a: "ChannelMax()",
    "softmax": lambda cin, a: f"RadixSoftmax({a.get('paths', '2')}, {a.get('groups', '1')})",
    "hard_sigmoid": lambda cin, a: "nn.Hardsigmoid()",
    "hard_swish": lambda cin, a: "nn.Hardswish()",
}

#: Helper classes a module constructor may need, emitted only when used.
_HELPER_OF = {
    "blur_pool": "BlurPool2d",
    "channel_conv": "ChannelConv",
    "channel_max": "ChannelMax",
    "channel_mean": "ChannelMean",
    "drop_path": "DropPath",
    "evonorm_s0": "EvoNormS0",
    "frn": "FilterResponseNorm",
    "frozen_bn": "FrozenBatchNorm2d",
    "softmax": "RadixSoftmax",
    "ws_conv": "StdConv2d",
    "zero_pad": "ZeroPadShortcut",
}


def module_ctor(kind: str, cin: str, attrs: dict[str, str]) -> str:
    """Python source constructing the nn.Module for one op; unknown ops fail loudly."""
    try:
        ctor = _CTORS[kind]
    except KeyError:
        raise NotImplementedError(f"the torch backend has no emitter for op {kind!r}") from None
    return ctor(cin, attrs)


def _kernel_text(k: tuple[int, int]) -> str:
    return literal(k[0]) if k[0] == k[1] else literal(k)


def _concrete_attrs(kind: str, attrs: dict[str, Any]) -> dict[str, str]:
    """Rendered attributes of an IR node, leaving out the defaults."""
    out: dict[str, str] = {}
    spec = OPS.get(kind)
    for key, value in attrs.items():
        if key == "kernel":
            out[key] = _kernel_text(value)
        elif key == "padding":
            out[key] = literal(value[0]) if value[0] == value[1] else literal(value)
        elif spec is not None and key in spec.options and spec.options[key][1] == value:
            continue
        else:
            out[key] = literal(value)
    return out


# ---------------------------------------------------------------- channel expressions

#: A list of tensors as the emitter tracks it: its elements' channels and its length.
ListChan = tuple[n.Expr | None, n.Expr]
Chan = n.Expr | ListChan


def _name(text: str) -> n.Name:
    return n.Name.model_construct(span=_NOWHERE, id=text)


def _int(value: int) -> n.Int:
    return n.Int.model_construct(span=_NOWHERE, value=value)


def _bin(op: str, left: n.Expr, right: n.Expr) -> n.Expr:
    return n.BinOp.model_construct(span=_NOWHERE, op=op, left=left, right=right)


def _same(a: n.Expr | None, b: n.Expr | None) -> bool:
    return a is not None and b is not None and structure(a) == structure(b)


def _divide(total: n.Expr, parts: n.Expr) -> n.Expr:
    """``total / parts``, simplified where ``total`` is ``x * parts``."""
    if isinstance(total, n.BinOp) and total.op == "*":
        if _same(total.right, parts):
            return total.left
        if _same(total.left, parts):
            return total.right
    return _bin("/", total, parts)


def _sum(items: list[n.Expr]) -> n.Expr:
    out = items[0]
    for item in items[1:]:
        out = _bin("+", out, item)
    return out


def substitute(e: n.Expr, names: dict[str, n.Expr]) -> n.Expr:
    """``e`` with the names in ``names`` replaced (a module's output width, seen by its caller)."""
    if isinstance(e, n.Name):
        return names.get(e.id, e)
    changed = {}
    for key, value in e.fields().items():
        if isinstance(value, n.Expr):
            changed[key] = substitute(value, names)
        elif isinstance(value, tuple) and value and isinstance(value[0], n.Expr):
            changed[key] = tuple(substitute(v, names) for v in value)
    return e.model_copy(update=changed) if changed else e


# ---------------------------------------------------------------- blocks and modules


class _BodyEmitter:
    """Emits the class of one block or module definition from its AST, generic over its
    parameters: loops and conditionals become Python, every layer one ``self.<path>``."""

    def __init__(
        self,
        definition: n.BlockDef | n.ModuleDef,
        types: dict[str, str],
        cls: str,
        names: dict[tuple[int, ...], str],
        modules: dict[str, _BodyEmitter],
        instances: list[BlockInstance] | None = None,
    ):
        self.definition = definition
        self.is_block = isinstance(definition, n.BlockDef)
        self.cls = cls
        self.types = dict(types)
        self.instances = instances or []
        self.modules = modules  # emitters of the module definitions used, by name
        self.ns = Namespace(_BODY_RESERVED)
        self.names = {p.name.name: self.ns(p.name.name) for p in definition.params}
        self.defaults = {
            p.name.name: _const(p.default) for p in definition.params if p.default is not None
        }
        self.layout = names
        kinds = {b.shortcut for b in self.instances}
        body = definition.body
        self.has_add = self.is_block and _contains(body, n.AddShortcut)
        self.inplace_add = False  # `out += shortcut`: set where autograd allows (emit_torch)
        self.plain_only = kinds == {"none"}
        self.mixed = "none" in kinds and len(kinds) > 1
        self.uses_index = self.is_block and "index" in names_in(body) and "index" not in self.names
        self.locals: dict[str, str] = {}  # constants computed in __init__
        self.local_defs: dict[str, n.Expr] = {}
        self.forward_needs: dict[str, str] = {}  # an __init__ local -> the attribute keeping it
        self.printer = ExprPrinter(
            python=True, rename=self._rename, int_division=self._int_div, call=_py_call
        )
        self.used_ops: set[str] = set()
        self.out_chan: n.Expr = _name("in_channels")  # the output width, in this class's terms
        self.containers: dict[str, str] = _containers(body)
        self.module_roots = {r for stmt in body for r in _roots(stmt)} | {"downsample"}
        # unnamed layers too: a parameter kept for forward must not take a layer's attribute
        self.module_roots |= {name.split(".")[0] for name in names.values()}
        self.tensor_names = tensor_names(body)
        # `NAME: shortcut` keeps the shortcut's module at its place, under its name.
        declared = [s for s in body if isinstance(s, n.Layer) and s.op.name == SHORTCUT_OP]
        self.shortcut_attr = declared[0].name.name if declared and declared[0].name else None
        for stmt in _assignments(body):  # constants are locals of __init__ (forward reads them)
            name = stmt.target.name
            if name not in self.tensor_names and name not in self.locals:
                self.locals[name] = self.ns(name)
        self.made_containers: set[str] = set()

    # -- expressions
    def _rename(self, name: str) -> str:
        if name == "expansion":
            return "self.expansion"
        if name == "in_channels":
            return "in_channels"
        if name == "index" and self.uses_index:
            return "index"
        if name in self.locals:
            return self.locals[name]
        if name in self.names:
            return self.names[name]
        return self.ns(name)  # a loop variable

    def _int_div(self, e: n.BinOp) -> bool:
        types = {**self.types, "in_channels": "int", "index": "int"}
        return infer_type(e.left, types) == "int" and infer_type(e.right, types) == "int"

    def py(self, e: n.Expr, context: int = 0) -> str:
        return self.printer(e, context)

    def _attrs(self, layer: n.Layer) -> dict[str, str]:
        spec = OPS[layer.op.name]
        a: dict[str, str] = {}
        kernel_opt = next((o for o in layer.options if o.key.name == "kernel"), None)
        if layer.kernel:
            a["kernel"] = _kernel_text(layer.kernel)
        elif kernel_opt is not None and kernel_opt.value is not None:
            a["kernel"] = self.py(kernel_opt.value)
        if spec.stride:
            default = "2" if layer.op.name == "blur_pool" else "1"
            a["stride"] = self.py(layer.stride) if layer.stride is not None else default
        if layer.out is not None:
            a["out"] = self.py(layer.out)
        if spec.arg:
            a[spec.arg] = self.py(layer.arg) if layer.arg is not None else "0.0"
        for opt in layer.options:
            if opt is not kernel_opt:
                a[opt.key.name] = "True" if opt.value is None else self.py(opt.value)
        if "padding" in spec.options and "padding" not in a:
            a["padding"] = self._padding(layer, kernel_opt)
        return a

    def _padding(self, layer: n.Layer, kernel_opt: n.Option | None) -> str:
        dil = next((o.value for o in layer.options if o.key.name == "dilation"), None)
        if layer.kernel is None and kernel_opt is not None and kernel_opt.value is not None:
            k = self.py(kernel_opt.value, 7)
            d = f" * {self.py(dil, 8)}" if dil is not None else ""
            return f"({k} - 1) // 2{d}"
        kh, kw = layer.kernel or (1, 1)
        pads = []
        for k in (kh, kw):
            c = default_padding(k)
            if dil is None or c == 0:
                pads.append(str(c))
            else:
                d = self.py(dil, 8)
                pads.append(d if c == 1 else f"{c} * {d}")
        return pads[0] if pads[0] == pads[1] else f"({pads[0]}, {pads[1]})"

    # -- the class
    def emit(self, w: Writer) -> None:
        d = self.definition
        forward = Writer()
        forward.level = w.level + 2
        self._forward(forward)
        init = Writer()
        init.level = w.level + 2
        self._init(init)
        what = "Block" if self.is_block else "Module"
        w.line(f"class {self.cls}(nn.Module):")
        with w.indent():
            w.line(f'"""{what} ``{d.name.name}`` of the spec.')
            w.line()
            w.line("Args:")
            w.line(
                "    in_channels: channels of the block's input."
                if self.is_block
                else "    in_channels: channels of the module's input."
            )
            for p in d.params:
                w.line(
                    f"    {self.names[p.name.name]}: the {what.lower()} parameter "
                    f"``{p.name.name}`` ({self.types[p.name.name]})."
                )
            if self.uses_index:
                w.line("    index: the block's position in its stage.")
            if self.has_add and not self.plain_only:
                w.line(
                    "    downsample: the shortcut's module where the block changes shape; None "
                    "for identity."
                )
            if self.mixed:
                w.line("    residual: False to drop the shortcut (plain network).")
            w.line('"""')
            w.line()
            if isinstance(d, n.BlockDef):
                expansion = _const(d.expansion) if d.expansion is not None else 1
                w.line(f"expansion = {literal(expansion)}")
                w.line()
            w.code(f"def __init__({self._signature()}) -> None:")
            w.lines.extend(init.lines)
            w.line()
            w.line("def forward(self, x: Tensor) -> Tensor:")
            w.lines.extend(forward.lines)
            if self.is_block:
                self._zero_init(w)

    def _signature(self) -> str:
        parts = ["self", "in_channels: int"]
        for p in self.definition.params:
            typ = self.types[p.name.name] or "int"
            default = f" = {self.py(p.default)}" if p.default is not None else ""
            parts.append(f"{self.names[p.name.name]}: {typ}{default}")
        if self.uses_index:
            parts.append("index: int = 0")
        if self.has_add and not self.plain_only:
            parts.append("downsample: Optional[nn.Module] = None")
        if self.mixed:
            parts.append("residual: bool = True")
        return ", ".join(parts)

    # -- __init__
    def _init(self, w: Writer) -> None:
        w.line("super().__init__()")
        state = _InitState(ch=_name("in_channels"), tensors={}, fresh=True)
        self._init_stmts(self.definition.body, (), w, state, top=True)
        self.out_chan = _expand(state.ch, self.local_defs)
        for local, attr in self.forward_needs.items():  # what forward reads: bounds, conditions
            w.line(f"self.{attr} = {local}")
        if self.has_add and not self.plain_only and self.shortcut_attr is None:
            w.line("self.downsample = downsample")
        if self.mixed:
            w.line("self.residual = residual")

    def _init_stmts(
        self, body: tuple[n.Stmt, ...], key: tuple[int, ...], w: Writer, st: _InitState, top: bool
    ) -> None:
        for i, stmt in enumerate(body):
            k = (*key, i)
            if top:
                for root in _roots(stmt):
                    self._make_containers(root, w)
            if isinstance(stmt, n.Assign):
                self._init_assign(stmt, w, st)
            elif isinstance(stmt, n.Layer) and stmt.op.name == SHORTCUT_OP:
                if self.has_add and not self.plain_only:
                    w.line(f"self.{self.shortcut_attr} = downsample")
            elif isinstance(stmt, n.Layer):
                self._init_layer(stmt, k, w, st)
            elif isinstance(stmt, n.Group):
                self._init_group(stmt, w, st)
            elif isinstance(stmt, n.For):
                inner = Writer()
                inner.level = w.level + 1
                before = dict(st.tensors)
                st.fresh = True  # a later iteration may start from what an earlier one kept
                self._init_stmts(stmt.body, k, inner, st, top=False)
                _grow_lists(before, st.tensors, _length(stmt.items))
                st.fresh = True
                if inner.lines:
                    var = self._rename(stmt.var.name)
                    used = any(re.search(rf"\b{var}\b", line) for line in inner.lines)
                    w.line(f"for {var if used else '_'} in {self.py(stmt.items)}:")
                    w.lines.extend(inner.lines)
            elif isinstance(stmt, n.If):
                self._init_if(stmt, k, w, st)
            elif isinstance(stmt, n.TapShortcut):
                st.fresh = True
            elif isinstance(stmt, n.AddShortcut):
                st.fresh = False

    def _init_assign(self, stmt: n.Assign, w: Writer, st: _InitState) -> None:
        name = stmt.target.name
        if name not in self.tensor_names:  # a constant: computed once, in __init__
            w.line(f"{self.locals[name]} = {self.py(stmt.value)}")
            self.local_defs[name] = stmt.value
            return
        chan = self._tensor_chan(stmt.value, st)
        st.fresh = True
        if name == "out":
            assert not isinstance(chan, tuple)
            st.ch = chan
        else:
            st.tensors[name] = chan

    def _init_if(self, stmt: n.If, k: tuple[int, ...], w: Writer, st: _InitState) -> None:
        branches = []
        for j, body in enumerate((stmt.then, stmt.orelse or ())):
            inner = Writer()
            inner.level = w.level + 1
            sub = _InitState(st.ch, dict(st.tensors), st.fresh)
            self._init_stmts(body, (*k, j), inner, sub, top=False)
            branches.append((inner, sub))
        (then_w, then_st), (else_w, else_st) = branches
        cond = self.py(stmt.cond)
        if then_w.lines or else_w.lines:
            w.line(f"if {cond}:")
            w.lines.extend(then_w.lines or [("    " * (w.level + 1)) + "pass"])
            if else_w.lines:
                w.line("else:")
                w.lines.extend(else_w.lines)
        st.fresh = True
        st.ch = _choose(stmt.cond, then_st.ch, else_st.ch)  # type: ignore[assignment]
        for name in {**then_st.tensors, **else_st.tensors}:
            a = then_st.tensors.get(name, st.tensors.get(name))
            b = else_st.tensors.get(name, st.tensors.get(name))
            if a is not b:
                st.tensors[name] = _choose(stmt.cond, a, b)  # type: ignore[assignment]

    def _init_layer(self, layer: n.Layer, k: tuple[int, ...], w: Writer, st: _InitState) -> None:
        op = layer.op.name
        target, _ = self._target(layer, k)
        keep = st.fresh and op in _INPLACE
        st.fresh = False
        if op in self.modules:
            sub = self.modules[op]
            args = self._module_args(layer, sub, st.ch)
            ctor = f"{sub.cls}({', '.join([self.py(st.ch), *args])})"
            st.ch = sub.chan_for(layer, st.ch, self)
        else:
            ctor, ch = self._ctor(layer, st.ch, keep_input=keep)
            st.ch = ch
        if target in st.made:
            return  # shared: an unnamed parameter-free layer, or a layer written again
        st.made.add(target)
        if target.endswith("]"):
            w.code(f"{target[: target.rindex('[')]}.append({ctor})")
        else:
            w.code(f"{target} = {ctor}")

    def _init_group(self, stmt: n.Group, w: Writer, st: _InitState) -> None:
        parts = []
        for child in stmt.body:
            assert isinstance(child, n.Layer)
            ctor, st.ch = self._ctor(child, st.ch)
            parts.append(f"{child.name.name}={ctor}" if child.name else ctor)
        st.fresh = False
        target = self._path_text(stmt.name, stmt.rest)
        named = any(c.name is not None for c in stmt.body if isinstance(c, n.Layer))
        w.line(f"{target} = nn.Sequential(" + ("OrderedDict(" if named else ""))
        with w.indent():
            for part in parts:
                w.code(part + ",")
        w.line("))" if named else ")")

    def _ctor(self, layer: n.Layer, ch: n.Expr, keep_input: bool = False) -> tuple[str, n.Expr]:
        if ch is None:
            raise CompileError.at(
                layer.span,
                "the generated class cannot work out this layer's input channels (it reads a "
                "list of tensors of different widths); keep the lists of a body uniform",
            )
        attrs = self._attrs(layer)
        if keep_input and layer.op.name in _INPLACE:
            attrs["inplace"] = "False"
        self.used_ops.add(layer.op.name)
        ctor = module_ctor(layer.op.name, self.py(ch), attrs)
        if layer.op.name in ("channel_mean", "channel_max"):
            return ctor, _int(1)
        return ctor, layer.out if layer.out is not None else ch

    def _module_args(self, layer: n.Layer, sub: _BodyEmitter, ch: n.Expr) -> list[str]:
        given = _module_bindings(layer, sub.definition)
        args = []
        positional = True
        for p in sub.definition.params:
            key = p.name.name
            if key not in given:
                positional = False
                continue
            expr = given[key]
            text = "True" if expr is None else self.py(expr)
            if positional and key not in sub.defaults:
                args.append(text)
            else:
                positional = False
                args.append(f"{sub.names[key]}={text}")
        return args

    def chan_for(self, layer: n.Layer, ch: n.Expr, caller: _BodyEmitter) -> n.Expr:
        """This module's output width in the caller's terms, for a use ``layer`` of it."""
        given = _module_bindings(layer, self.definition)
        names: dict[str, n.Expr] = {"in_channels": ch}
        for p in self.definition.params:
            key = p.name.name
            value = given.get(key, p.default)
            names[key] = (
                value if value is not None else n.Bool.model_construct(span=_NOWHERE, value=True)
            )
        return substitute(self.out_chan, names)

    def _tensor_chan(self, e: n.Expr, st: _InitState) -> Chan | None:
        """The channels of a tensor expression (None: not a tensor expression)."""
        if isinstance(e, n.Name):
            if e.id in ("out", "input"):
                return st.ch if e.id == "out" else _name("in_channels")
            return st.tensors.get(e.id)
        if isinstance(e, n.BinOp):
            left, right = self._tensor_chan(e.left, st), self._tensor_chan(e.right, st)
            if left is None and right is None:
                return None
            if isinstance(left, tuple) or isinstance(right, tuple):
                return _join_lists(left, right)
            if left is None or right is None:
                return left if left is not None else right
            for one, other in ((left, right), (right, left)):
                if e.op == "*" and isinstance(one, n.Int) and one.value == 1:
                    return other  # a spatial gate (1xHxW) keeps the gated tensor's width
            # Otherwise both sides have one width (the IR checks it); the simplest expression of
            # it is also the one a loop cannot have left stale (`out` from an earlier iteration).
            return left if _size(left) <= _size(right) else right
        if isinstance(e, n.Index):
            chan = self._tensor_chan(e.value, st)
            return chan[0] if isinstance(chan, tuple) else chan
        if isinstance(e, n.IfExp):
            a, b = self._tensor_chan(e.then, st), self._tensor_chan(e.orelse, st)
            return _choose(e.cond, a, b)
        if isinstance(e, n.List):
            chans = [self._tensor_chan(x, st) for x in e.items]
            if not chans:
                return (None, _int(0))
            if any(c is None for c in chans):
                return None
            first = chans[0]
            elem = first if all(_same(c, first) for c in chans) else None  # type: ignore[arg-type]
            return (elem, _int(len(chans)))  # type: ignore[return-value]
        if isinstance(e, n.ListComp):
            item = self._tensor_chan(e.item, st)
            if item is None or isinstance(item, tuple):
                return None
            return (item, _length(e.items))
        if isinstance(e, n.Call) and e.func.name in ("concat", "sum", "split"):
            chans = [self._tensor_chan(a, st) for a in e.args]
            if e.func.name == "split":
                total = chans[0]
                assert total is not None and not isinstance(total, tuple)
                parts = e.args[1]
                if isinstance(parts, n.List):
                    return (None, _int(len(parts.items)))
                return (_divide(total, parts), parts)
            if e.func.name == "sum":
                c = chans[0]
                if c is None:
                    return None
                return c[0] if isinstance(c, tuple) else c  # type: ignore[return-value]
            terms: list[n.Expr] = []
            for c in chans:
                if isinstance(c, tuple):
                    elem, length = c
                    if elem is None:
                        raise CompileError.at(
                            e.span,
                            "cannot work out the channels of this concat for the generated "
                            "class (its list holds tensors of different widths)",
                        )
                    terms.append(_bin("*", elem, length))
                elif c is not None:
                    terms.append(c)
            return _sum(terms) if terms else None
        return None

    # -- module paths
    def _path_text(
        self, first: n.Ident, rest: tuple[n.PathPart, ...], printer: ExprPrinter | None = None
    ) -> str:
        text = f"self.{first.name}"
        for part in rest:
            if isinstance(part, n.Ident):
                text += f".{part.name}"
            else:
                text += f"[{(printer or self.printer)(part.index)}]"
        return text

    def _target(
        self, layer: n.Layer, k: tuple[int, ...], printer: ExprPrinter | None = None
    ) -> tuple[str, bool]:
        if layer.name is None:
            return f"self.{self.layout[k]}", True
        return self._path_text(layer.name, layer.rest, printer), False

    def _make_containers(self, root: str, w: Writer) -> None:
        for path, kind in self.containers.items():
            if (path == root or path.startswith(root + ".")) and path not in self.made_containers:
                self.made_containers.add(path)
                w.line(f"self.{path} = nn.{'ModuleList' if kind == 'index' else 'ModuleDict'}()")

    # -- forward
    def _forward(self, w: Writer) -> None:
        f = _Forward(self)
        f.stmts(self.definition.body, (), w)
        w.line(f"return {f.cur}")

    def call(self, g: Graph, b: BlockInstance, ch: str) -> str:
        """The constructor call for instance ``b``; ``ch`` is its input width as written."""
        args = [ch]
        for p in self.definition.params:
            key = p.name.name
            value = b.args[key]
            if key not in self.defaults:
                args.append(literal(value))
            elif value != self.defaults[key] or type(value) is not type(self.defaults[key]):
                args.append(f"{self.names[key]}={literal(value)}")
        if self.uses_index and b.index:
            args.append(f"index={literal(b.index)}")
        if b.shortcut_nodes:
            args.append(f"downsample={_downsample(g, b, ch)}")
        if self.mixed and b.shortcut == "none":
            args.append("residual=False")
        return f"{self.cls}({', '.join(args)})"

    def _zero_init(self, w: Writer) -> None:
        # Zero the last BN (or, with none after the last conv, that conv) before the add, so the
        # block starts as its shortcut: "Bag of Tricks" / torchvision's zero_init_residual.
        body = self.definition.body
        adds = [i for i, s in enumerate(body) if isinstance(s, n.AddShortcut)]
        if not adds or self.plain_only:
            return
        target = self._last_weight(body[: adds[0]], ())
        if not isinstance(target, str):
            return
        w.line()
        w.line("def zero_init_last(self) -> None:")
        with w.indent():
            w.line('"""Zero the last weight layer of the residual path (identity start)."""')
            w.line(f"nn.init.zeros_({target}.weight)")

    def _last_weight(self, body: tuple[n.Stmt, ...], key: tuple[int, ...]) -> str | bool:
        """The last norm (or conv) of ``body`` as an attribute; True where there is none but
        what comes before may have it (only gates and parameter-free layers follow it); False
        where it cannot be told (another layer with weights, a loop, a tensor value)."""
        for i in range(len(body) - 1, -1, -1):
            stmt, k = body[i], (*key, i)
            found: str | bool = True
            if isinstance(stmt, n.Layer) and stmt.op.name in _ZERO_INIT and not stmt.rest:
                found = f"self.{self.layout.get(k) or stmt.name.name}"  # type: ignore[union-attr]
            elif isinstance(stmt, n.Layer) and stmt.op.name in self.modules:
                found = self.modules[stmt.op.name].zero_target(self._target(stmt, k)[0]) or True
            elif isinstance(stmt, n.Layer) and stmt.op.name in OPS:
                found = not OPS[stmt.op.name].parametric
            elif isinstance(stmt, n.Group) and stmt.body:
                last = stmt.body[-1]
                found = isinstance(last, n.Layer) and last.op.name in _ZERO_INIT
                if found:
                    found = f"self.{stmt.name.name}[{len(stmt.body) - 1}]"
            elif isinstance(stmt, n.If):
                # Both branches must end with the same layer (`if gn { bn3: gn } else { bn3: bn }`)
                # or neither with one (`if eca { se: eca }`).
                branches = {
                    self._last_weight(stmt.then, (*k, 0)),
                    self._last_weight(stmt.orelse or (), (*k, 1)),
                }
                found = branches.pop() if len(branches) == 1 else False
            elif isinstance(stmt, n.Assign):
                found = stmt.target.name not in self.tensor_names
            elif not isinstance(stmt, n.Assert | n.TapShortcut):
                found = False
            if found is not True:
                return found
        return True

    def zero_target(self, attr: str) -> str | None:
        """The last norm (or conv) of a module used as a block's last layer."""
        for stmt in reversed(self.definition.body):
            if isinstance(stmt, n.Layer) and stmt.op.name in _ZERO_INIT and stmt.name is not None:
                return f"{attr}.{self._path_text(stmt.name, stmt.rest)[5:]}"
            if (
                isinstance(stmt, n.Layer)
                and stmt.op.name in OPS
                and not OPS[stmt.op.name].parametric
            ):
                continue
            return None
        return None


_ZERO_INIT = ("bn", "gn", "conv", "ws_conv")

_BODY_RESERVED = (
    "self",
    "in_channels",
    "index",
    "downsample",
    "residual",
    "x",
    "out",
    "shortcut",
    "tapped",
    "nn",
    "torch",
    "F",
    "Tensor",
    "Optional",
    "OrderedDict",
    "math",
    "make_divisible",
)

_NOWHERE = n.Span.model_construct(file="<emitter>", line=1, column=1, end_line=1, end_column=1)


def _choose(cond: n.Expr, a: Chan | None, b: Chan | None) -> Chan | None:
    """The channels of ``a if cond else b``: one expression where both agree."""
    if a is None or b is None:
        return a if a is not None else b
    if isinstance(a, tuple) and isinstance(b, tuple):
        elem = _choose(cond, a[0], b[0]) if a[0] is not None and b[0] is not None else None
        length = _choose(cond, a[1], b[1])
        return (elem, length)  # type: ignore[return-value]
    if isinstance(a, tuple) or isinstance(b, tuple):
        return None  # a tensor or a list, by condition: nothing one expression can say
    if _same(a, b):
        return a
    return n.IfExp.model_construct(span=_NOWHERE, then=a, cond=cond, orelse=b)


def _join_lists(a: Chan | None, b: Chan | None) -> ListChan:
    la = a if isinstance(a, tuple) else (None, _int(0))
    lb = b if isinstance(b, tuple) else (None, _int(0))
    elem = la[0] if _same(la[0], lb[0]) or isinstance(lb[1], n.Int) and lb[1].value == 0 else None
    if isinstance(la[1], n.Int) and la[1].value == 0:
        elem = lb[0]
    length = _bin("+", la[1], lb[1])
    if isinstance(la[1], n.Int) and isinstance(lb[1], n.Int):
        length = _int(la[1].value + lb[1].value)
    elif (
        isinstance(la[1], n.BinOp)
        and la[1].op == "-"
        and isinstance(lb[1], n.Int)
        and _same(la[1].right, lb[1])
    ):
        length = la[1].left  # (n - 1) + 1
    return (elem, length)


def _length(items: n.Expr) -> n.Expr:
    """The number of items of a loop's list, as an expression."""
    if isinstance(items, n.Call) and items.func.name == "range" and len(items.args) == 1:
        return items.args[0]
    if isinstance(items, n.List):
        return _int(len(items.items))
    return n.Call.model_construct(
        span=_NOWHERE, func=n.Ident.model_construct(span=_NOWHERE, name="len"), args=(items,)
    )


def _grow_lists(before: dict[str, Chan], after: dict[str, Chan], count: n.Expr) -> None:
    """Lists a loop body appends to grow by that much per iteration."""
    for name, chan in list(after.items()):
        old = before.get(name)
        if not isinstance(chan, tuple) or not isinstance(old, tuple) or chan is old:
            continue
        (elem, new_len), (_, old_len) = chan, old
        if _same(new_len, old_len):
            continue  # not grown by the loop
        if isinstance(new_len, n.Int) and isinstance(old_len, n.Int):
            step = new_len.value - old_len.value
            grown = count if step == 1 else _bin("*", _int(step), count)
            length = grown if old_len.value == 0 else _bin("+", old_len, grown)
        elif isinstance(new_len, n.BinOp) and _same(new_len.left, old_len):
            length = _bin("+", old_len, _bin("*", new_len.right, count))
        else:
            raise CompileError.at(None, f"cannot work out the length of the list '{name}'")
        after[name] = (elem, length)


def _expand(e: n.Expr, defs: dict[str, n.Expr]) -> n.Expr:
    """``e`` with the class's constants replaced by their definitions (for its callers)."""
    for _ in range(len(defs) + 1):
        new = substitute(e, defs)
        if structure(new) == structure(e):
            return e
        e = new
    return e


@dataclass
class _InitState:
    ch: n.Expr
    tensors: dict[str, Chan]
    fresh: bool
    made: set[str] = field(default_factory=set)


def _py_call(name: str) -> str:
    return {"floor": "math.floor", "ceil": "math.ceil", "log2": "math.log2"}.get(name, name)


def _assignments(body: tuple[n.Stmt, ...]) -> list[n.Assign]:
    out: list[n.Assign] = []
    for stmt in body:
        if isinstance(stmt, n.Assign):
            out.append(stmt)
        for inner in _children(stmt):
            out.extend(_assignments(inner))
    return out


def _size(e: n.Expr) -> int:
    return len(repr(structure(e)))


def _contains(body: tuple[n.Stmt, ...], kind: type) -> bool:
    for stmt in body:
        if isinstance(stmt, kind):
            return True
        for inner in _children(stmt):
            if _contains(inner, kind):
                return True
    return False


def _children(stmt: n.Stmt) -> list[tuple[n.Stmt, ...]]:
    if isinstance(stmt, n.For):
        return [stmt.body]
    if isinstance(stmt, n.If):
        return [stmt.then, stmt.orelse or ()]
    return []


def _roots(stmt: n.Stmt) -> list[str]:
    """The first names of the module paths a statement (and what it holds) makes."""
    if isinstance(stmt, n.Layer | n.Group) and stmt.name is not None:
        return [stmt.name.name]
    return [r for inner in _children(stmt) for s in inner for r in _roots(s)]


def _containers(body: tuple[n.Stmt, ...]) -> dict[str, str]:
    """Containers that paths like ``conv1.conv`` or ``convs[i]`` need: path -> index|name."""
    out: dict[str, str] = {}

    def walk(stmts: tuple[n.Stmt, ...]) -> None:
        for stmt in stmts:
            if isinstance(stmt, n.Layer | n.Group) and stmt.name is not None and stmt.rest:
                path = stmt.name.name
                if any(isinstance(p, n.PathIndex) for p in stmt.rest[:-1]):
                    raise CompileError.at(
                        stmt.span,
                        "in a block or module an index ends a path (`convs[i]`); for "
                        "`paths[i].conv`, make `paths[i]` a module use",
                    )
                for part in stmt.rest:
                    kind = "name" if isinstance(part, n.Ident) else "index"
                    out.setdefault(path, kind)
                    if isinstance(part, n.Ident):
                        path += f".{part.name}"
                    else:
                        path += "[]"
            for inner in _children(stmt):
                walk(inner)

    walk(body)
    return out


def _module_bindings(layer: n.Layer, mdef: n.ModuleDef) -> dict[str, n.Expr | None]:
    """Which expression of a layer binds which parameter of the module it uses."""
    given: dict[str, n.Expr | None] = {}
    params = [p.name.name for p in mdef.params]
    if layer.kernel is not None:
        kh, kw = layer.kernel
        given["kernel"] = (
            _int(kh)
            if kh == kw
            else n.List.model_construct(span=_NOWHERE, items=(_int(kh), _int(kw)))
        )
    if layer.stride is not None:
        given["stride"] = layer.stride
    if layer.out is not None:
        given["width"] = layer.out
    if layer.arg is not None and params:
        given[params[0]] = layer.arg
    for opt in layer.options:
        given[opt.key.name] = opt.value
    return given


class _Forward:
    """Writes a body's ``forward``: ``out`` is the running value (``x`` until a layer runs)."""

    def __init__(self, e: _BodyEmitter):
        self.e = e
        self.cur = "x"
        self.tapped = "x"
        self.vars: dict[str, str] = {}
        self.printer = ExprPrinter(
            python=True,
            rename=self._rename,
            int_division=e._int_div,
            call=self._call,
            render_call=self._tensor_call,
        )
        self.lists: dict[str, n.Expr] = {}  # tuples from split(): their lengths
        self.pylists: set[str] = set()  # Python lists: [a, b], ys + [out], comprehensions

    def _rename(self, name: str) -> str:
        e = self.e
        if name == "out":
            return self.cur
        if name == "input":
            return "x"
        if name in self.vars:
            return self.vars[name]
        if name == "expansion":
            return "self.expansion"
        if name in e.names:
            attr = e.names[name]
        elif name in e.locals:
            attr = e.locals[name]
        elif name == "in_channels" or name == "index" and e.uses_index:
            attr = name
        else:
            return e.ns(name)  # a loop variable
        if attr not in e.forward_needs:
            # kept as an attribute; one of another name where a layer has this one
            taken = e.module_roots | set(e.forward_needs.values())
            e.forward_needs[attr] = e.ns(f"_{attr}") if attr in taken else attr
        return f"self.{e.forward_needs[attr]}"

    def _call(self, name: str) -> str:
        return _py_call(name)

    def py(self, expr: n.Expr) -> str:
        if is_tensor_expr(expr, self.e.tensor_names):
            return self._tensor(expr)
        return self.printer(expr)

    def _tensor_call(self, e: n.Call) -> str | None:
        """concat, split and a sum of tensors, wherever they appear in an expression."""
        if e.func.name in ("concat", "split", "sum") and is_tensor_expr(e, self.e.tensor_names):
            return self._tensor(e)
        return None

    def _tensor(self, e: n.Expr) -> str:
        if isinstance(e, n.Call) and e.func.name == "concat":
            parts = []
            for a in e.args:
                parts.extend(self._items(a))
            return f"torch.cat([{', '.join(parts)}], 1)"
        if isinstance(e, n.Call) and e.func.name == "sum":
            (arg,) = e.args
            return (
                " + ".join(self._items(arg))
                if isinstance(arg, n.List)
                else f"sum({self._list(arg)})"
            )
        if isinstance(e, n.Call) and e.func.name == "split":
            src, parts = e.args
            if isinstance(parts, n.List):
                return f"torch.split({self.py(src)}, {self.printer(parts)}, 1)"
            return f"torch.chunk({self.py(src)}, {self.printer(parts)}, 1)"
        return self.printer(e, 0)

    def _items(self, e: n.Expr) -> list[str]:
        if isinstance(e, n.List):
            return [self.py(x) for x in e.items]
        if isinstance(e, n.BinOp) and e.op == "+" and _list_like(e.left, self):
            return self._items(e.left) + self._items(e.right)
        if _list_like(e, self):
            return [f"*{self._list(e)}"]
        return [self.py(e)]

    def _list(self, e: n.Expr) -> str:
        if isinstance(e, n.Name) and e.id in self.lists:
            v = self.vars[e.id]
            return f"[{v}[i] for i in range({self.printer(self.lists[e.id])})]"
        return self.py(e)

    def stmts(self, body: tuple[n.Stmt, ...], key: tuple[int, ...], w: Writer) -> None:
        e = self.e
        for i, stmt in enumerate(body):
            k = (*key, i)
            if isinstance(stmt, n.Layer) and stmt.op.name == SHORTCUT_OP:
                continue
            if isinstance(stmt, n.Layer | n.Group):
                target = (
                    e._target(stmt, k, self.printer)[0]
                    if isinstance(stmt, n.Layer)
                    else e._path_text(stmt.name, stmt.rest, self.printer)
                )
                w.line(f"out = {target}({self.cur})")
                self.cur = "out"
            elif isinstance(stmt, n.Assign) and stmt.target.name in e.tensor_names:
                value = self.py(stmt.value)
                name = stmt.target.name
                if name == "out":
                    w.line(f"out = {value}")
                    self.cur = "out"
                    continue
                var = self.vars.setdefault(name, e.ns(name))
                w.line(f"{var} = {value}")
                self.lists.pop(name, None)
                self.pylists.discard(name)
                if isinstance(stmt.value, n.Call) and stmt.value.func.name == "split":
                    parts = stmt.value.args[1]
                    self.lists[name] = (
                        _int(len(parts.items)) if isinstance(parts, n.List) else parts
                    )
                elif _list_like(stmt.value, self):
                    self.pylists.add(name)
            elif isinstance(stmt, n.For):
                self._settle(w)
                w.line(f"for {e._rename(stmt.var.name)} in {self.printer(stmt.items)}:")
                self._block(stmt.body, k, w)
            elif isinstance(stmt, n.If):
                self._settle(w)
                w.line(f"if {self.printer(stmt.cond)}:")
                self._block(stmt.then, (*k, 0), w)
                if stmt.orelse:
                    w.line("else:")
                    self._block(stmt.orelse, (*k, 1), w)
            elif isinstance(stmt, n.TapShortcut):
                if self.cur != "x":
                    w.line(f"tapped = {self.cur}")
                    self.tapped = "tapped"
            elif isinstance(stmt, n.AddShortcut) and not e.plain_only:
                attr = f"self.{e.shortcut_attr or 'downsample'}"
                w.line(f"shortcut = x if {attr} is None else {attr}({self.tapped})")
                if e.mixed:
                    w.line("if self.residual:")
                    with w.indent():
                        w.line(
                            f"{self.cur} = {self.cur} + shortcut"
                            if self.cur == "out"
                            else "out = x + shortcut"
                        )
                elif e.inplace_add and self.cur == "out":
                    w.line("out += shortcut")  # in place: its producer's backward never reads it
                else:
                    w.line(f"out = {self.cur} + shortcut")
                self.cur = "out"

    def _block(self, body: tuple[n.Stmt, ...], key: tuple[int, ...], w: Writer) -> None:
        """An indented block: its statements, or `pass` where none has work at run time."""
        start = len(w.lines)
        with w.indent():
            self.stmts(body, key, w)
            if len(w.lines) == start:
                w.line("pass")

    def _settle(self, w: Writer) -> None:
        # A loop or branch may move `out`; before it, `out` must already name the running value.
        if self.cur != "out":
            w.line(f"out = {self.cur}")
            self.cur = "out"


def _list_like(e: n.Expr, f: _Forward) -> bool:
    if isinstance(e, n.List | n.ListComp):
        return True
    if isinstance(e, n.Name):
        return e.id in f.lists or e.id in f.pylists
    if isinstance(e, n.Call) and e.func.name == "split":
        return True
    if isinstance(e, n.BinOp) and e.op == "+":
        return _list_like(e.left, f) or _list_like(e.right, f)
    if isinstance(e, n.IfExp):
        return _list_like(e.then, f) or _list_like(e.orelse, f)
    return False


def _const(e: n.Expr) -> Any:
    """The value of a constant expression (a default, the expansion): lowering checked it."""
    return Evaluator({})(e)


# ---------------------------------------------------------------- the network

_HELPERS = {
    "DropPath": '''
class DropPath(nn.Module):
    """Stochastic depth: drops a sample's whole residual path in training; identity at eval."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: Tensor) -> Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep
''',
    "ZeroPadShortcut": '''
class ZeroPadShortcut(nn.Module):
    """Option A shortcut (He et al. 2015): subsample, append zero channels; no weights."""

    def __init__(self, stride: int, extra_channels: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = extra_channels

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
''',
    "StdConv2d": '''
class StdConv2d(nn.Conv2d):
    """A conv whose filters are standardised (zero mean, unit variance) on every call (BiT)."""

    def __init__(self, *args: Any, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def standardised_weight(self) -> Tensor:
        w = self.weight
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True, unbiased=False)
        return (w - mean) * torch.rsqrt(var + self.eps)

    def forward(self, x: Tensor) -> Tensor:
        w = self.standardised_weight()
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def plain(self) -> nn.Conv2d:
        """A plain conv holding the standardised filters: the same outputs, for inference."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            bias=False,
        ).to(self.weight)
        with torch.no_grad():
            conv.weight.copy_(self.standardised_weight())
        conv.bias = self.bias
        return conv
''',
    "Conv2dThen": '''
class Conv2dThen(nn.Conv2d):
    """A conv whose children are applied to its output in order: a shortcut module that is
    a conv holding its norm (detectron2's ``shortcut`` and ``shortcut.norm``)."""

    def __init__(self, *args: Any, then: OrderedDict[str, nn.Module], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, module in then.items():
            self.add_module(name, module)

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        for module in self.children():
            x = module(x)
        return x
''',
    "FrozenBatchNorm2d": '''
class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics and affine terms, all buffers (detection backbones)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(channels))
        self.register_buffer("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    @classmethod
    def of(cls, bn: nn.BatchNorm2d) -> "FrozenBatchNorm2d":
        """A frozen copy of ``bn``: its statistics and affine terms, as they are now."""
        frozen = cls(bn.num_features, bn.eps)
        with torch.no_grad():
            if bn.affine:
                frozen.weight.copy_(bn.weight)
                frozen.bias.copy_(bn.bias)
            if bn.track_running_stats:
                frozen.running_mean.copy_(bn.running_mean)
                frozen.running_var.copy_(bn.running_var)
        return frozen.to(bn.weight.device if bn.affine else frozen.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
''',
    "EvoNormS0": '''
class EvoNormS0(nn.Module):
    """EvoNorm-S0 (Liu et al. 2020): ``x * sigmoid(v * x) / group_std(x)``, then an affine."""

    def __init__(
        self, channels: int, groups: int = 32, eps: float = 1e-5, act: bool = True
    ) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.v = nn.Parameter(torch.ones(channels)) if act else None

    def forward(self, x: Tensor) -> Tensor:
        if self.v is not None:
            b, c, h, w = x.shape
            grouped = x.float().reshape(b, self.groups, -1)
            var = grouped.var(dim=2, unbiased=False, keepdim=True)
            std = (var + self.eps).sqrt().to(x.dtype).expand(grouped.shape).reshape(b, c, h, w)
            x = x * torch.sigmoid(x * self.v.reshape(1, -1, 1, 1)) / std
        return x * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
''',
    "FilterResponseNorm": '''
class FilterResponseNorm(nn.Module):
    """Filter Response Normalization with its thresholded linear unit (Singh & Krishnan 2020):
    ``x / rms(x)`` over each map, an affine, then ``max(x, tau)``."""

    def __init__(self, channels: int, eps: float = 1e-5, act: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.tau = nn.Parameter(torch.zeros(channels)) if act else None

    def forward(self, x: Tensor) -> Tensor:
        rms = x.float().square().mean(dim=(2, 3), keepdim=True).add(self.eps).rsqrt()
        x = x * rms.to(x.dtype) * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        return x if self.tau is None else torch.maximum(x, self.tau.reshape(1, -1, 1, 1))
''',
    "FeatureInfo": '''
class FeatureInfo(list):
    """The feature maps a backbone gives, as timm's ``feature_info``: a list of dicts (channels
    ``num_chs``, ``reduction`` in input pixels, ``module`` path) with timm's accessors."""

    def channels(self) -> list[int]:
        return [f["num_chs"] for f in self]

    def reduction(self) -> list[int]:
        return [f["reduction"] for f in self]

    def module_name(self) -> list[str]:
        return [f["module"] for f in self]
''',
    "ChannelConv": '''
class ChannelConv(nn.Conv1d):
    """ECA's 1-D conv along the channels of a pooled Cx1x1 map (Wang et al. 2020)."""

    def __init__(self, size: int) -> None:
        super().__init__(1, 1, size, padding=(size - 1) // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.flatten(1).unsqueeze(1)).view_as(x)
''',
    "BlurPool2d": '''
class BlurPool2d(nn.Module):
    """Anti-aliased downsampling (Zhang 2019): a fixed binomial blur, then subsampling."""

    def __init__(self, channels: int, size: int = 3, stride: int = 2, reflect: bool = True) -> None:
        super().__init__()
        self.channels, self.stride, self.reflect = channels, stride, reflect
        self.pad = (stride - 1 + size - 1) // 2
        row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
        kernel = ((row[:, None] * row[None, :]) / row.sum() ** 2).expand(channels, 1, size, size)
        self.register_buffer("filt", kernel.clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        mode = "reflect" if self.reflect else "constant"
        x = F.pad(x, (self.pad,) * 4, mode=mode)
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)
''',
    "ChannelMean": '''
class ChannelMean(nn.Module):
    """The mean over channels at each position (CBAM's spatial attention input)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean(1, keepdim=True)
''',
    "ChannelMax": '''
class ChannelMax(nn.Module):
    """The maximum over channels at each position."""

    def forward(self, x: Tensor) -> Tensor:
        return x.amax(1, keepdim=True)
''',
    "RadixSoftmax": '''
class RadixSoftmax(nn.Module):
    """Softmax over parallel paths (ResNeSt's radix, SK's kernels), in independent groups.

    Channels come in as (groups, paths, C) and go out as (paths, groups, C).
    """

    def __init__(self, paths: int, groups: int = 1) -> None:
        super().__init__()
        self.paths, self.groups = paths, groups

    def forward(self, x: Tensor) -> Tensor:
        y = x.reshape(x.shape[0], self.groups, self.paths, -1).transpose(1, 2)
        return y.softmax(1).reshape(x.shape)
''',
}

_MAKE_DIVISIBLE = '''
def make_divisible(
    value: float, divisor: int = 8, min_value: Optional[int] = None, round_limit: float = 0.9
) -> int:
    """``value`` rounded to a multiple of ``divisor``, at least ``min_value`` (default: the
    divisor) and not more than 10% below ``value``."""
    floor = min_value or divisor
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded
'''


#: ``fold_batch_norms`` and its helpers, emitted in every module (``fuse`` calls it). The
#: emitter fills in @LEAVES@ (the helper conv and norm classes the module defines),
#: @STANDARDISE@ (code that makes standardised convs plain ones) and @STATISTICS@ (the norms
#: that use their input's own statistics).
_FOLD = '''
class _FoldTracer(torch.fx.Tracer):
    \"\"\"Traces a network down to its convs and norms, the layers ``fold_batch_norms`` folds.\"\"\"

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        leaf = isinstance(m, (nn.Conv2d, nn.BatchNorm2d, @LEAVES@))
        return leaf or super().is_leaf_module(m, qualname)


def _replace(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, leaf = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def _set_conv(conv: nn.Conv2d, weight: Tensor, bias: Tensor) -> None:
    \"\"\"Give ``conv`` these weights (computed in float64) and a bias, in its own dtype.\"\"\"
    with torch.no_grad():
        conv.weight.copy_(weight)
        if conv.bias is None:
            conv.bias = nn.Parameter(torch.empty_like(conv.weight[:, 0, 0, 0]))
        conv.bias.copy_(bias)


def _norm_terms(bn: nn.Module) -> tuple[Tensor, Tensor]:
    \"\"\"The per-channel scale and shift an eval-mode batch norm applies, in float64.\"\"\"
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def _fold_into(conv: nn.Conv2d, bn: nn.Module) -> None:
    """Make ``conv`` compute what the eval-mode batch norm ``bn`` makes of its output."""
    scale, shift = _norm_terms(bn)
    bias = shift if conv.bias is None else conv.bias.double() * scale + shift
    _set_conv(conv, conv.weight.double() * scale.reshape(-1, 1, 1, 1), bias)


def _per_filter(v: Tensor, conv: nn.Conv2d) -> Tensor:
    """``v`` (one value per input channel) laid out as ``conv``'s filters read it."""
    out, per_group = conv.weight.shape[:2]
    v = v.reshape(conv.groups, 1, per_group).expand(-1, out // conv.groups, -1)
    return v.reshape(out, per_group, 1, 1)


def _describe(node: torch.fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(modules[str(node.target)]).__name__})"
    if node.op == "placeholder":
        return "the input"
    name = str(getattr(node.target, "__name__", node.target))
    return {"add": "a sum", "iadd": "a sum", "mul": "a product", "cat": "a concatenation"}.get(
        name, name
    )


def _fold_one(
    model: nn.Module, node: torch.fx.Node, modules: dict[str, nn.Module], calls: dict[str, int]
) -> str | None:
    \"\"\"Fold the batch norm ``node`` calls into the conv before it or (a 1x1 conv without
    padding) after it; or say why it cannot be.\"\"\"
    bn = modules[str(node.target)]
    if getattr(bn, "running_var", None) is None:
        return "it has no running statistics"
    if calls[str(node.target)] > 1:
        return "it is applied more than once"
    source = node.args[0]
    conv = None
    if isinstance(source, torch.fx.Node) and source.op == "call_module":
        conv = modules[str(source.target)]
    if isinstance(conv, nn.Conv2d) and len(source.users) == 1 and calls[str(source.target)] == 1:
        _fold_into(conv, bn)
        _replace(model, str(node.target), nn.Identity())
        return None
    users = list(node.users)
    user = users[0] if len(users) == 1 else None
    after = None
    if user is not None and user.op == "call_module" and calls[str(user.target)] == 1:
        after = modules[str(user.target)]
    if isinstance(after, nn.Conv2d) and user is not None and user.args == (node,):
        if after.padding != "valid" and any(after.padding):
            return f"the conv after it, {user.target}, pads its input (the border would differ)"
        scale, shift = _norm_terms(bn)
        weight = after.weight.double()
        bias = (weight * _per_filter(shift, after)).sum((1, 2, 3))
        if after.bias is not None:
            bias = bias + after.bias.double()
        _set_conv(after, weight * _per_filter(scale, after), bias)
        _replace(model, str(node.target), nn.Identity())
        return None
    before = _describe(source, modules) if isinstance(source, torch.fx.Node) else "a constant"
    feeds = ", ".join(_describe(u, modules) for u in users) or "nothing"
    return f"it reads {before} and feeds {feeds}: there is no conv beside it to fold it into"


def fold_batch_norms(model: nn.Module) -> list[tuple[str, str]]:
    \"\"\"Fold every batch norm of the eval-mode ``model`` that has a conv beside it into that
    conv, in place: the norm becomes an identity and the conv gains a bias.@STANDARDISE_DOC@
    Returns the norm layers left, each with the reason, in module order.\"\"\"
    if model.training:
        raise RuntimeError("fold batch norms in eval mode: call model.eval() first")
@STANDARDISE@@THEN@    graph = _FoldTracer().trace(model)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[str(node.target)] = calls.get(str(node.target), 0) + 1
    reasons: dict[str, str] = {}
    for node in graph.nodes:
        if node.op == "call_module" and isinstance(
            modules[str(node.target)], (nn.BatchNorm2d, FrozenBatchNorm2d)
        ):
            reason = _fold_one(model, node, modules, calls)
            if reason is not None:
                reasons[str(node.target)] = reason
    for name, m in model.named_modules():
        if isinstance(m, @STATISTICS@):
            reasons[name] = f"{type(m).__name__} normalises with its input's own statistics"
    return [(name, reasons[name]) for name, _ in model.named_modules() if name in reasons]
'''

#: The code that folds the batch norm a ``Conv2dThen`` holds (detectron2's shortcut norm).
_THEN = """
    for m in model.modules():
        first = next(iter(m.named_children()), None) if isinstance(m, Conv2dThen) else None
        norm = first[1] if first is not None else None
        if isinstance(norm, (nn.BatchNorm2d, FrozenBatchNorm2d)) and norm.running_var is not None:
            _fold_into(m, norm)
            setattr(m, first[0], nn.Identity())
"""

#: The code that makes each standardised conv (BiT's) a plain conv holding its standardised
#: weights, where the module has ``StdConv2d``.
_STANDARDISE = """
    for name, m in list(model.named_modules()):
        if isinstance(m, StdConv2d):
            _replace(model, name, m.plain())
"""


_INIT = '''
def init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """torchvision's initialisation: kaiming-normal (fan_out) convs, BN weight 1 and bias 0.

    With ``zero_init_residual`` every block's last BN starts at zero, so each residual block
    begins as its shortcut (Goyal et al. 2017).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if zero_init_residual:
        for m in model.modules():
            zero_init_last = getattr(m, "zero_init_last", None)
            if callable(zero_init_last):
                zero_init_last()
'''


def _safe_filename(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._/-" else "_" for c in name)


def emit_torch(g: Graph) -> str:
    """The network of ``g`` as standalone PyTorch source."""
    info = net(g)
    w = Writer()
    top = Namespace(
        (
            "nn",
            "torch",
            "F",
            "Tensor",
            "Optional",
            "Any",
            "OrderedDict",
            "math",
            "make_divisible",
            "init_weights",
            "create_model",
            "fold_batch_norms",
            *_HELPERS,
        )
    )
    order = _module_order(info.module_defs)
    module_classes = {name: top(class_name(name), ("module", name)) for name in order}
    block_classes = {name: top(class_name(name), ("block", name)) for name in info.blocks}
    net_class = top(class_name(info.name), ("network", info.name))
    by_block: dict[str, list[BlockInstance]] = {}
    for b in blocks(g):
        by_block.setdefault(b.block, []).append(b)

    module_emitters: dict[str, _BodyEmitter] = {}
    emitted: list[tuple[_BodyEmitter, Writer]] = []
    for name, cls in module_classes.items():
        mdef = info.module_defs[name]
        e = _BodyEmitter(mdef, info.module_types[name], cls, layout(mdef.body), module_emitters)
        body = Writer()
        e.emit(body)
        module_emitters[name] = e
        emitted.append((e, body))
    block_emitters: dict[str, _BodyEmitter] = {}
    for name, definition in info.blocks.items():
        e = _BodyEmitter(
            definition,
            info.param_types[name],
            block_classes[name],
            info.layouts[name],
            module_emitters,
            by_block[name],
        )
        e.inplace_add = all(_adds_in_place(g, b) for b in by_block[name])
        body = Writer()
        e.emit(body)
        block_emitters[name] = e
        emitted.append((e, body))
    used = set().union(*(e.used_ops for e, _ in emitted)) | {g.nodes[v]["kind"] for v in g.nodes}
    # Every network has feature_info and can freeze its batch norms (to_frozen_bn).
    wanted = {"FeatureInfo", "FrozenBatchNorm2d"} | {h for k, h in _HELPER_OF.items() if k in used}
    if any(_conv_then(g, b) for b in blocks(g)):
        wanted.add("Conv2dThen")
    helpers = [_HELPERS[h] for h in sorted(wanted)]

    network = Writer()
    features = feature_info(g)  # once: FEATURE_INFO, the class and create_model use it
    _emit_network(network, g, net_class, block_emitters, len(features))
    bodies = [line for e, body in emitted for line in body.lines] + network.lines
    uses_make_divisible = any("make_divisible(" in line for line in bodies)
    needs_math = any("math." in line for line in bodies) or "blur_pool" in used
    needs_f = bool({"zero_pad", "ws_conv", "blur_pool"} & used)
    needs_ordered = any("OrderedDict(" in line for line in bodies)

    spec_name = _safe_filename(PurePath(info.spec).name)
    w.line(
        f"# Generated by resnetc {resnetc.__version__} from {spec_name} "
        f"(sha256 {info.source_hash[:16]})."
    )
    w.line("# Do not edit: change the spec and run `resnetc build` again.")
    w.line(
        f'"""Network ``{info.name}``: {g.graph["params"]:,} parameters, '
        f'{g.graph["macs"] / 1e9:.3f} GMACs at {"x".join(map(str, info.input))}."""'
    )
    w.line()
    w.line("from __future__ import annotations")
    w.line()
    if needs_math:
        w.line("import math")
    if needs_ordered:
        w.line("from collections import OrderedDict")
    w.line("from typing import Any, Optional")
    w.line()
    w.line("import torch")
    if needs_f:
        w.line("import torch.nn.functional as F")
    w.line("from torch import Tensor, nn")
    w.line("from torch.utils.checkpoint import checkpoint")
    w.line()
    classes = [net_class, *block_classes.values(), *module_classes.values()]
    exported = ["create_model", "PRETRAINED_CFG", "FEATURE_INFO", *classes]
    names = ", ".join(f'"{c}"' for c in exported)
    if len(f"__all__ = [{names}]") <= 100:
        w.line(f"__all__ = [{names}]")
    elif len(f"    {names}") <= 100:  # black's forms: the names on a line of their own
        w.lines.extend(["__all__ = [", f"    {names}", "]"])
    else:  # or one a line
        w.lines.extend(["__all__ = [", *(f"    {x}," for x in names.split(", ")), "]"])
    w.line()
    _emit_pretrained_cfg(w, g)
    w.line()
    _emit_feature_info(w, features)
    if uses_make_divisible:
        w.line()
        w.lines.extend(_MAKE_DIVISIBLE.rstrip("\n").split("\n"))
    for h in helpers:
        w.line()
        w.lines.extend(h.rstrip("\n").split("\n"))
    for _, body in emitted:
        w.line()
        w.line()
        w.lines.extend(body.lines)
    w.line()
    w.line()
    w.lines.extend(network.lines)
    w.line()
    w.lines.extend(_INIT.rstrip("\n").split("\n"))
    w.line()
    w.lines.extend(_fold_source(wanted).rstrip("\n").split("\n"))
    w.line()
    w.line()
    _emit_create_model(w, g, net_class, len(features))
    # Keep the file lint-clean: no unused import.
    code = [line for line in w.lines if not line.startswith(("import", "from"))]
    if not any("torch." in line for line in code):
        w.lines.remove("import torch")
    typing = [
        t
        for t in ("Any", "Optional")
        if any(f"{t}[" in ln or f"{t}," in ln or f"{t}]" in ln or f": {t}" in ln for ln in code)
    ]
    i = w.lines.index("from typing import Any, Optional")
    if typing:
        w.lines[i] = f"from typing import {', '.join(typing)}"
    elif w.lines[i - 1] == "" and w.lines[i + 1] == "":
        del w.lines[i : i + 2]
    else:
        del w.lines[i]
    return w.getvalue()


_STANDARDISE_DOC = (
    " Standardised convs\n    (BiT's) become plain convs holding their standardised filters."
)


def _fold_source(helpers: set[str]) -> str:
    """``fold_batch_norms`` for a module that defines the ``helpers`` classes."""
    leaves = ["FrozenBatchNorm2d", *(["StdConv2d"] if "StdConv2d" in helpers else [])]
    statistics = ["nn.GroupNorm"] + [h for h in ("EvoNormS0", "FilterResponseNorm") if h in helpers]
    std = "StdConv2d" in helpers
    return (
        _FOLD.replace("@LEAVES@", ", ".join(leaves))
        .replace("@STATISTICS@", f"({', '.join(statistics)}{',' if len(statistics) == 1 else ''})")
        .replace("@STANDARDISE@", _STANDARDISE.lstrip("\n") if std else "")
        .replace("@THEN@", _THEN.lstrip("\n") if "Conv2dThen" in helpers else "")
        .replace(
            "@STANDARDISE_DOC@",
            _STANDARDISE_DOC if std else "",
        )
    )


def _emit_pretrained_cfg(w: Writer, g: Graph) -> None:
    """``PRETRAINED_CFG``: what the network's weights expect (timm's ``pretrained_cfg`` fields).
    Every value is a number, None, a path of identifiers or an interpolation name the compiler
    checked against its own list: no other text of the spec reaches the source."""
    w.line("#: The input the weights expect and where the first conv and the classifier are, in")
    w.line("#: timm's ``pretrained_cfg`` fields (from the spec's settings; see `resnetc summary`).")
    w.line("PRETRAINED_CFG: dict[str, Any] = {")
    for key, value in pretrained_cfg(g).items():
        text = (
            f'"{value}"' if isinstance(value, str) else "None" if value is None else literal(value)
        )
        w.line(f'    "{key}": {text},')
    w.line("}")


#: Ops whose backward does not read their output, so it may be added to in place.
_INPLACE_ADD_AFTER = ("bn", "gn", "frozen_bn", "conv", "ws_conv", "mul", "add")


def _adds_in_place(g: Graph, b: BlockInstance) -> bool:
    """Whether block ``b`` may add its shortcut in place (torchvision's and timm's
    ``out += shortcut``): the residual tensor comes from an op whose backward does not need its
    output, and nothing else reads it."""
    if b.add is None:
        return True
    residual = [u for u, _, d in g.in_edges(b.add, data=True) if d.get("port", 0) == 0]
    if len(residual) != 1:
        return False
    r = residual[0]
    return g.nodes[r]["kind"] in _INPLACE_ADD_AFTER and g.out_degree(r) == 1


def _emit_feature_info(w: Writer, features: list[dict[str, Any]]) -> None:
    """``FEATURE_INFO``: the feature maps a backbone gives (the compiler's ``feature_info``)."""
    w.line("#: The feature maps of ``features_only`` models: the stem's, then each stage's, with")
    w.line(
        "#: their channels, reduction (input pixels per pixel) and module (timm's feature_info)."
    )
    w.line("FEATURE_INFO: list[dict[str, Any]] = [")
    for f in features:
        w.line(
            f'    {{"num_chs": {literal(f["num_chs"])}, "reduction": {literal(f["reduction"])}, '
            f'"module": "{f["module"]}"}},'
        )
    w.line("]")


def _module_order(defs: dict[str, n.ModuleDef]) -> list[str]:
    """Module definitions, each after the ones it uses (its class is built from theirs)."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for used in ops_in(defs[name].body):
            if used in defs and used != name:
                visit(used)
        order.append(name)

    for name in defs:
        visit(name)
    return order


def _split_calls(
    g: Graph, calls: list[tuple[str, list[int]]], cuts: set[int]
) -> list[tuple[str, list[int]]]:
    """``calls``, where one runs a group across a cut (a node after which the forward must be
    able to stop: the stem's feature, the classifier) as one call per layer instead."""
    out: list[tuple[str, list[int]]] = []
    for path, nodes in calls:
        if any(v in cuts for v in nodes[:-1]):
            out.extend((g.nodes[v]["local"], [v]) for v in nodes)
        else:
            out.append((path, nodes))
    return out


def _emit_network(
    w: Writer, g: Graph, cls: str, emitters: dict[str, _BodyEmitter], n_features: int
) -> None:
    info = net(g)
    classes = info.classes
    split = feature_split(g)

    w.line(f"class {cls}(nn.Module):")
    with w.indent():
        w.line(f'"""Network ``{info.name}`` for {"x".join(map(str, info.input))} input.')
        w.line()
        w.line("Args:")
        w.line("    num_classes: width of the classifier (the spec's ``classes``).")
        w.line("    in_chans: channels of the input image.")
        w.line("    zero_init_residual: start every residual block as its shortcut.")
        w.line(
            "    features_only: a backbone: ``forward`` gives the feature maps of ``out_indices``"
        )
        w.line(
            "        (``feature_info``: the stem's, then each stage's), and the head is left out."
        )
        w.line("    out_indices: which feature maps ``feature_maps`` (and so ``forward``) gives.")
        w.line('"""')
        w.line()
        default_classes = literal(classes) if classes is not None else "None"
        classes_type = "int" if classes is not None else "Optional[int]"
        w.code(
            f"def __init__(self, num_classes: {classes_type} = {default_classes}, "
            f"in_chans: int = {literal(info.input[0])}, "
            f"zero_init_residual: bool = {literal(info.zero_init)}, "
            "features_only: bool = False, "
            f"out_indices: tuple[int, ...] = {literal(tuple(range(n_features)))}) -> None:"
        )
        containers = _Containers(w)
        with w.indent():
            w.line("super().__init__()")
            w.line("self.pretrained_cfg = dict(PRETRAINED_CFG)")
            w.line("if any(not 0 <= i < len(FEATURE_INFO) for i in out_indices):")
            with w.indent():
                w.line("count = len(FEATURE_INFO)")
                w.line(
                    'raise ValueError(f"out_indices {out_indices}: there are {count} feature maps")'
                )
            w.line("self.num_classes = num_classes")
            w.line("self.features_only = features_only")
            w.line("self.out_indices = tuple(out_indices)")
            w.line("chosen = self.out_indices if features_only else range(len(FEATURE_INFO))")
            w.line("self.feature_info = FeatureInfo(FEATURE_INFO[i] for i in chosen)")
            w.line("self.grad_checkpointing = False")
            w.line("self.frozen_stages = -1")
            w.line("self.norm_eval = False")
            ch = "in_chans"
            stem_calls, ch = _emit_section(w, g, info.stem, ch, containers)
            for stage in info.stages:
                ch = _emit_stage(w, g, stage, ch, emitters, containers)
            head_calls, ch = _emit_section(w, g, info.head, ch, containers)
            w.line("init_weights(self, zero_init_residual)")
            stem_cut = set() if split.stem_feature is None else {split.stem_feature}
            stem_calls = _split_calls(g, stem_calls, stem_cut)
            cuts = set(split.head_features[-1:]) | set(split.pre_logits[-1:])
            if split.classifier is not None:
                cuts.add(split.classifier)
            head_calls = _split_calls(g, head_calls, cuts)
            feature_nodes = set(split.head_features)
            head_feature_calls = [c for c in head_calls if set(c[1]) <= feature_nodes]
            rest = [c for c in head_calls if c not in head_feature_calls]
            pre = [c for c in rest if set(c[1]) <= set(split.pre_logits)]
            cls_calls = [c for c in rest if split.classifier in c[1]]
            post = [c for c in rest if c not in pre and c not in cls_calls]
            dropped = []  # what a backbone leaves out: the head past its features
            kept_roots = {p.split(".")[0] for p, _ in [*stem_calls, *head_feature_calls]}
            for path, _ in [*pre, *cls_calls, *post]:
                root = path.split(".")[0]
                if root not in dropped and root not in kept_roots:
                    dropped.append(root)
            if dropped:
                w.line("if features_only:  # a backbone: no pooling, no classifier")
                with w.indent():
                    w.line("del " + ", ".join(f"self.{r}" for r in dropped))
        w.line()
        _emit_forwards(w, g, info, split, stem_calls, head_feature_calls, pre, cls_calls, post)
        _emit_hooks(w, g, cls, split, stem_calls)


def _emit_forwards(
    w: Writer,
    g: Graph,
    info: NetworkInfo,
    split: FeatureSplit,
    stem_calls: list[tuple[str, list[int]]],
    head_features: list[tuple[str, list[int]]],
    pre: list[tuple[str, list[int]]],
    cls_calls: list[tuple[str, list[int]]],
    post: list[tuple[str, list[int]]],
) -> None:
    def run(calls: list[tuple[str, list[int]]]) -> None:
        for path, _ in calls:
            w.line(f"x = {_attribute(path)}(x)")

    def stages(collect: bool) -> None:
        index = 0
        for path, nodes in stem_calls:
            w.line(f"x = {_attribute(path)}(x)")
            if collect and split.stem_feature in nodes:
                w.line("if 0 in self.out_indices:")
                w.line("    maps.append(x)")
                index = 1
        for stage in info.stages:
            w.line(f"x = self._run_stage({_attribute(stage.name)}, x)")
            if collect:
                w.line(f"if {index} in self.out_indices:")
                w.line("    maps.append(x)")
                index += 1

    w.line("def forward_features(self, x: Tensor) -> Tensor:")
    with w.indent():
        w.line('"""The last feature map: the stem, the stages and any layers of the head before')
        w.line('its pooling (a final norm)."""')
        stages(False)
        run(head_features)
        w.line("return x")
    w.line()
    w.line("def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:")
    with w.indent():
        w.line('"""The head on ``forward_features``\' output; with ``pre_logits``, what comes')
        w.line('before the classifier (the pooled features)."""')
        run(pre)
        if cls_calls:
            w.line("if pre_logits:")
            with w.indent():
                run(post)
                w.line("return x")
            run(cls_calls)
            run(post)
        w.line("return x")
    w.line()
    w.line("def feature_maps(self, x: Tensor) -> list[Tensor]:")
    with w.indent():
        w.line('"""The feature maps of ``out_indices`` (``feature_info`` says what they are)."""')
        w.line("maps = []")
        stages(True)
        w.line("return maps")
    w.line()
    w.line("def forward(self, x: Tensor) -> Any:")
    with w.indent():
        w.line("if self.features_only:")
        w.line("    return self.feature_maps(x)")
        w.line("return self.forward_head(self.forward_features(x))")
    w.line()


def _emit_hooks(
    w: Writer,
    g: Graph,
    cls: str,
    split: FeatureSplit,
    stem_calls: list[tuple[str, list[int]]],
) -> None:
    """Classifier, freezing and checkpointing methods of the network class."""
    info = net(g)
    w.line("def get_classifier(self) -> nn.Module:")
    with w.indent():
        w.line('"""The classifier (timm\'s name): the head\'s last layer with weights."""')
        if split.classifier is not None:
            w.line(f"return {_attribute(g.nodes[split.classifier]['local'])}")
        else:
            w.line("return nn.Identity()  # the spec's head has none")
    w.line()
    w.line("def reset_classifier(self, num_classes: int) -> None:")
    with w.indent():
        w.line('"""A new classifier of ``num_classes`` outputs, freshly initialised; 0 leaves none')
        w.line('(an identity), as timm\'s ``reset_classifier``."""')
        if split.classifier is not None:
            d = g.nodes[split.classifier]
            attrs = _concrete_attrs(d["kind"], d["attrs"])
            attrs["out"] = "num_classes"
            ctor = module_ctor(d["kind"], literal(d["in_shape"][0]), attrs)
            w.line("self.num_classes = num_classes")
            w.code(f"{_attribute(d['local'])} = {ctor} if num_classes > 0 else nn.Identity()")
        else:
            w.line(f'raise ValueError("network {info.name} has no classifier")')
    w.line()
    w.line("def set_grad_checkpointing(self, enable: bool = True) -> None:")
    with w.indent():
        w.line('"""Recompute each block\'s activations in the backward pass instead of keeping')
        w.line('them (training only): less memory, about a third more compute."""')
        w.line("self.grad_checkpointing = enable")
    w.line()
    w.line("def _run_stage(self, stage: nn.Module, x: Tensor) -> Tensor:")
    with w.indent():
        w.line("if self.grad_checkpointing and self.training:")
        w.line("    for block in stage:")
        w.line("        x = checkpoint(block, x, use_reentrant=False)")
        w.line("    return x")
        w.line("return stage(x)")
    w.line()
    roots: list[str] = []
    for path, _ in stem_calls:
        if path.split(".")[0] not in roots:
            roots.append(path.split(".")[0])
    w.line("def _stages(self) -> list[nn.Module]:")
    with w.indent():
        w.line('"""The stem (its modules), then each stage: what ``freeze`` counts."""')
        w.code(f"stem = nn.ModuleList([{', '.join(f'self.{r}' for r in roots)}])")
        items = ["stem", *(_attribute(s.name) for s in info.stages)]
        one = f"return [{', '.join(items)}]"
        if len(one) + 4 * w.level <= 100:
            w.line(one)
        else:  # black's form, one item a line
            w.line("return [")
            for item in items:
                w.line(f"    {item},")
            w.line("]")
    w.line()
    w.line("def freeze(self, stages: int = 0, norm_eval: bool = False) -> None:")
    with w.indent():
        w.line('"""Freeze the stem and the first ``stages`` stages, as detection backbones do')
        w.line("(mmdetection's ``frozen_stages``): their parameters stop learning and their norm")
        w.line("layers keep their statistics. ``stages=-1`` freezes nothing. With ``norm_eval``,")
        w.line('every batch norm of the network stays in eval mode while it trains."""')
        w.line("self.frozen_stages, self.norm_eval = stages, norm_eval")
        w.line("for i, part in enumerate(self._stages()):")
        w.line("    for p in part.parameters():")
        w.line("        p.requires_grad_(i > stages)")
        w.line("self.train(self.training)")
    w.line()
    w.line(f'def train(self, mode: bool = True) -> "{cls}":')
    with w.indent():
        w.line("super().train(mode)")
        w.line("for part in self._stages()[: self.frozen_stages + 1]:")
        w.line("    part.eval()")
        w.line("if self.norm_eval:")
        w.line("    for m in self.modules():")
        w.line("        if isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)):")
        w.line("            m.eval()")
        w.line("return self")
    w.line()
    w.line("def to_frozen_bn(self, everywhere: bool = False) -> None:")
    with w.indent():
        w.line('"""Replace the batch norms of the frozen parts (of the whole network with')
        w.line("``everywhere``) by ``FrozenBatchNorm2d`` holding the same statistics and affine")
        w.line('terms as buffers: no gradient, no update, and foldable."""')
        w.line("parts = [self] if everywhere else self._stages()[: self.frozen_stages + 1]")
        w.line("chosen = {id(m) for part in parts for m in part.modules()}")
        w.line("for name, m in list(self.named_modules()):")
        w.line("    if isinstance(m, nn.BatchNorm2d) and id(m) in chosen:")
        w.line('        parent, _, leaf = name.rpartition(".")')
        w.line("        owner = self.get_submodule(parent) if parent else self")
        w.line("        setattr(owner, leaf, FrozenBatchNorm2d.of(m))")
    w.line()
    w.line("def fuse(self) -> list[tuple[str, str]]:")
    with w.indent():
        w.line(
            '"""For inference (call ``eval()`` first): fold each batch norm into the conv beside'
        )
        w.line("it, in place (``fold_batch_norms``). Returns the norm layers that could not be")
        w.line("folded, with why: a pre-activation block's norm reads a sum and feeds a ReLU,")
        w.line('and a group norm uses its input\'s statistics."""')
        w.line("return fold_batch_norms(self)")
    w.line()
    w.line("def compile_blocks(self, nested: bool = False, **options: Any) -> nn.Module:")
    with w.indent():
        w.line('"""Regional ``torch.compile`` (``options`` go to it); returns the model to call.')
        w.line("")
        w.line("By default each residual block is compiled by itself, in place, and the model is")
        w.line("returned: blocks of one class and shape share a compiled graph, so a deep network")
        w.line("compiles in the time of its few distinct blocks; the stem and head stay eager.")
        w.line("With ``nested``, this model's blocks become nested compile regions")
        w.line("(``torch.compiler.nested_compile_region``, a no-op in eager mode; through a")
        w.line("subclass of each block class, so other models are untouched) and the whole model")
        w.line("is compiled as one graph in which each distinct block is compiled once: longer")
        w.line('to compile, without a guard check per block at run time."""')
        w.line("blocks = [block for stage in self._stages()[1:] for block in stage]")
        w.line("if not nested:")
        w.line("    for block in blocks:")
        w.line("        block.compile(**options)")
        w.line("    return self")
        w.line("regions: dict[type, type] = {}")
        w.line("for block in blocks:")
        w.line("    cls = type(block)")
        w.line("    if cls not in regions:")
        w.line("        forward = torch.compiler.nested_compile_region(cls.forward)")
        w.line('        regions[cls] = type(cls.__name__, (cls,), {"forward": forward})')
        w.line("    block.__class__ = regions[cls]")
        w.line("return torch.compile(self, **options)")


def _attribute(path: str) -> str:
    """``stages.0.blocks`` -> ``self.stages[0].blocks``."""
    text = "self"
    for part in path.split("."):
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


class _Containers:
    """Creates the containers that dotted module paths of the network class need."""

    def __init__(self, w: Writer):
        self.w = w
        self.made: set[str] = set()

    def target(self, path: str) -> str:
        """The assignment target for ``path``, after creating its containers."""
        parts = path.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            child = parts[depth]
            if parent in self.made:
                continue
            self.made.add(parent)
            if depth > 1 and parts[depth - 1].isdigit():
                grand = _attribute(".".join(parts[: depth - 1]))
                self.w.line(f"{grand}.append(nn.ModuleDict())")
                continue
            kind = "ModuleList" if child.isdigit() else "ModuleDict"
            self.w.line(f"{_attribute(parent)} = nn.{kind}()")
        # A layer may hold children of its own (detectron2's `stem.conv1.norm`).
        self.made.add(path)
        if parts[-1].isdigit():
            return f"{_attribute('.'.join(parts[:-1]))}.append"
        return _attribute(path) + " ="

    def assign(self, path: str, lines: list[str]) -> None:
        """``self.<path> = <ctor>``: ``lines`` is a one-line ctor, or an opener, the inner lines
        (already indented one level deeper than here) and a closer."""
        target = self.target(path)
        w = self.w
        if len(lines) == 1:
            w.code(
                f"{target}({lines[0]})" if target.endswith(".append") else f"{target} {lines[0]}"
            )
            return
        if target.endswith(".append"):
            w.line(f"{target}({lines[0]}")
            w.lines.extend(lines[1:-1])
            w.line(lines[-1] + ")")
            return
        w.line(f"{target} {lines[0]}")
        w.lines.extend(lines[1:-1])
        w.line(lines[-1])


def _emit_stage(
    w: Writer,
    g: Graph,
    stage: StageInfo,
    ch: str,
    emitters: dict[str, _BodyEmitter],
    containers: _Containers,
) -> str:
    """Emit one stage's ``nn.Sequential`` of blocks; returns the width after it."""
    calls = []
    for b in stage.blocks:
        calls.append(emitters[b.block].call(g, b, ch))
        out = g.nodes[b.output]["shape"][0]
        if out != g.nodes[b.input]["shape"][0]:
            ch = literal(out)  # else the width is still `in_chans` (or as it was)
    body = Writer()
    body.level = w.level + 1
    named = any(b.name != str(b.index) for b in stage.blocks)
    if named:
        for b, call in zip(stage.blocks, calls, strict=True):
            body.code(f"{b.name}={call},")
    else:
        i = 0
        while i < len(calls):
            j = i
            while j < len(calls) and calls[j] == calls[i]:
                j += 1
            if j - i >= 3:
                body.code(f"*[{calls[i]} for _ in range({j - i})],")
            else:
                for c in calls[i:j]:
                    body.code(c + ",")
            i = j
    opener = "nn.Sequential(OrderedDict(" if named else "nn.Sequential("
    containers.assign(stage.name, [opener, *body.lines, "))" if named else ")"])
    return ch


def _emit_section(
    w: Writer, g: Graph, nodes: list[int], ch: str, containers: _Containers
) -> tuple[list[tuple[str, list[int]]], str]:
    """Emit the modules of a stem or head; return the forward calls (each with the nodes it
    runs) and the channel expression.

    A section is a chain of layers. The layers under one first name that follow one another
    (``conv1.0``, ``conv1.1`` or ``stem.conv``, ``stem.bn``) form one ``nn.Sequential``,
    numbered or named; where they do not (``head.pool``, ``flatten``, ``head.fc``), each is
    called by its path.
    """
    layers: list[tuple[str, str]] = []  # (local path, ctor)
    layer_nodes: list[int] = []
    first_use = True
    prev: int | None = None
    for v in nodes:
        d = g.nodes[v]
        inputs = [u for u, _ in g.in_edges(v)]
        if d["local"] is None or (prev is not None and inputs != [prev]):
            raise CompileError.at(
                d["span"],
                "the torch backend emits a stem or head only as a chain of layers, one after "
                "another; put branches in a module or block",
            )
        prev = v
        attrs = _concrete_attrs(d["kind"], d["attrs"])
        if d.get("out_sym"):
            attrs["out"] = d["out_sym"]
        if d["kind"] in _INPLACE and first_use:
            attrs["inplace"] = "False"  # never overwrite the caller's input tensor
        layers.append((d["local"], module_ctor(d["kind"], ch, attrs)))
        layer_nodes.append(v)
        first_use = False
        if "out" in attrs:
            ch = attrs["out"]
    roots = [local.partition(".")[0] for local, _ in layers]
    runs = [r for i, r in enumerate(roots) if i == 0 or roots[i - 1] != r]
    sequential = {
        r
        for r in roots
        if runs.count(r) == 1
        and all(
            "." not in local.partition(".")[2] for local, _ in layers if local.startswith(r + ".")
        )
    }
    calls: list[tuple[str, list[int]]] = []  # (path called, the nodes it runs)
    modules: dict[str, list[tuple[str, str]]] = {}  # in first-use order
    for (local, ctor), v in zip(layers, layer_nodes, strict=True):
        root, _, child = local.partition(".")
        if root in sequential and child:
            if root not in modules:
                modules[root] = []
                calls.append((root, []))
            modules[root].append((child, ctor))
            calls[-1][1].append(v)
        elif local in modules:
            calls.append((local, [v]))  # a shared parameter-free module, used again
        else:
            modules[local] = [("", ctor)]
            calls.append((local, [v]))
    for path, entries in modules.items():
        if len(entries) == 1 and not entries[0][0]:
            containers.assign(path, [entries[0][1]])
        else:
            containers.assign(path, _sequential(entries, w.level))
    return calls, ch


def _sequential(entries: list[tuple[str, str]], level: int) -> list[str]:
    """The lines of ``nn.Sequential(...)`` over numbered or named children."""
    body = Writer()
    body.level = level + 1
    if all(c.isdigit() for c, _ in entries):
        for _, ctor in entries:
            body.code(ctor + ",")
        return ["nn.Sequential(", *body.lines, ")"]
    for child, ctor in entries:
        body.code(f"{child}={ctor},")
    return ["nn.Sequential(OrderedDict(", *body.lines, "))"]


def _conv_then(g: Graph, b: BlockInstance) -> bool:
    """Whether the block's shortcut module is a conv with children (``Conv2dThen``)."""
    return len(b.shortcut_nodes) > 1 and g.nodes[b.shortcut_nodes[0]]["local"] == b.shortcut_name


def _downsample(g: Graph, b: BlockInstance, ch: str) -> str:
    """The shortcut module; ``ch`` is the block's input width as the network writes it."""
    parts = []
    first = g.nodes[b.shortcut_nodes[0]]["in_shape"][0]
    cin = ch if first == g.nodes[b.input]["shape"][0] else literal(first)
    names = []
    for v in b.shortcut_nodes:
        d = g.nodes[v]
        parts.append(module_ctor(d["kind"], cin, _concrete_attrs(d["kind"], d["attrs"])))
        names.append(d["local"].partition(".")[2])
        if "out" in d["attrs"]:
            cin = literal(d["attrs"]["out"])
    if len(parts) == 1 and not names[0]:
        return parts[0]
    if not names[0]:  # the conv is the module; its children follow it (detectron2's `norm`)
        children = ", ".join(f"{n}={part}" for n, part in zip(names[1:], parts[1:], strict=True))
        assert parts[0].startswith("nn.Conv2d(") and parts[0].endswith(")"), parts[0]
        return f"Conv2dThen({parts[0][len('nn.Conv2d(') : -1]}, then=OrderedDict({children}))"
    if all(name.isdigit() for name in names):
        return "nn.Sequential(" + ", ".join(parts) + ")"
    pairs = ", ".join(f"{name}={part}" for name, part in zip(names, parts, strict=True))
    return f"nn.Sequential(OrderedDict({pairs}))"


def _emit_create_model(w: Writer, g: Graph, cls: str, n_features: int) -> None:
    info = net(g)
    classes = literal(info.classes) if info.classes is not None else "None"
    w.code(
        f"def create_model(num_classes: {'int' if info.classes is not None else 'Optional[int]'}"
        f" = {classes}, in_chans: int = {literal(info.input[0])}, "
        f"zero_init_residual: bool = {literal(info.zero_init)}, features_only: bool = False, "
        f"out_indices: tuple[int, ...] = {literal(tuple(range(n_features)))}) -> {cls}:"
    )
    with w.indent():
        w.line(f'"""Build ``{info.name}`` with freshly initialised weights."""')
        w.code(
            f"return {cls}(num_classes=num_classes, in_chans=in_chans, "
            "zero_init_residual=zero_init_residual, features_only=features_only, "
            "out_indices=out_indices)"
        )
