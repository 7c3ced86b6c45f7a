"""The training examples (examples/): train.py, finetune.py, the shared trainlib, the
experiments and the throughput benchmark, on scikit-learn's digits and a fake CIFAR-10."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import ROOT, import_torchvision

import resnetc

EXAMPLES = ROOT / "examples"
for folder in (EXAMPLES, EXAMPLES / "experiments"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import finetune  # noqa: E402
import train  # noqa: E402
import trainlib  # noqa: E402

SPEC = str(ROOT / "spec" / "cifar_resnet.resnet")
TINY = {"depth": 8, "width": 8, "image_size": 8}  # 3 blocks, 19k parameters: fast on 2 cores
TINY_ARGS = ["--set", "depth=8", "--set", "width=8", "--set", "image_size=8"]
QUICK = ["--threads", "1", "--quiet"]


@pytest.fixture(autouse=True)
def _restore_torch_globals() -> object:
    """The examples set torch's thread count and determinism; give other tests theirs back."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def equal_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_overrides_parse_like_resnetc_build_set() -> None:
    assert trainlib.parse_overrides(["depth=56", "shortcut_rule=none", "bottleneck=true"]) == {
        "depth": 56,
        "shortcut_rule": "none",
        "bottleneck": True,
    }
    with pytest.raises(trainlib.ExampleError, match="KEY=VALUE"):
        trainlib.parse_overrides(["depth"])


def test_digits_split_is_seeded_and_stratified() -> None:
    a, b = trainlib.load_digits_data(seed=0), trainlib.load_digits_data(seed=0)
    assert (len(a.y_train), len(a.y_test), a.in_chans, a.size) == (1437, 360, 1, 8)
    assert torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_test, trainlib.load_digits_data(seed=1).x_test)
    assert torch.bincount(a.y_test).min() >= 35  # every class in the test split
    x = a.prepare(a.x_train)
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-2


def test_loss_falls_on_digits() -> None:
    torch.set_num_threads(1)
    trainlib.seed_everything(0)
    data = trainlib.load_digits_data()
    model = trainlib.build_model(SPEC, TINY, num_classes=10, in_chans=1)
    losses: list[float] = []
    cfg = trainlib.TrainConfig(epochs=1, batch_size=32, lr=0.05, schedule="constant")
    result = trainlib.train(
        model,
        data,
        cfg,
        trainlib.Dist(),
        on_step=lambda info: losses.append(info.loss),
        progress=False,
        log=None,
    )
    assert len(losses) == 1437 // 32
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.5 * first, losses
    assert result.history[0]["test_acc"] > 0.5  # chance is 0.1


def test_resume_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    args = [SPEC, *TINY_ARGS, *QUICK, "--epochs", "2", "--batch-size", "64", "--augment"]
    args += ["--deterministic", "--lr", "0.05"]
    straight = train.run(train.parse_args(args))

    ckpt = tmp_path / "run" / "last.pt"
    interrupted = [*args, "--checkpoint", str(ckpt), "--stop-after-epoch", "1"]
    first = train.run(train.parse_args(interrupted))
    assert len(first.history) == 1
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["last.pt"]  # no temp file left
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and state["step"] == 1437 // 64
    resumed = train.run(train.parse_args([*args, "--resume", str(ckpt)]))

    assert resumed.steps == straight.steps == 2 * (1437 // 64)
    assert equal_state(resumed.model.state_dict(), straight.model.state_dict())
    assert resumed.history == [*first.history[:1], resumed.history[1]]
    assert resumed.history[1]["train_loss"] == straight.history[1]["train_loss"]
    assert not equal_state(first.model.state_dict(), straight.model.state_dict())


def test_checkpoint_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    trainlib.save_checkpoint(path, {"epoch": 1})

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        trainlib.save_checkpoint(path, {"epoch": 2})
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_an_emitted_module_trains(tmp_path: Path) -> None:
    source = resnetc.emit(SPEC, overrides=TINY)
    module = tmp_path / "tiny_resnet.py"
    module.write_text(source, encoding="utf-8")
    result = train.run(train.parse_args([str(module), *QUICK, "--max-steps", "3"]))
    assert result.steps == 3
    compiled = trainlib.build_model(SPEC, TINY, num_classes=10, in_chans=1)
    assert result.model.state_dict().keys() == compiled.state_dict().keys()
    with pytest.raises(trainlib.ExampleError, match="already built"):
        trainlib.build_model(module, {"depth": 20})


def write_fake_cifar(folder: Path, per_batch: int = 8) -> None:
    """The python-pickle layout of CIFAR-10, with a few random images per file."""
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for name in (*trainlib.CIFAR10_FILES, "test_batch"):
        data = torch.randint(0, 256, (per_batch, 3072), generator=gen, dtype=torch.uint8)
        labels = torch.randint(0, 10, (per_batch,), generator=gen).tolist()
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": data.numpy(), b"labels": labels}, f)


def test_cifar10_pickle_layout_trains(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path / "cifar-10-batches-py")
    data = trainlib.load_cifar10(tmp_path)  # the parent folder works too
    assert (len(data.y_train), len(data.y_test), data.in_chans, data.size) == (40, 8, 3, 32)
    args = [SPEC, "--set", "depth=8", "--set", "width=4", *QUICK, "--batch-size", "8"]
    result = train.run(train.parse_args([*args, "--data", str(tmp_path), "--max-steps", "2"]))
    assert result.steps == 2


def test_cifar10_missing_file_is_named(tmp_path: Path) -> None:
    write_fake_cifar(tmp_path / "c10")
    (tmp_path / "c10" / "test_batch").unlink()
    with pytest.raises(trainlib.ExampleError, match=r"c10/test_batch"):
        trainlib.load_cifar10(tmp_path / "c10")


def test_wrong_cifar10_path_exits_2_without_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "train.py"), SPEC, "--data", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


