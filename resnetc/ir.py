"""The IR: a networkx MultiDiGraph, one node per op, and the records passes and backends share.

Node attributes: ``kind`` (an op of :mod:`resnetc.ops`, or ``input``, ``add``, ``mul``,
``concat``, ``slice``), ``attrs`` (concrete hyper-parameters), ``span`` (the spec text that
caused the node), ``scope`` (``("stem",)``, ``("head",)`` or ``(stage, block_index)``),
``local`` (the module path inside its block, stem or head; None for ops without a module);
passes add ``shape``, ``in_shape`` (of port 0), ``path`` (the full module path), ``params``
and ``macs``. Edges carry ``port``, the input's position: an ``add`` made by ``add shortcut``
reads the residual path on port 0 and the shortcut on port 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

import networkx as nx

from . import nodes as n
from .errors import Span
from .ops import INTERNAL, OPS

Graph: TypeAlias = nx.MultiDiGraph

#: The key of the stem-and-head layout in :attr:`NetworkInfo.layouts`.
NETWORK_LAYOUT = "<network>"


@dataclass
class BlockInstance:
    """One block of a stage: its definition, concrete arguments and where it sits in the graph."""

    stage: str
    index: int
    block: str
    args: dict[str, Any]
    span: Span
    rule: str
    input: int
    name: str = ""  # within the stage: "0", "1"... or "b1", "b2"... (a stage's prefix and start)
    output: int = -1
    add: int | None = None
    tap: int | None = None
    nodes: list[int] = field(default_factory=list)
    shortcut: str = (
        "identity"  # what the shortcut pass chose: identity/projection/avg_down/zero_pad/none
    )
    shortcut_nodes: list[int] = field(default_factory=list)
    #: Module definitions used in the block, by their path inside it.
    modules: dict[str, str] = field(default_factory=dict)
    #: The name of the shortcut's module in the block (``downsample`` unless the block says).
    shortcut_name: str = "downsample"

    @property
    def path(self) -> str:
        return f"{self.stage}.{self.name or self.index}"


@dataclass
class StageInfo:
    """A stage: its name, its statement and its blocks."""

    name: str
    span: Span
    block: str
    blocks: list[BlockInstance] = field(default_factory=list)


@dataclass
class NetworkInfo:
    """Network-level facts the backends need (kept in ``graph.graph["net"]``)."""

    name: str
    spec: str
    source_hash: str
    input: tuple[int, int, int]
    classes: int | None
    zero_init: bool
    title: str | None
    paper: str | None
    #: The input the weights expect: timm's ``pretrained_cfg`` fields input_size, interpolation,
    #: crop_pct, mean and std (the spec's settings, defaults filled in).
    preprocess: dict[str, Any]
    blocks: dict[str, n.BlockDef]
    param_types: dict[str, dict[str, str]]
    #: Module definitions the network uses (one emitted class each) and their parameter types.
    module_defs: dict[str, n.ModuleDef] = field(default_factory=dict)
    module_types: dict[str, dict[str, str]] = field(default_factory=dict)
    rules: dict[str, n.RuleDef] = field(default_factory=dict)
    #: What rule bodies may use (the program's modules), for the shortcut pass.
    definitions: Any = None
    stem: list[int] = field(default_factory=list)
    head: list[int] = field(default_factory=list)
    sections: tuple[n.Stmt, ...] = ()  # stem body + head body, as laid out together
    #: Module names by layer position (resnetc.layout): "<network>" for the stem and head, and
    #: one per block definition. Computed once, so the IR's paths and the emitted code agree.
    layouts: dict[str, dict[tuple[int, ...], str]] = field(default_factory=dict)
    stages: list[StageInfo] = field(default_factory=list)


def net(g: Graph) -> NetworkInfo:
    """The network record of a graph."""
    info: NetworkInfo = g.graph["net"]
    return info


def ordered(g: Graph) -> list[int]:
    """Nodes in a deterministic topological order (smallest id first among the ready ones)."""
    return list(nx.lexicographical_topological_sort(g))


def main_input(g: Graph, node: int) -> int | None:
    """The node feeding ``node``'s port 0."""
    for u, _, port in g.in_edges(node, data="port"):
        if port == 0:
            return int(u)
    return None


