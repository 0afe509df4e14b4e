"""The A/B bookkeeping of the subscriber benchmarks: round order and per-round ratios."""

from collections.abc import Callable

from subscribers_hitpath import alternate, ratios, summary


def test_each_kind_goes_first_in_every_other_round() -> None:
    order: list[str] = []

    def measure(kind: str) -> Callable[[], float]:
        def run() -> float:
            order.append(kind)
            return float(len(order))  # the "time" is the position in the sequence

        return run

    samples = alternate({"without": measure("without"), "with": measure("with")}, 4)
    assert order == ["without", "with", "with", "without"] * 2
    assert samples == {"without": [1.0, 4.0, 5.0, 8.0], "with": [2.0, 3.0, 6.0, 7.0]}


def test_ratios_pair_rounds_and_report_median_and_range() -> None:
    samples = {"without": [100.0, 200.0, 100.0], "with": [95.0, 210.0, 100.0]}
    assert ratios(samples) == {"ratio_median": 1.0, "ratio_range": [0.95, 1.05], "rounds": 3}


def test_summary_gives_nanoseconds() -> None:
    got = summary({"without": [5e-7, 6e-7], "with": [5e-7, 6e-7]})
    assert got["without_ns"] == got["with_ns"] == 550.0 and got["ratio_median"] == 1.0
