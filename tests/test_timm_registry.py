"""Every architecture timm registers in its ResNet-family files is in spec/, with timm's layout.

The list is timm's registry at test time (the timm that scripts/test.sh pins), so a model that
timm has and spec/ lacks is a failing test here, not a silence. Each model is checked on the meta
device (keys, shapes, order, parameters, MACs), which costs no memory even for the billion-parameter
RegNets and BiTs; numerical checks are in the family test files.
"""

from __future__ import annotations

import pytest
from support import SPEC, assert_layout_matches_timm, import_timm

#: timm's files whose registered models spec/ must cover (issue 11).
TIMM_FILES = ("resnet", "resnetv2", "regnet", "senet", "res2net", "resnest", "sknet")


def registered() -> list[str]:
    import_timm()  # first: it imports torchvision the way this CPU-only torch needs
    from timm.models import _registry

    return sorted(name for module in TIMM_FILES for name in _registry.list_models(module=module))


REGISTERED = registered()


def test_registry_is_the_pinned_one() -> None:
    # timm 1.0.29 registers 168 architectures in these files; a different count means another
    # timm is installed than scripts/test.sh pins, and the list below is not the one checked.
    assert len(REGISTERED) == 168


def test_every_registered_architecture_has_a_spec() -> None:
    missing = [name for name in REGISTERED if not (SPEC / f"{name}.resnet").is_file()]
    assert not missing, f"{len(missing)} of timm's architectures have no spec: {missing}"


@pytest.mark.parametrize("name", REGISTERED)
def test_layout_matches_timm(name: str) -> None:
    assert_layout_matches_timm(SPEC / f"{name}.resnet", name, network=name)