def blocks(g: Graph) -> list[BlockInstance]:
    """Every block instance, in network order."""
    return [b for s in net(g).stages for b in s.blocks]


class LintError(AssertionError):
    """An IR invariant does not hold: a compiler bug, not a spec error."""


def lint(g: Graph) -> None:
    """Check the IR's invariants, naming the offending node; tests run it after every pass."""
    if not nx.is_directed_acyclic_graph(g):
        raise LintError(f"the graph has a cycle: {nx.find_cycle(g)}")
    inputs = [v for v, k in g.nodes(data="kind") if k == "input"]
    if len(inputs) != 1:
        raise LintError(f"expected one input node, found {inputs}")
    paths: dict[str, int] = {}
    for v, d in g.nodes(data=True):
        kind = d.get("kind")
        if kind not in OPS and kind not in INTERNAL:
            raise LintError(f"node {v} has unknown kind {kind!r}")
        for key in ("attrs", "span", "scope", "local"):
            if key not in d:
                raise LintError(f"node {v} ({kind}) has no {key!r}")
        ports = sorted(p for _, _, p in g.in_edges(v, data="port"))
        if kind in ("add", "mul", "concat"):
            if ports != list(range(len(ports))) or not ports:
                raise LintError(f"{kind} node {v} has input ports {ports}")
        else:
            expected = [] if kind == "input" else [0]
            if ports != expected:
                raise LintError(f"node {v} ({kind}) has input ports {ports}, expected {expected}")
        shape = d.get("shape", ())
        if shape is not None and not all(isinstance(x, int) and x > 0 for x in shape):
            raise LintError(f"node {v} ({kind}) has a bad shape {shape!r}")
        path = d.get("path")
        if path is not None:
            if path in paths and not _shared_module(g, paths[path], v):
                raise LintError(f"nodes {paths[path]} and {v} share the module path {path!r}")
            paths[path] = v
    for u, v, port in g.edges(data="port"):
        # Lowering numbers nodes after their inputs (infer_shapes relies on it); only the
        # shortcuts the shortcut pass inserts later feed an earlier `add`, on port 1.
        if u >= v and not (port == 1 and g.nodes[v]["kind"] == "add"):
            raise LintError(f"edge {u} -> {v} runs against the node numbering")
    for b in blocks(g):
        for v in [b.input, b.output, *b.nodes, *b.shortcut_nodes]:
            if v not in g:
                raise LintError(f"block {b.path} refers to node {v}, which is not in the graph")
        if b.add is not None and b.add not in g:
            raise LintError(f"block {b.path} refers to a removed add node {b.add}")


def _shared_module(g: Graph, a: int, b: int) -> bool:
    # Unnamed parameter-free layers with the same definition share a module (like torchvision's
    # single self.relu); two nodes may then carry one path, but only within one scope.
    da, db = g.nodes[a], g.nodes[b]
    sections = (("stem",), ("head",))  # one namespace: the network class's
    same_place = da["scope"] == db["scope"] or da["scope"] in sections and db["scope"] in sections
    if not same_place or da["kind"] != db["kind"] or da["kind"] not in OPS:
        return False
    # A parameter-free layer may be shared by structure; one with weights only by being written
    # again with the same definition (shared weights).
    return not OPS[da["kind"]].parametric or da["attrs"] == db["attrs"]


def first_conv(g: Graph) -> str | None:
    """Module path of the conv that reads the image (timm's ``pretrained_cfg["first_conv"]``:
    the layer whose weights change when the number of input channels does)."""
    from .ops import CONVS

    for v in ordered(g):
        if g.nodes[v]["kind"] in CONVS:
            path: str | None = g.nodes[v].get("path")
            return path
    return None


