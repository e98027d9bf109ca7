"""caibao.agreement: when two reported numbers are one figure (values as the corpus writes them)."""

from __future__ import annotations

import pytest

from caibao.agreement import agree, conflicts, figures, rounding


def row(value_text: str, number: float, doc_id: str = "a", approx: bool = False, **key) -> dict:
    base = {"org_id": "qifu-technology", "metric_key": "revenue", "period": "2022FY", "kind": "level", "basis": None,
            "unit": "CNY", "guidance": False}
    return {**base, **key, "value_text": value_text, "number": number, "doc_id": doc_id, "value_start": 0,
            "approx": approx}


@pytest.mark.parametrize("text, number, half_digit", [
    ("165.54亿元", 16_554_000_000.0, 500_000.0),
    ("2138亿元", 213_800_000_000.0, 50_000_000.0),
    ("16,553.9百万元", 16_553_900_000.0, 50_000.0),
    ("12.87元", 12.87, 0.005),
    ("-0.49%", -0.49, 0.005),
    ("三成半", 35.0, 0.0),  # no Arabic number: only the relative tolerance applies
])
def test_rounding_is_half_the_last_written_digit(text, number, half_digit):
    assert rounding(number, text) == pytest.approx(half_digit)


@pytest.mark.parametrize("a, b, same", [
    (row("165.54亿元", 16_554_000_000.0), row("165.539亿元", 16_553_900_000.0), True),  # seed-002-0000 / -0181
    (row("165.54亿元", 16_554_000_000.0), row("16,553.9百万元", 16_553_900_000.0), True),  # seed-002-0004
    (row("1634.65亿元", 163_465_000_000.0), row("1634.7亿元", 163_470_000_000.0), True),  # seed-002-0181 / -0002
    (row("44.2亿元", 4_420_000_000.0), row("44.221亿元", 4_422_100_000.0), True),  # seed-002-0184 / -0146
    (row("69.5亿元", 6_950_000_000.0), row("82.05亿元", 8_205_000_000.0), False),  # web-07-02 / web-11-06
    (row("46.128亿元", 4_612_800_000.0), row("46.1亿元", 4_610_000_000.0), True),
    (row("46.13亿元", 4_613_000_000.0), row("46.11亿元", 4_611_000_000.0), False),
])
def test_numbers_agree_within_their_rounding(a, b, same):
    assert agree(a, b) is same
    assert agree(b, a) is same


def test_figures_group_by_key_and_number():
    rows = [row("165.54亿元", 16_554_000_000.0, "seed-002-0000"), row("165.539亿元", 16_553_900_000.0, "seed-002-0181"),
            row("165.54亿元", 16_554_000_000.0, "x", metric_key="revenue[segment:平台服务]")]
    found = figures(rows)
    assert [f.documents for f in found] == [["seed-002-0000", "seed-002-0181"], ["x"]]
    assert conflicts(found) == []


def test_rows_without_a_full_key_are_not_compared():
    assert figures([row("1亿元", 1e8, org_id=None), row("1亿元", 1e8, metric_key=None), row("1亿元", None)]) == []


def test_conflicts_need_two_articles_and_exact_values():
    between = [row("69.5亿元", 6.95e9, "web-07-02"), row("82.05亿元", 8.205e9, "web-11-06")]
    assert len(conflicts(figures(between))) == 1
    within = [row("2.77亿元", 2.77e8, "web-01-02"), row("12.64亿元", 1.264e9, "web-01-02")]
    assert conflicts(figures(within)) == []
    assert len(conflicts(figures(within), within_article=True)) == 1
    bound = [row("10億元", 1e9, "web-01-15", approx=True), row("19.37億元", 1.937e9, "web-14-02")]
    assert conflicts(figures(bound), within_article=True) == []
