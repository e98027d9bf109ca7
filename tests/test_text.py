"""Decoding and cleaning at the reader (caibao.text): real inputs -> expected text."""

import pytest

from caibao.text import UndecodableError, clean_text, decode_bytes

SENTENCE = "360数科第三季度总净营收为41.441亿元，同比下降10.2%。"
TRADITIONAL = "中國財險上半年淨利潤按年跌8.7%至184.9億人民幣。"


@pytest.mark.parametrize("raw, expected", [
    (SENTENCE, SENTENCE),
    ("\x1b[31m营业收入\x1b[0m为31亿元", "营业收入为31亿元"),  # ANSI colours: not a fact 营业收入 = 31m
    ("营业\u202e收入为31亿元", "营业收入为31亿元"),  # a right-to-left override inside a metric
    ("净\u200b利润\u200d为9.884亿元", "净利润为9.884亿元"),  # zero-width characters
    ("同\x07比增长21%", "同比增长21%"),  # a bell inside 同比
    ("招联\x00消金", "招联消金"),  # a NUL after the first 4 KB of a file
    ("第一行\r\n第二行\r第三行\t表格", "第一行\n第二行\n第三行\t表格"),
    ("\ufeff乐信", "乐信"),
])
def test_clean_text(raw, expected):
    assert clean_text(raw) == expected


@pytest.mark.parametrize("text, encoding", [
    (SENTENCE, "gb18030"),
    (SENTENCE, "gbk"),
    (TRADITIONAL, "big5"),
])
def test_chinese_legacy_encodings_are_detected(text, encoding):
    decoded, found = decode_bytes(text.encode(encoding))
    assert decoded == text and found in ("gb18030", "gbk", "big5", "cp950", "big5hkscs")


def test_utf8_with_a_bom():
    assert decode_bytes(b"\xef\xbb\xbf" + SENTENCE.encode("utf-8")) == (SENTENCE, "utf-8")


@pytest.mark.parametrize("data, says", [
    (b"\x00\x01\x02binary", "binary content"),
    ("Résumé of the quarter: revenue grew 21% to €11.4 billion.".encode("cp1252"), "convert it to UTF-8"),
])
def test_unreadable_bytes_say_why(data, says):
    with pytest.raises(UndecodableError, match=says):
        decode_bytes(data)
