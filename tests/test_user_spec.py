"""The README's own example: a spec with a user-defined block compiles, runs and trains."""

from __future__ import annotations

import torch
from support import ROOT

import resnetc

EXAMPLE = ROOT / "examples" / "wide_basic.resnet"


def test_readme_shows_the_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8").strip() in readme


def test_user_block_compiles_with_its_own_class() -> None:
    source = resnetc.emit(EXAMPLE)
    assert "class WideBasic(nn.Module):" in source
    assert "self.drop = nn.Dropout(p=p)" in source
    g = resnetc.compile(EXAMPLE, check=True)
    kinds = [b.shortcut for s in g.graph["net"].stages for b in s.blocks]
    assert kinds == ["identity", "identity", "projection", "identity", "projection", "identity"]


def _quadrant_data(n: int, seed: int, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose class (0-3) is the quadrant holding a bright square: learnt in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=gen) * 0.3
    y = torch.randint(0, 4, (n,), generator=gen)
    h = size // 2
    for i, label in enumerate(y.tolist()):
        r, c = divmod(label, 2)
        x[i, :, r * h + 2 : r * h + h - 2, c * h + 2 : c * h + h - 2] += 2.0
    return x, y


def test_user_spec_trains() -> None:
    torch.manual_seed(0)
    model = resnetc.load(EXAMPLE, overrides={"width": 8}, num_classes=4)
    x, y = _quadrant_data(64, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    losses = []
    for step in range(12):
        batch = slice((step % 2) * 32, (step % 2 + 1) * 32)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < 0.5 * first, losses
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.5  # chance is 0.25; BN running statistics are still settling
