"""The generated model as a backbone (issue 12): feature maps and feature_info, forward_features
and forward_head, the classifier hooks, freezing, frozen batch norm and gradient checkpointing,
on a basic-block, a bottleneck, a pre-activation and two multi-path networks, against timm's
models of the same name where timm has the same hook."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from support import SPEC, import_timm, randomise_norms

import resnetc
from resnetc.ir import feature_info

#: basic blocks, bottlenecks (ResNet-D), pre-activation, multi-path (SK, Res2Net), RegNet.
NETWORKS = ["resnet18", "resnet26d", "resnetv2_18", "skresnet18", "res2net50_48w_2s", "regnetx_002"]


def _pair(name: str) -> tuple[Any, Any]:
    """Our model and timm's, with timm's (randomised) weights in both, in eval mode."""
    timm = import_timm()
    ref = timm.create_model(name, pretrained=False)
    randomise_norms(ref)
    ours = resnetc.load(SPEC / f"{name}.resnet")
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours.eval(), ref.eval()


def _image(size: int = 64) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(5))


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= 1e-4 * max(1.0, float(want.abs().max()))


@pytest.mark.parametrize("name", NETWORKS)
def test_feature_maps_and_feature_info_are_timms(name: str) -> None:
    """``features_only=True`` gives the maps timm's features_only model gives (the stem's before
    its pool, then each stage's), with the same channels and reductions; the compiler computes
    feature_info without a forward pass."""
    timm = import_timm()
    ours, ref = _pair(name)
    info = timm.create_model(name, features_only=True).feature_info
    g = resnetc.compile(SPEC / f"{name}.resnet")
    assert [(f["num_chs"], f["reduction"]) for f in feature_info(g)] == list(
        zip(info.channels(), info.reduction(), strict=True)
    )
    # timm's maps: hooks on its full model at the modules its feature_info names.
    x = _image()
    want: dict[str, torch.Tensor] = {}
    modules = dict(ref.named_modules())
    hooks = [
        modules[path].register_forward_hook(
            lambda _m, _i, out, path=path: want.__setitem__(path, out)
        )
        for path in info.module_name()
    ]
    with torch.no_grad():
        ref(x)
    for h in hooks:
        h.remove()
    backbone = resnetc.load(SPEC / f"{name}.resnet", features_only=True, out_indices=(0, 2, 4))
    state = {k: v for k, v in ours.state_dict().items() if k in backbone.state_dict()}
    backbone.load_state_dict(state, strict=True)
    backbone.eval()
    assert backbone.feature_info.channels() == [info.channels()[i] for i in (0, 2, 4)]
    assert backbone.feature_info.module_name() == [feature_info(g)[i]["module"] for i in (0, 2, 4)]
    with torch.no_grad():
        maps = backbone(x)
    assert len(maps) == 3
    for got, path in zip(maps, [info.module_name()[i] for i in (0, 2, 4)], strict=True):
        _close(got, want[path])
    # A backbone has no head: no pooling, no classifier, nothing DDP would find unused.
    assert not any(k.startswith(("fc.", "head.")) for k in backbone.state_dict())


@pytest.mark.parametrize("name", NETWORKS)
def test_forward_features_and_head_are_timms(name: str) -> None:
    ours, ref = _pair(name)
    x = _image()
    with torch.no_grad():
        _close(ours.forward_features(x), ref.forward_features(x))
        pooled = ours.forward_head(ours.forward_features(x), pre_logits=True)
        _close(pooled, ref.forward_head(ref.forward_features(x), pre_logits=True))
        _close(ours.forward_head(ours.forward_features(x)), ref(x))
        _close(ours(x), ref(x))
    # The classifier hooks, with timm's semantics.
    assert type(ours.get_classifier()) is type(ref.get_classifier())
    ours.reset_classifier(10)
    assert ours.num_classes == 10
    with torch.no_grad():
        assert ours(x).shape == (2, 10)
    ours.reset_classifier(0)
    assert isinstance(ours.get_classifier(), torch.nn.Identity)
    with torch.no_grad():
        _close(ours(x), pooled)


def test_out_indices_are_checked() -> None:
    with pytest.raises(ValueError, match=r"out_indices \(1, 5\): there are 5 feature maps"):
        resnetc.load(SPEC / "resnet18.resnet", features_only=True, out_indices=(1, 5))


def test_a_backbone_loads_a_classifier_checkpoint(tmp_path: Any) -> None:
    full = resnetc.load(SPEC / "resnet18.resnet")
    path = tmp_path / "resnet18.safetensors"
    resnetc.save_checkpoint(full.state_dict(), path)
    with pytest.warns(UserWarning, match=r"features_only: the 2 tensors of the head \(fc"):
        backbone = resnetc.load(SPEC / "resnet18.resnet", weights=path, features_only=True)
    torch.testing.assert_close(backbone.conv1.weight, full.conv1.weight)


def _train_step(model: Any, size: int = 64) -> None:
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = _image(size)
    loss = model(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def _snapshot(model: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", ["resnet18", "resnetv2_18", "skresnet18"])
def test_freeze_keeps_the_stem_and_first_stages(name: str) -> None:
    model = resnetc.load(SPEC / f"{name}.resnet").train()
    model.freeze(stages=2)
    stem, *stages = model._stages()
    frozen = {
        id(t) for part in (stem, *stages[:2]) for t in part.state_dict(keep_vars=True).values()
    }
    before = _snapshot(model)
    _train_step(model)
    after = model.state_dict(keep_vars=True)
    changed = {k for k in before if not torch.equal(before[k], after[k].detach())}
    frozen_keys = {k for k, v in after.items() if id(v) in frozen}
    assert frozen_keys and not (changed & frozen_keys)  # weights and running statistics
    params = {k for k, _ in model.named_parameters()}
    trained = {k for k in params if k not in frozen_keys}
    assert trained and trained <= changed  # the rest learns
    assert all(not p.requires_grad for part in (stem, *stages[:2]) for p in part.parameters())
    assert all(p.requires_grad for p in stages[2].parameters())
    # model.train() keeps the frozen parts in eval mode; freeze(-1) releases them.
    model.train()
    stem_modules = list(stem.modules())[1:]  # (the first is the list holding them)
    assert not any(m.training for m in stem_modules) and stages[2].training
    model.freeze(stages=-1)
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in stem_modules)


def test_norm_eval_keeps_every_batch_norm_statistic() -> None:
    model = resnetc.load(SPEC / "resnet18.resnet").train()
    model.freeze(stages=-1, norm_eval=True)
    before = _snapshot(model)
    _train_step(model)
    after = _snapshot(model)
    stats = [k for k in before if "running" in k]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])


@pytest.mark.parametrize("everywhere", [False, True])
def test_to_frozen_bn_computes_the_same(everywhere: bool) -> None:
    model = resnetc.load(SPEC / "resnet18.resnet")
    randomise_norms(model)
    model.eval()
    x = _image()
    with torch.no_grad():
        want = model(x)
    model.freeze(stages=1)
    model.to_frozen_bn(everywhere=everywhere)
    kinds = {type(m).__name__ for m in model.layer1.modules()} | {type(model.bn1).__name__}
    assert "BatchNorm2d" not in kinds and "FrozenBatchNorm2d" in kinds
    assert (type(model.layer4[0].bn1).__name__ == "FrozenBatchNorm2d") is everywhere
    with torch.no_grad():
        _close(model(x), want)


@pytest.mark.parametrize("name", ["resnet18", "resnetv2_18", "skresnet18", "res2net50_48w_2s"])
def test_gradient_checkpointing_gives_the_same_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = resnetc.load(SPEC / f"{name}.resnet")
    x = _image()

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        # BN would update its statistics once more in the recomputation: keep them fixed, so
        # both runs see the same model.
        model.freeze(stages=-1, norm_eval=True)
        model.set_grad_checkpointing(checkpointing)
        model.zero_grad()
        model(x).square().mean().backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    model.train()
    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    for k in plain:
        torch.testing.assert_close(checkpointed[k], plain[k], rtol=1e-5, atol=1e-6)


def test_hooks_keep_fx_and_export_working() -> None:
    model = resnetc.load(SPEC / "resnetv2_18.resnet").eval()
    x = _image()
    traced = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        _close(traced(x), model(x))
    backbone = resnetc.load(SPEC / "resnetv2_18.resnet", features_only=True).eval()
    exported = torch.export.export(backbone, (x,))
    with torch.no_grad():
        for got, want in zip(exported.module()(x), backbone(x), strict=True):
            _close(got, want)


def test_the_residual_add_is_in_place_where_autograd_allows() -> None:
    """``out += shortcut`` after a BN (torchvision's form): the same gradients as torchvision's
    resnet18; a residual path that ends in an activation (whose backward reads its output)
    keeps ``out = out + shortcut``."""
    from support import torchvision_models

    assert "out += shortcut" in resnetc.emit(SPEC / "resnet18.resnet")
    ref = torchvision_models().resnet18()
    ours = resnetc.load(SPEC / "resnet18.resnet")
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = _image()
    for model in (ours, ref):
        model.train()
        model(x).square().mean().backward()
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)

    text = (
        "block act_last(width) expansion 1 {\n    conv1: conv 3x3 -> width\n    bn1: bn\n"
        "    relu\n    add shortcut\n}\n\nnetwork t {\n    input 3x16x16\n"
        "    s1: 2 x act_last(8)\n}\n"
    )
    source = resnetc.emit(resnetc.compile_text(text, "t.resnet"))
    assert "out = out + shortcut" in source and "+=" not in source
    model = resnetc.load(resnetc.compile_text(text, "t.resnet")).train()
    model(torch.randn(2, 3, 16, 16)).sum().backward()  # no error from autograd


# ---------------------------------------------------------------- folding for inference


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


@pytest.mark.parametrize(
    "name", ["resnet18", "resnet26d", "seresnet18", "skresnet18", "res2net50_48w_2s", "regnetx_002"]
)
def test_fuse_folds_every_batch_norm_after_a_conv(name: str) -> None:
    """Post-activation networks (basic, bottleneck with avg-down shortcuts, SE, SK, Res2Net,
    RegNet) fold every batch norm; the outputs stay within 1e-5 relative, in channels_last too."""
    model = resnetc.load(SPEC / f"{name}.resnet")
    randomise_norms(model)
    model.eval()
    x = _image()
    with torch.no_grad():
        want = model(x)
        assert model.fuse() == []
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        assert _relative(model(x), want) <= 1e-5
        model = model.to(memory_format=torch.channels_last)
        assert _relative(model(x.to(memory_format=torch.channels_last)), want) <= 1e-5


def test_fuse_reports_the_pre_activation_norms_it_cannot_fold() -> None:
    """A pre-activation block's first norm reads the sum and feeds a ReLU: it stays, and
    ``fuse`` says so; the norm after each block's first conv folds. A frozen batch norm folds
    like a batch norm; a features_only backbone fuses too."""
    model = resnetc.load(SPEC / "resnetv2_18.resnet")
    randomise_norms(model)
    model.to_frozen_bn(everywhere=True)
    model.eval()
    x = _image()
    with torch.no_grad():
        want = model(x)
        left = model.fuse()
        assert _relative(model(x), want) <= 1e-5
    blocks = [f"stages.{s}.blocks.{b}" for s in range(4) for b in range(2)]
    assert [name for name, _ in left] == [f"{b}.norm1" for b in blocks] + ["norm"]
    assert left[0][1] == (
        "it reads stem.pool (MaxPool2d) and feeds stages.0.blocks.0.relu (ReLU): "
        "there is no conv beside it to fold it into"
    )
    assert left[1][1].startswith("it reads a sum and feeds stages.0.blocks.1.relu (ReLU)")
    kept = {n for n, m in model.named_modules() if type(m).__name__ == "FrozenBatchNorm2d"}
    assert kept == {name for name, _ in left}

    backbone = resnetc.load(SPEC / "resnet18.resnet", features_only=True).eval()
    with torch.no_grad():
        maps = backbone(x)
        assert backbone.fuse() == []
        for got, ref in zip(backbone(x), maps, strict=True):
            assert _relative(got, ref) <= 1e-5


#: A norm before a 1x1 conv folds into it (grouped too); one before a padded 3x3 cannot.
_NORM_FIRST = """\
block norm_first(width, stride = 1) expansion 1 {
    n1: bn
    c1: conv 1x1 -> width, groups = 2
    act1: relu
    n2: bn
    c2: conv 3x3 /stride -> width
    act: relu
    c3: conv 1x1 -> width
    n3: bn
    add shortcut
}

network t {
    input 3x16x16
    stem {
        conv1: conv 3x3 -> 8
    }
    s1: 2 x norm_first(8)
    s2: 1 x norm_first(16) /2
}
"""


def test_fuse_folds_a_norm_into_the_unpadded_conv_after_it() -> None:
    model = resnetc.load(resnetc.compile_text(_NORM_FIRST, "t.resnet"))
    randomise_norms(model)
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        want = model(x)
        left = model.fuse()
        assert _relative(model(x), want) <= 1e-5
    assert left == [
        (
            f"{stage}.n2",
            f"the conv after it, {stage}.c2, pads its input (the border would differ)",
        )
        for stage in ("s1.0", "s1.1", "s2.0")
    ]
    assert isinstance(model.s1[0].n1, torch.nn.Identity) and model.s1[0].c1.bias is not None


def test_fuse_makes_standardised_convs_plain_and_names_the_group_norms() -> None:
    """BiT (weight-standardised convs and group norms): each StdConv2d becomes a plain conv
    holding its standardised filters; the group norms stay and are reported."""
    model = resnetc.load(SPEC / "resnetv2_50x1_bit.resnet")
    randomise_norms(model)
    model.eval()
    x = _image()
    with torch.no_grad():
        want = model(x)
        left = model.fuse()
        assert _relative(model(x), want) <= 1e-5
    assert not any(type(m).__name__ == "StdConv2d" for m in model.modules())
    norms = [n for n, m in model.named_modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms and [name for name, _ in left] == norms
    reasons = {reason for _, reason in left}
    assert reasons == {"GroupNorm normalises with its input's own statistics"}


def test_fuse_needs_eval_mode() -> None:
    model = resnetc.load(SPEC / "resnet18.resnet")
    with pytest.raises(RuntimeError, match=r"call model\.eval\(\) first"):
        model.fuse()


# ---------------------------------------------------------------- regional compile


def test_compile_blocks_compiles_each_distinct_block_once() -> None:
    """``compile_blocks`` compiles block by block; the 27 blocks of ResNet-56 share 5 graphs
    (3 stages, two of them opening with a projection). The backend is dynamo's ``eager``, to
    test the mechanism quickly; ``benchmarks/bench_runtime.py`` measures inductor."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = resnetc.load(SPEC / "resnet56.resnet").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        assert model.compile_blocks(backend="eager") is model
        got = model(x)
    torch.testing.assert_close(got, want)
    assert counters["stats"]["unique_graphs"] == 5
    torch._dynamo.reset()


def test_compile_blocks_nested_makes_this_models_blocks_regions() -> None:
    """``compile_blocks(nested=True)``: this model's blocks become nested compile regions (a
    no-op in eager mode) and the whole model is compiled; the outputs do not change. Another
    model of the same spec (the same generated classes) is untouched: it still exports with a
    dynamic batch, which a nested region would specialise."""
    torch._dynamo.reset()
    model = resnetc.load(SPEC / "resnet20.resnet").eval()
    other = resnetc.load(SPEC / "resnet20.resnet").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        compiled = model.compile_blocks(nested=True, backend="eager")
        assert compiled is not model and compiled._orig_mod is model
        torch.testing.assert_close(compiled(x), want)
        torch.testing.assert_close(model(x), want)  # marked, the eager model is unchanged
    marked = {type(b) for stage in model._stages()[1:] for b in stage}
    plain = {type(b) for stage in other._stages()[1:] for b in stage}
    assert len(marked) == len(plain) == 1 and not marked & plain
    assert {cls.__bases__[0] for cls in marked} == plain
    batch = torch.export.Dim("batch")
    exported = torch.export.export(other, (x,), dynamic_shapes=({0: batch},))
    y = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        _close(exported.module()(y), other(y))
    torch._dynamo.reset()


@pytest.mark.parametrize("name", ["resnet26d", "resnetv2_18", "skresnet18"])
@pytest.mark.parametrize("nested", [False, True])
def test_compile_blocks_keeps_the_outputs(name: str, nested: bool) -> None:
    """A bottleneck (with avg-down shortcuts), a pre-activation and a multi-path network,
    compiled block by block or as nested regions, through dynamo's ``eager`` backend (the
    graphs dynamo captures, run as they are): the outputs do not change."""
    torch._dynamo.reset()
    model = resnetc.load(SPEC / f"{name}.resnet")
    randomise_norms(model)
    model.eval()
    x = _image(32)
    with torch.no_grad():
        want = model(x)
        compiled = model.compile_blocks(nested=nested, backend="eager")
        _close(compiled(x), want)
    torch._dynamo.reset()