def classifier(g: Graph) -> str | None:
    """Module path of the classifier, the head's last layer with weights (timm's
    ``pretrained_cfg["classifier"]``: what changing ``num_classes`` re-initialises)."""
    from .ops import CONVS

    for v in reversed(net(g).head):
        if g.nodes[v]["kind"] in ("linear", *CONVS):
            path: str | None = g.nodes[v].get("path")
            return path
    return None


def pretrained_cfg(g: Graph) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` fields for the network: the spec's preprocessing settings, the
    number of classes, and the paths of the first conv and the classifier."""
    info = net(g)
    return {
        **info.preprocess,
        "num_classes": info.classes,
        "first_conv": first_conv(g),
        "classifier": classifier(g),
    }


#: Stem layers that may follow its feature point: the stem's pooling (and padding before it).
_STEM_TAIL = ("maxpool", "avgpool", "blur_pool", "pad")


@dataclass(frozen=True)
class FeatureSplit:
    """Where the network's feature maps are, node by node (see :func:`feature_split`)."""

    #: The stem node whose output is feature 0 (None without a stem).
    stem_feature: int | None
    #: Head nodes that keep the last stage's spatial size (a final norm, RegNetZ's conv): part
    #: of the features, as timm's forward_features.
    head_features: tuple[int, ...]
    #: The rest of the head: before the classifier, the classifier, after it.
    pre_logits: tuple[int, ...]
    classifier: int | None
    post_logits: tuple[int, ...]


def feature_split(g: Graph) -> FeatureSplit:
    """The stem's feature point (the output before its trailing pool, as timm's ``act1``), the
    head's spatial prefix, and the head around the classifier."""
    info = net(g)
    stem_feature = None
    if info.stem:
        i = len(info.stem) - 1
        while i > 0 and g.nodes[info.stem[i]]["kind"] in _STEM_TAIL:
            i -= 1
        stem_feature = info.stem[i]
    last = g.nodes[info.stages[-1].blocks[-1].output]["shape"] if info.stages else None
    head = list(info.head)
    spatial: list[int] = []
    for v in head:
        shape = g.nodes[v]["shape"]
        if last is None or len(shape) != 3 or shape[1:] != last[1:]:
            break
        spatial.append(v)
    rest = head[len(spatial) :]
    path = classifier(g)
    cls = next((v for v in rest if g.nodes[v].get("path") == path), None) if path else None
    at = rest.index(cls) if cls is not None else len(rest)
    return FeatureSplit(
        stem_feature=stem_feature,
        head_features=tuple(spatial),
        pre_logits=tuple(rest[:at]),
        classifier=cls,
        post_logits=tuple(rest[at + 1 :]) if cls is not None else (),
    )


def feature_info(g: Graph) -> list[dict[str, Any]]:
    """timm's ``feature_info``: for the stem's feature and each stage's output, its channels,
    reduction (input pixels per output pixel) and module path, as timm's ``features_only``
    models give them (a final norm or conv of the head is not part of them). Computed from the
    IR: no forward pass, no torch."""
    from .summary import receptive_fields  # (summary imports this module)

    info = net(g)
    split = feature_split(g)
    strides = receptive_fields(g)
    out: list[dict[str, Any]] = []

    def entry(node: int, module: str) -> dict[str, Any]:
        window = strides[node]
        reduction = window[1] if window else round(info.input[1] / g.nodes[node]["shape"][1])
        return {"num_chs": g.nodes[node]["shape"][0], "reduction": reduction, "module": module}

    def root(path: str | None) -> str:
        return (path or "").split(".")[0]

    if split.stem_feature is not None:
        module = g.nodes[split.stem_feature].get("path") or "stem"
        roots = {root(g.nodes[v].get("path")) for v in info.stem}
        if split.stem_feature == info.stem[-1] and len(roots) == 1:
            module = roots.pop()  # the whole stem module (RegNet's `stem`)
        out.append(entry(split.stem_feature, module))
    for stage in info.stages:
        out.append(entry(stage.blocks[-1].output, stage.name))
    return out
