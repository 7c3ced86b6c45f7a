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
