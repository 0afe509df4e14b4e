"""The packet fuzzer in CI: 100,000 seeded hostile packets against ``lachan serve``, every
header flags word, and the checked-in corpus of past failures."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fuzz import run
from tests.stub_upstream import LachanProcess, StubUpstream

CI_PACKETS = 100_000
CI_SECONDS = 60.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[StubUpstream]:
    with StubUpstream(seed=11) as stub:
        yield stub


@pytest.fixture(scope="module")
def target(
    upstream: StubUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LachanProcess]:
    server = LachanProcess(tmp_path_factory.mktemp("fuzz"), [upstream.address], ipv6=False)
    server.start()
    yield server
    assert server.alive(), server.stderr()
    server.stop()
    server.assert_clean_log()


def test_100k_fuzzed_packets(target: LachanProcess, upstream: StubUpstream) -> None:
    # The upstream mutates its answers during each batch too: hostile on both sides.
    report = run.fuzz(target, CI_PACKETS, CI_SECONDS, seed=20261128, upstream=upstream)
    assert report.sent >= CI_PACKETS // 2, f"only {report.sent} packets in {CI_SECONDS}s"
    assert report.replies > report.sent // 4  # it kept answering all along
    target.assert_clean_log()


def test_every_header_flags_word(target: LachanProcess) -> None:
    """All 65,536 flag words (QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode) on a good question."""
    question = run.packet.__globals__["QUESTION"]
    batch = [
        flags.to_bytes(2, "big")
        + flags.to_bytes(2, "big")
        + b"\x00\x01\x00\x00\x00\x00\x00\x00"
        + question
        for flags in range(65_536)
    ]
    report = run.Report()
    with run._socket() as normal, run._socket() as reflect:
        for start in range(0, len(batch), run.BATCH):
            run.send_batch(target, batch[start : start + run.BATCH], normal, reflect, report)
    run.check_alive(target, [], "flags.example.test")
    assert report.replies > 10_000


@pytest.mark.parametrize("path", sorted(run.CORPUS.glob("*.bin")), ids=lambda p: p.name)
def test_corpus_replay(target: LachanProcess, path: Path) -> None:
    batch = run.load(path)
    report = run.Report()
    with run._socket() as normal, run._socket() as reflect:
        run.send_batch(target, batch, normal, reflect, report)
    run.check_alive(target, batch, f"corpus-{path.stem}.example.test")


def test_generators_are_deterministic() -> None:
    first = [run.packet(random.Random(5)) for _ in range(3)]
    assert first == [run.packet(random.Random(5)) for _ in range(3)]
