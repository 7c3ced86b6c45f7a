"""The shape arithmetic of resnetc.ops against PyTorch itself, over a grid of small cases."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from resnetc.ops import ShapeError, out_shape, params


def _ours(kind: str, attrs: dict, size: int) -> int | None:  # type: ignore[type-arg]
    try:
        return out_shape(kind, attrs, (2, size, size))[1]
    except ShapeError:
        return None


def _torch(fn, size: int) -> int | None:  # type: ignore[no-untyped-def]
    try:
        return int(fn(torch.zeros(1, 2, size, size)).shape[-1])
    except RuntimeError:
        return None


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
def test_pool_shapes_match_pytorch(kind: str, ceil_mode: bool) -> None:
    fn = F.max_pool2d if kind == "maxpool" else F.avg_pool2d
    for size, k, s in itertools.product(range(1, 9), (1, 2, 3), (1, 2, 3)):
        for p in range(k // 2 + 1):
            attrs = {
                "kernel": (k, k),
                "stride": s,
                "padding": (p, p),
                "ceil_mode": ceil_mode,
                "count_include_pad": True,
            }
            expected = _torch(lambda x: fn(x, k, s, p, ceil_mode=ceil_mode), size)  # noqa: B023
            assert _ours(kind, attrs, size) == expected, (size, k, s, p)


def test_conv_shapes_and_params_match_pytorch() -> None:
    for size, k, s, d, p in itertools.product(range(1, 8), (1, 3), (1, 2), (1, 2), (0, 1, 2)):
        attrs = {
            "kernel": (k, k),
            "stride": s,
            "dilation": d,
            "padding": (p, p),
            "groups": 2,
            "out": 4,
            "bias": False,
        }
        conv = torch.nn.Conv2d(2, 4, k, s, p, d, groups=2, bias=False)
        assert _ours("conv", attrs, size) == _torch(conv, size), (size, k, s, d, p)
    assert params("conv", attrs, (2, 7, 7), (4, 7, 7)) == conv.weight.numel()


NORMS_SPEC = """
block norms(width) {
    a: evonorm_s0
    b: evonorm_s0, groups = 8, act = false
    c: frn
    d: frn, act = false
}

network t {
    input [64, 8, 8]
    s: 1 x norms(64)
    head { global_avgpool; flatten; fc: linear -> 10 }
}
"""


def test_evonorm_and_frn_compute_what_timm_computes() -> None:
    from support import import_timm

    import resnetc

    import_timm()
    from timm.layers import EvoNorm2dS0, FilterResponseNormTlu2d

    g = resnetc.compile_text(NORMS_SPEC)
    model = resnetc.load(g)
    assert g.graph["params"] == sum(p.numel() for p in model.parameters())
    refs = {
        "a": EvoNorm2dS0(64),
        "b": EvoNorm2dS0(64, groups=8, apply_act=False),
        "c": FilterResponseNormTlu2d(64),
        "d": FilterResponseNormTlu2d(64, apply_act=False),
    }
    x = torch.randn(2, 64, 8, 8, generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    for name, ref in refs.items():
        with torch.no_grad():
            for p in ref.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        ours = model.s[0].get_submodule(name)
        ours.load_state_dict(ref.state_dict(), strict=True)
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-6)


def test_evonorm_groups_must_divide_the_channels() -> None:
    import resnetc

    with pytest.raises(resnetc.CompileError) as err:
        resnetc.compile_text(NORMS_SPEC.replace("groups = 8", "groups = 24"))
    assert str(err.value).startswith(
        "<string>:4:5: error: evonorm_s0: groups=24 must divide the channels (64)"
    )
