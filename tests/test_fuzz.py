"""The fuzzer's fixed-seed sample: 2,000 generated cases (tests/fuzzing.py says how they are made)
through the whole compiler, in-process, each under a 5 s limit.

Every case must end in a clean compile or an expected error (a CompileError whose diagnostics
all point into the files, or a UsageError): no uncaught exception, no hang, no error without a
position, and every case that parses must survive the ``fmt`` round trip. ``scripts/fuzz.py``
runs any number of cases, in parallel, with shrunk reproducers.
"""

from __future__ import annotations

import contextlib
import faulthandler
from collections import Counter

import fuzzing
import pytest

import resnetc

SEED = 20_240_601
CASES = 2_000
TIME_LIMIT = 5.0
#: Address space the sample may add to the test process: a case that allocates more fails with
#: a MemoryError (an uncaught exception) instead of taking the machine down.
MEMORY_GIB = 4


@pytest.fixture(scope="module")
def sample() -> list[fuzzing.Result]:
    """The results of the sample's cases, in order."""
    results = []
    with fuzzing.Oracle(time_limit=TIME_LIMIT) as oracle, fuzzing.memory_cap(MEMORY_GIB):
        try:
            for index in range(CASES):
                # The alarm cannot stop a hang inside C code; rather than hang CI, end the run
                # (with every thread's traceback) well after both of the case's alarms.
                faulthandler.dump_traceback_later(4 * TIME_LIMIT + 30, exit=True)
                results.append(oracle.check(fuzzing.make_case(SEED, index)))
        finally:
            faulthandler.cancel_dump_traceback_later()
    return results


def _shown(results: list[fuzzing.Result], klass: str, limit: int = 5) -> str:
    """The failing cases of class ``klass``: a count per signature, then the first case of each
    of the first few signatures (its edits, or its text) and the exception or problem."""
    failing = [(r, f) for r in results for f in r.failures if f.klass == klass]
    if not failing:
        return ""
    signatures = Counter(f.signature for _, f in failing)
    lines = [f"{len(failing)} case(s) of {klass}, {len(signatures)} signature(s):"]
    lines += [f"  {count:5d}  {sig}" for sig, count in signatures.most_common()]
    seen: set[str] = set()
    shown = 0
    for r, f in failing:
        if f.signature in seen or shown == limit:
            continue
        seen.add(f.signature)
        shown += 1
        text = fuzzing.describe(r.case)
        detail = f.detail if len(f.detail) <= 1500 else f.detail[:1500] + " ..."
        lines += [
            "",
            f"--- case {r.case.index} ({r.case.kind}, from {r.case.origin}): {f.signature}",
            text,
            "--- what happened:",
            detail,
        ]
    first = failing[0][0].case.index
    lines.append(
        f"\nreplay: python scripts/fuzz.py --seed {SEED} --start {first} --cases 1 --save DIR"
    )
    return "\n".join(lines)


def _fail_if(message: str) -> None:
    if message:
        pytest.fail(message, pytrace=False)


@pytest.mark.slow
def test_sample_has_no_uncaught_exceptions(sample: list[fuzzing.Result]) -> None:
    _fail_if(_shown(sample, fuzzing.CRASH))


@pytest.mark.slow
def test_sample_has_no_hangs(sample: list[fuzzing.Result]) -> None:
    _fail_if(_shown(sample, fuzzing.HANG))


@pytest.mark.slow
def test_sample_errors_all_have_positions(sample: list[fuzzing.Result]) -> None:
    _fail_if(_shown(sample, fuzzing.NO_POSITION))


@pytest.mark.slow
def test_sample_survives_the_fmt_round_trip(sample: list[fuzzing.Result]) -> None:
    _fail_if(_shown(sample, fuzzing.FMT))


@pytest.mark.slow
def test_sample_covers_every_kind_and_reaches_the_backends(
    sample: list[fuzzing.Result],
) -> None:
    """The sample is as big as claimed, has every kind of case, and enough of it gets past the
    parser and through the backends for the checks above to mean something."""
    assert len(sample) == CASES >= 2_000
    kinds = Counter(r.case.kind for r in sample)
    assert set(kinds) == set(fuzzing.KINDS) and min(kinds.values()) >= CASES // 20, kinds
    origins = {r.case.origin for r in sample if r.case.kind == "mutate-lib"}
    assert origins == {f"lib/{stem}" for stem in fuzzing.corpus().libs}, origins
    assert sum(r.parsed for r in sample) >= CASES * 0.3
    assert sum(r.networks > 0 for r in sample) >= CASES * 0.04


# ---------------------------------------------------------------- the fuzzer itself


def test_cases_are_deterministic() -> None:
    for index in (0, 1, 17, 1999):
        assert fuzzing.make_case(SEED, index) == fuzzing.make_case(SEED, index)
    assert fuzzing.make_case(SEED, 3) != fuzzing.make_case(SEED + 1, 3)


