"""The PyTorch backend: IR graph -> standalone Python source that imports only torch.

Layout of the emitted file (after timm's resnet.py): header, imports, helper modules the network
needs, one class per block definition (its constructor takes the block's parameters, like
torchvision's ``Bottleneck(inplanes, planes, stride, downsample, ...)``), the network class,
``init_weights`` and ``create_model``. Names from the spec reach the source only through
:class:`~backends.codegen.Namespace`; values only as ``repr`` of ints, floats and bools.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Any

import resnetc
from resnetc import nodes as n
from resnetc.evaluate import Evaluator, infer_type
from resnetc.formatter import ExprPrinter
from resnetc.ir import BlockInstance, Graph, blocks, net
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
    "se": lambda cin, a: f"SqueezeExcite({cin}, {a['out']})",
    "zero_pad": lambda cin, a: f"ZeroPadShortcut({a['stride']}, {a['out']} - {cin})",
}

#: Helper classes a module constructor may need, emitted only when used.
_HELPER_OF = {"drop_path": "DropPath", "se": "SqueezeExcite", "zero_pad": "ZeroPadShortcut"}


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


# ---------------------------------------------------------------- blocks


class _BlockEmitter:
    """Emits the class of one block definition from its AST, generic over its parameters."""

    def __init__(
        self,
        block: n.BlockDef,
        types: dict[str, str],
        instances: list[BlockInstance],
        cls: str,
        names: dict[tuple[int, ...], str],
    ):
        self.block = block
        self.cls = cls
        self.types = dict(types)
        self.instances = instances
        self.ns = Namespace(
            (
                "self",
                "in_channels",
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
            )
        )
        self.names = {p.name.name: self.ns(p.name.name) for p in block.params}
        self.defaults = {
            p.name.name: _const(p.default) for p in block.params if p.default is not None
        }
        self.layout = names
        kinds = {b.shortcut for b in instances}
        self.has_add = any(isinstance(s, n.AddShortcut) for s in block.body)
        self.plain_only = kinds == {"none"}
        self.mixed = "none" in kinds and len(kinds) > 1
        self.locals: dict[str, str] = {}
        self.printer = ExprPrinter(python=True, rename=self._rename, int_division=self._int_div)
        self.used_ops: set[str] = set()

    def _rename(self, name: str) -> str:
        if name == "expansion":
            return "self.expansion"
        if name in self.locals:
            return self.locals[name]
        return self.names[name]

    def _int_div(self, e: n.BinOp) -> bool:
        return infer_type(e.left, self.types) == "int" and infer_type(e.right, self.types) == "int"

    def py(self, e: n.Expr, context: int = 0) -> str:
        return self.printer(e, context)

    def _attrs(self, layer: n.Layer) -> dict[str, str]:
        spec = OPS[layer.op.name]
        a: dict[str, str] = {}
        if layer.kernel:
            a["kernel"] = _kernel_text(layer.kernel)
        if spec.stride:
            a["stride"] = self.py(layer.stride) if layer.stride is not None else "1"
        if layer.out is not None:
            a["out"] = self.py(layer.out)
        if spec.arg:
            a[spec.arg] = self.py(layer.arg) if layer.arg is not None else "0.0"
        for opt in layer.options:
            a[opt.key.name] = "True" if opt.value is None else self.py(opt.value)
        if "padding" in spec.options and "padding" not in a:
            kh, kw = layer.kernel or (1, 1)
            dil = next((o.value for o in layer.options if o.key.name == "dilation"), None)
            pads = []
            for k in (kh, kw):
                c = default_padding(k)
                if dil is None or c == 0:
                    pads.append(str(c))
                else:
                    d = self.py(dil, 8)
                    pads.append(d if c == 1 else f"{c} * {d}")
            a["padding"] = pads[0] if pads[0] == pads[1] else f"({pads[0]}, {pads[1]})"
        return a

    def _preserved_positions(self) -> set[str]:
        # An in-place activation must not overwrite the block input (the identity shortcut reads
        # it) or the tapped tensor: such a shared module is emitted with inplace=False.
        names: set[str] = set()
        fresh = True  # the next layer reads x or the tapped tensor
        for i, stmt in enumerate(self.block.body):
            if isinstance(stmt, n.TapShortcut):
                fresh = True
            elif isinstance(stmt, n.Layer):
                if fresh and stmt.op.name in _INPLACE:
                    names.add(self.layout[(i,)])
                fresh = False
            elif isinstance(stmt, n.Group | n.AddShortcut):
                fresh = False
        return names

    def emit(self, w: Writer) -> None:
        b = self.block
        w.line(f"class {self.cls}(nn.Module):")
        with w.indent():
            w.line(f'"""Block ``{b.name.name}`` of the spec.')
            w.line()
            w.line("Args:")
            w.line("    in_channels: channels of the block's input.")
            for p in b.params:
                w.line(
                    f"    {self.names[p.name.name]}: the block parameter ``{p.name.name}`` "
                    f"({self.types[p.name.name]})."
                )
            if self.has_add and not self.plain_only:
                w.line(
                    "    downsample: the shortcut's module where the block changes shape; None "
                    "for identity."
                )
            if self.mixed:
                w.line("    residual: False to drop the shortcut (plain network).")
            w.line('"""')
            w.line()
            expansion = _const(b.expansion) if b.expansion is not None else 1
            w.line(f"expansion = {literal(expansion)}")
            w.line()
            self._init(w)
            w.line()
            self._forward(w)
            self._zero_init(w)

    def _signature(self) -> str:
        parts = ["self", "in_channels: int"]
        for p in self.block.params:
            typ = self.types[p.name.name] or "int"
            default = f" = {self.py(p.default)}" if p.default is not None else ""
            parts.append(f"{self.names[p.name.name]}: {typ}{default}")
        if self.has_add and not self.plain_only:
            parts.append("downsample: Optional[nn.Module] = None")
        if self.mixed:
            parts.append("residual: bool = True")
        return ", ".join(parts)

    def _init(self, w: Writer) -> None:
        w.code(f"def __init__({self._signature()}) -> None:")
        preserved = self._preserved_positions()
        with w.indent():
            w.line("super().__init__()")
            ch = "in_channels"
            made: set[str] = set()
            for i, stmt in enumerate(self.block.body):
                if isinstance(stmt, n.Assign):
                    local = self.ns(stmt.target.name)
                    w.line(f"{local} = {self.py(stmt.value)}")
                    self.locals[stmt.target.name] = local
                elif isinstance(stmt, n.Layer):
                    name = self.layout[(i,)]
                    ctor, ch = self._ctor(stmt, ch, keep_input=name in preserved)
                    if name not in made:
                        w.code(f"self.{name} = {ctor}")
                        made.add(name)
                elif isinstance(stmt, n.Group):
                    parts = []
                    for child in stmt.body:
                        assert isinstance(child, n.Layer)
                        ctor, ch = self._ctor(child, ch)
                        parts.append(ctor)
                    w.line(f"self.{stmt.name.name} = nn.Sequential(")
                    with w.indent():
                        for part in parts:
                            w.code(part + ",")
                    w.line(")")
            if self.has_add and not self.plain_only:
                w.line("self.downsample = downsample")
            if self.mixed:
                w.line("self.residual = residual")

    def _ctor(self, layer: n.Layer, ch: str, keep_input: bool = False) -> tuple[str, str]:
        attrs = self._attrs(layer)
        if keep_input and layer.op.name in _INPLACE:
            attrs["inplace"] = "False"
        self.used_ops.add(layer.op.name)
        ctor = module_ctor(layer.op.name, ch, attrs)
        return ctor, attrs.get("out", ch) if layer.op.name not in ("se",) else ch

    def _forward(self, w: Writer) -> None:
        w.line("def forward(self, x: Tensor) -> Tensor:")
        with w.indent():
            cur, tapped = "x", "x"
            for i, stmt in enumerate(self.block.body):
                if isinstance(stmt, n.Layer | n.Group):
                    name = self.layout[(i,)] if isinstance(stmt, n.Layer) else stmt.name.name
                    w.line(f"out = self.{name}({cur})")
                    cur = "out"
                elif isinstance(stmt, n.TapShortcut):
                    if cur != "x":
                        w.line(f"tapped = {cur}")
                        tapped = "tapped"
                elif isinstance(stmt, n.AddShortcut) and not self.plain_only:
                    w.line(
                        f"shortcut = x if self.downsample is None else self.downsample({tapped})"
                    )
                    if self.mixed:
                        w.line("if self.residual:")
                        with w.indent():
                            w.line(
                                f"{cur} = {cur} + shortcut"
                                if cur == "out"
                                else "out = x + shortcut"
                            )
                    else:
                        w.line(f"out = {cur} + shortcut")
                    cur = "out"
            w.line(f"return {cur}")

    def call(self, g: Graph, b: BlockInstance, ch: str) -> str:
        """The constructor call for instance ``b``; ``ch`` is its input width as written."""
        args = [ch]
        for p in self.block.params:
            key = p.name.name
            value = b.args[key]
            if key not in self.defaults:
                args.append(literal(value))
            elif value != self.defaults[key] or type(value) is not type(self.defaults[key]):
                args.append(f"{self.names[key]}={literal(value)}")
        if b.shortcut_nodes:
            args.append(f"downsample={_downsample(g, b, ch)}")
        if self.mixed and b.shortcut == "none":
            args.append("residual=False")
        return f"{self.cls}({', '.join(args)})"

    def _zero_init(self, w: Writer) -> None:
        # Zero the last BN (or, with none after the last conv, that conv) before the add, so the
        # block starts as its shortcut: "Bag of Tricks" / torchvision's zero_init_residual.
        target = None
        body = self.block.body
        adds = [i for i, s in enumerate(body) if isinstance(s, n.AddShortcut)]
        if not adds or self.plain_only:
            return
        for i in range(adds[0] - 1, -1, -1):
            stmt = body[i]
            if isinstance(stmt, n.Layer) and stmt.op.name in ("bn", "conv"):
                target = f"self.{self.layout[(i,)]}"
            elif isinstance(stmt, n.Group) and stmt.body:
                last = stmt.body[-1]
                if isinstance(last, n.Layer) and last.op.name in ("bn", "conv"):
                    target = f"self.{stmt.name.name}[{len(stmt.body) - 1}]"
            if target:
                break
            if isinstance(stmt, n.Layer) and OPS[stmt.op.name].parametric and stmt.op.name != "se":
                break
        if target is None:
            return
        w.line()
        w.line("def zero_init_last(self) -> None:")
        with w.indent():
            w.line('"""Zero the last weight layer of the residual path (identity start)."""')
            w.line(f"nn.init.zeros_({target}.weight)")


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
    "SqueezeExcite": '''
class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from globally pooled features."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1, bias=True)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.fc2(self.act(self.fc1(s)))
        return x * s.sigmoid()
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
}

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
        ("nn", "torch", "F", "Tensor", "Optional", "init_weights", "create_model", *_HELPERS)
    )
    block_classes = {name: top(class_name(name)) for name in info.blocks}
    net_class = top(class_name(info.name))
    by_block: dict[str, list[BlockInstance]] = {}
    for b in blocks(g):
        by_block.setdefault(b.block, []).append(b)

    emitters: list[tuple[_BlockEmitter, Writer]] = []
    for name, definition in info.blocks.items():
        e = _BlockEmitter(
            definition,
            info.param_types[name],
            by_block[name],
            block_classes[name],
            info.layouts[name],
        )
        body = Writer()
        e.emit(body)
        emitters.append((e, body))
    used = set().union(*(e.used_ops for e, _ in emitters)) | {g.nodes[v]["kind"] for v in g.nodes}
    helpers = [_HELPERS[h] for k, h in sorted(_HELPER_OF.items()) if k in used]
    needs_f = "zero_pad" in used

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
    w.line("from typing import Optional")
    w.line()
    w.line("import torch")
    if needs_f:
        w.line("import torch.nn.functional as F")
    w.line("from torch import Tensor, nn")
    w.line()
    w.line(
        '__all__ = ["create_model", '
        + ", ".join(f'"{c}"' for c in [net_class, *block_classes.values()])
        + "]"
    )
    for h in helpers:
        w.line()
        w.lines.extend(h.rstrip("\n").split("\n"))
    for _, body in emitters:
        w.line()
        w.line()
        w.lines.extend(body.lines)
    w.line()
    w.line()
    _emit_network(w, g, net_class, {e.block.name.name: e for e, _ in emitters})
    w.line()
    w.lines.extend(_INIT.rstrip("\n").split("\n"))
    w.line()
    w.line()
    _emit_create_model(w, g, net_class)
    # Keep the file lint-clean: no unused import.
    code = [line for line in w.lines if not line.startswith(("import", "from"))]
    if not any("torch." in line for line in code):
        w.lines.remove("import torch")
    if not any("Optional[" in line for line in code):  # plain networks have no downsample
        i = w.lines.index("from typing import Optional")
        del w.lines[i : i + 2]
    return w.getvalue()


def _emit_network(w: Writer, g: Graph, cls: str, emitters: dict[str, _BlockEmitter]) -> None:
    info = net(g)
    classes = info.classes
    w.line(f"class {cls}(nn.Module):")
    with w.indent():
        w.line(f'"""Network ``{info.name}`` for {"x".join(map(str, info.input))} input.')
        w.line()
        w.line("Args:")
        w.line("    num_classes: width of the classifier (the spec's ``classes``).")
        w.line("    in_chans: channels of the input image.")
        w.line("    zero_init_residual: start every residual block as its shortcut.")
        w.line('"""')
        w.line()
        default_classes = literal(classes) if classes is not None else "None"
        classes_type = "int" if classes is not None else "Optional[int]"
        w.code(
            f"def __init__(self, num_classes: {classes_type} = {default_classes}, "
            f"in_chans: int = {literal(info.input[0])}, "
            f"zero_init_residual: bool = {literal(info.zero_init)}) -> None:"
        )
        with w.indent():
            w.line("super().__init__()")
            ch = "in_chans"
            stem_calls, ch = _emit_section(w, g, info.stem, ch)
            for stage in info.stages:
                w.line(f"self.{stage.name} = nn.Sequential(")
                with w.indent():
                    calls = []
                    for b in stage.blocks:
                        calls.append(emitters[b.block].call(g, b, ch))
                        out = g.nodes[b.output]["shape"][0]
                        if out != g.nodes[b.input]["shape"][0]:
                            ch = literal(out)  # else the width is still `in_chans` (or as it was)
                    i = 0
                    while i < len(calls):
                        j = i
                        while j < len(calls) and calls[j] == calls[i]:
                            j += 1
                        if j - i >= 3:
                            w.code(f"*[{calls[i]} for _ in range({j - i})],")
                        else:
                            for c in calls[i:j]:
                                w.code(c + ",")
                        i = j
                w.line(")")
            head_calls, ch = _emit_section(w, g, info.head, ch)
            w.line("init_weights(self, zero_init_residual)")
        w.line()
        w.line("def forward(self, x: Tensor) -> Tensor:")
        with w.indent():
            for name in stem_calls:
                w.line(f"x = self.{name}(x)")
            for stage in info.stages:
                w.line(f"x = self.{stage.name}(x)")
            for name in head_calls:
                w.line(f"x = self.{name}(x)")
            w.line("return x")


def _emit_section(w: Writer, g: Graph, nodes: list[int], ch: str) -> tuple[list[str], str]:
    """Emit the modules of a stem or head; return the forward calls and the channel expression."""
    calls: list[str] = []
    modules: dict[str, str | list[str]] = {}  # in first-use order: one ctor, or a group's ctors
    first_use = True
    for v in nodes:
        d = g.nodes[v]
        attrs = _concrete_attrs(d["kind"], d["attrs"])
        if d.get("out_sym"):
            attrs["out"] = d["out_sym"]
        if d["kind"] in _INPLACE and first_use:
            attrs["inplace"] = "False"  # never overwrite the caller's input tensor
        ctor = module_ctor(d["kind"], ch, attrs)
        first_use = False
        if "out" in attrs and d["kind"] != "se":
            ch = attrs["out"]
        name = d["group"] if d["group"] is not None else d["path"]
        if name not in modules:
            modules[name] = [] if d["group"] is not None else ctor
        elif d["group"] is None:
            calls.append(name)  # a shared parameter-free module, used again
            continue
        entry = modules[name]
        if isinstance(entry, list):
            if not entry:
                calls.append(name)
            entry.append(ctor)
        else:
            calls.append(name)
    for name, entry in modules.items():
        if isinstance(entry, str):
            w.code(f"self.{name} = {entry}")
            continue
        w.line(f"self.{name} = nn.Sequential(")
        with w.indent():
            for c in entry:
                w.code(c + ",")
        w.line(")")
    return calls, ch


def _downsample(g: Graph, b: BlockInstance, ch: str) -> str:
    """The shortcut module; ``ch`` is the block's input width as the network writes it."""
    parts = []
    first = g.nodes[b.shortcut_nodes[0]]["in_shape"][0]
    cin = ch if first == g.nodes[b.input]["shape"][0] else literal(first)
    for v in b.shortcut_nodes:
        d = g.nodes[v]
        parts.append(module_ctor(d["kind"], cin, _concrete_attrs(d["kind"], d["attrs"])))
        if "out" in d["attrs"]:
            cin = literal(d["attrs"]["out"])
    if len(parts) == 1 and g.nodes[b.shortcut_nodes[0]]["kind"] == "zero_pad":
        return parts[0]
    return "nn.Sequential(" + ", ".join(parts) + ")"


def _emit_create_model(w: Writer, g: Graph, cls: str) -> None:
    info = net(g)
    classes = literal(info.classes) if info.classes is not None else "None"
    w.code(
        f"def create_model(num_classes: {'int' if info.classes is not None else 'Optional[int]'}"
        f" = {classes}, in_chans: int = {literal(info.input[0])}, "
        f"zero_init_residual: bool = {literal(info.zero_init)}) -> {cls}:"
    )
    with w.indent():
        w.line(f'"""Build ``{info.name}`` with freshly initialised weights."""')
        w.code(
            f"return {cls}(num_classes=num_classes, in_chans=in_chans, "
            "zero_init_residual=zero_init_residual)"
        )