def test_spec_errors_print_like_resnetc(capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main([SPEC, "--set", "depth=21", *QUICK]) == 1
    err = capsys.readouterr().err
    assert "cifar_resnet.resnet:" in err and "error:" in err and "depth=21" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DRIVER = """\
import os, sys
import torch
sys.path.insert(0, {examples!r})
import train
result = train.run(train.parse_args(sys.argv[2:]))
torch.save(result.model.state_dict(), os.path.join(sys.argv[1], f"rank{{os.environ['RANK']}}.pt"))
"""


@pytest.mark.slow
def test_ddp_two_processes_keep_identical_weights(tmp_path: Path) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(examples=str(EXAMPLES)), encoding="utf-8")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    cmd += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    cmd += [str(driver), str(tmp_path), SPEC, *TINY_ARGS, "--quiet", "--device", "cpu"]
    cmd += ["--batch-size", "32", "--max-steps", "4", "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 process(es) on cpu" in proc.stdout
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert equal_state(rank0, rank1)  # parameters and BN statistics

    trainlib.seed_everything(3)
    initial = trainlib.build_model(SPEC, TINY, num_classes=10, in_chans=1).state_dict()
    changed = [k for k in initial if not torch.equal(initial[k], rank0[k])]
    assert "conv1.weight" in changed and "fc.weight" in changed


def test_finetune_freezes_stages_and_replaces_the_head(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = trainlib.build_model(SPEC, TINY, num_classes=10, in_chans=1)
    source.train()
    with torch.no_grad():  # move BN statistics off their initial values, like a trained net
        source(torch.randn(16, 1, 8, 8))
    weights = tmp_path / "pretrained.pth"
    torch.save(source.state_dict(), weights)
    before = source.state_dict()

    args = [SPEC, *TINY_ARGS, *QUICK, "--weights", str(weights), "--num-classes", "5"]
    args += ["--freeze", "stem,layer1", "--max-steps", "5", "--batch-size", "32"]
    args += ["--output", str(tmp_path / "tuned.pth")]
    model = finetune.run(finetune.parse_args(args)).model
    after = model.state_dict()

    assert model.fc.out_features == 5 and after["fc.weight"].shape == (5, 32)
    frozen = [k for k in before if k.split(".")[0] in ("conv1", "bn1", "layer1")]
    learning = [k for k in before if k.startswith(("layer2.", "layer3.")) and "weight" in k]
    assert frozen and learning
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # BN statistics too
    assert all(not torch.equal(before[k], after[k]) for k in learning)
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert torch.load(tmp_path / "tuned.pth", weights_only=True).keys() == after.keys()


def test_finetune_rejects_weights_of_another_network(tmp_path: Path) -> None:
    weights = tmp_path / "other.pth"
    other = trainlib.build_model(SPEC, {**TINY, "depth": 14}, num_classes=10, in_chans=1)
    torch.save(other.state_dict(), weights)
    args = [SPEC, *TINY_ARGS, *QUICK, "--weights", str(weights), "--num-classes", "5"]
    with pytest.raises(trainlib.ExampleError, match="do not fit"):
        finetune.run(finetune.parse_args(args))
    with pytest.raises(trainlib.ExampleError, match="no part 'layer9'"):
        finetune.freeze(other, ["layer9"])


@pytest.mark.slow
def test_experiments_run_end_to_end(tmp_path: Path) -> None:
    import degradation
    import identity_mappings
    import lesion

    common = ["--epochs", "1", "--batch-size", "64", "--out", str(tmp_path), "--quiet"]
    assert degradation.main([*common, "--depths", "8,14"]) == 0
    assert lesion.main([*common, "--depth", "8", "--plain-depths", "8", "--samples", "2"]) == 0
    assert identity_mappings.main([*common, "--depths", "8"]) == 0
    for name in ("degradation", "lesion", "identity_mappings"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        table = (tmp_path / f"{name}.md").read_text(encoding="utf-8")
        assert table.startswith("| ") and len(table.splitlines()) >= 3
        assert (tmp_path / f"{name}.json").is_file()
    (tmp_path / "lesion.png").unlink()
    assert lesion.main(["--out", str(tmp_path), "--plot-only"]) == 0  # redrawn from lesion.json
    assert (tmp_path / "lesion.png").is_file()


def test_benchmark_train_compares_with_torchvision(capsys: pytest.CaptureFixture[str]) -> None:
    import benchmark_train

    argv = ["--model", "resnet18", "--image-size", "32", "--batch-size", "2", "--device", "cpu"]
    assert benchmark_train.main([*argv, "--steps", "1", "--warmup", "1", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "| resnet18 (resnetc) | 11,689,512 |" in out
    assert "| resnet18 (torchvision) | 11,689,512 |" in out
    assert f"reference: torchvision {import_torchvision().__version__}\n" in out
    assert "resnetc / torchvision" in out