@pytest.mark.parametrize("stem", sorted(fuzzing.corpus().libs))
def test_library_harnesses_compile(stem: str) -> None:
    """Each library's unmutated case (the library inlined, plus a network using it) compiles,
    so its mutations start from a working spec."""
    with fuzzing.Oracle() as oracle:
        case = fuzzing.Case(
            0, "mutate-lib", f"lib/{stem}", fuzzing.corpus().lib_cases[stem].encode()
        )
        result = oracle.check(case, draw=False)
    assert result.outcome == fuzzing.OK and not result.failures, result.failures


def test_grammar_generator_writes_parsable_files() -> None:
    """Most generated files parse: the generator follows the grammar (some do not, on purpose:
    keywords as names, glued tokens, huge literals)."""
    from resnetc.parser import parse

    parsed = 0
    for index in range(200):
        rng = fuzzing.random.Random(index)
        text = fuzzing.grammar().generate(rng, "start", max_depth=6)
        with contextlib.suppress(resnetc.CompileError):
            parse(text, "g.resnet")
            parsed += 1
    assert parsed >= 100


def test_oracle_sorts_outcomes() -> None:
    good = fuzzing.corpus().specs["resnet20.resnet"]
    cases = {
        good: fuzzing.OK,
        "network n {": fuzzing.EXPECTED,  # a syntax error, with its position
        "use blocks\n": fuzzing.EXPECTED,  # defines no network: a UsageError
        good.replace("depth = 20", "depth = 21"): fuzzing.EXPECTED,
    }
    with fuzzing.Oracle() as oracle:
        for text, outcome in cases.items():
            result = oracle.check(fuzzing.Case(0, "mutate", "test", text.encode()))
            assert result.outcome == outcome and not result.failures, (text, result)
        # Not UTF-8: compiled from a file, and refused with a position in it.
        bad = fuzzing.Case(0, "bytes", "test", good.encode() + b"\xff")
        result = oracle.check(bad)
        assert result.outcome == fuzzing.EXPECTED and not result.failures, result


def test_oracle_flags_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle's own check: an exception from a backend, an error without a span or one
    outside the file, and a slow compile are each reported as such."""
    case = fuzzing.Case(0, "mutate", "test", fuzzing.corpus().specs["resnet20.resnet"].encode())

    def boom(graph: object, *args: object, **kwargs: object) -> str:
        raise IndexError("boom")

    def raiser(span: resnetc.Span | None) -> object:
        def compile_text(*args: object, **kwargs: object) -> object:
            raise resnetc.CompileError.at(span, "bad")

        return compile_text

    def slow(*args: object, **kwargs: object) -> object:
        while True:
            pass

    with fuzzing.Oracle(time_limit=0.5) as oracle:
        with monkeypatch.context() as m:
            m.setattr(resnetc, "emit", boom)
            result = oracle.check(case)
            assert result.outcome == fuzzing.CRASH
            assert result.failures[0].signature.startswith("IndexError in emit at ")
        outside = resnetc.Span(file=fuzzing.CASE_FILE, line=99, column=1, end_line=99, end_column=2)
        for span in (None, outside):
            with monkeypatch.context() as m:
                m.setattr(resnetc, "compile_text", raiser(span))
                assert oracle.check(case).outcome == fuzzing.NO_POSITION
        with monkeypatch.context() as m:
            m.setattr(resnetc, "compile_text", slow)
            assert oracle.check(case).outcome == fuzzing.HANG


def test_time_limit_turns_a_loop_into_a_hang() -> None:
    with pytest.raises(fuzzing.Hang), fuzzing.time_limit(0.05):
        while True:
            pass


def test_span_problem() -> None:
    span = resnetc.Span
    text = "ab\ncd\n"
    assert (
        fuzzing.span_problem(span(file="f", line=1, column=3, end_line=1, end_column=4), text)
        is None
    )
    assert (
        fuzzing.span_problem(span(file="f", line=3, column=1, end_line=3, end_column=2), text)
        is None
    )
    assert fuzzing.span_problem(None, text)[0] == "no span"
    assert fuzzing.span_problem(span(file="f", line=0, column=1, end_line=1, end_column=1), text)
    assert fuzzing.span_problem(span(file="f", line=4, column=1, end_line=4, end_column=2), text)
    assert fuzzing.span_problem(span(file="f", line=1, column=5, end_line=1, end_column=6), text)
    assert fuzzing.span_problem(span(file="f", line=1, column=1, end_line=1, end_column=2), None)


def test_shrink_keeps_the_failure() -> None:
    case = fuzzing.Case(0, "mutate", "test", b"a\nb {\n  c\n  BAD\n}\nd e f\n")
    small = fuzzing.shrink(case, lambda c: b"BAD" in c.data, budget_s=10)
    assert small.data.strip() == b"BAD"
