"""RPZ local data to wire rdata: addresses, TXT strings and escapes, bad data refused."""

from __future__ import annotations

import pytest

from resolver.lists.rpz import parse_rpz
from resolver.localdata import rdata, records_for
from resolver.wire import TYPE_A, TYPE_AAAA, TYPE_TXT


def test_addresses_and_txt_strings_become_rdata() -> None:
    assert rdata("A", "203.0.113.50") == (TYPE_A, bytes([203, 0, 113, 50]))
    assert rdata("aaaa", "2001:db8::1")[1] == bytes.fromhex("20010db8" + "0" * 23 + "1")
    assert rdata("TXT", '"a b" c') == (TYPE_TXT, b"\x03a b\x01c")
    assert rdata("TXT", r'"say \"hi\"" \065') == (TYPE_TXT, b'\x08say "hi"\x01A')
    assert rdata("TXT", '"' + "x" * 300 + '"')[1][:1] == b"\xff"  # split at 255 bytes


@pytest.mark.parametrize(("rtype", "text"), [("A", "1.2.3"), ("AAAA", "1.2.3.4"), ("TXT", "")])
def test_bad_data_is_a_value_error(rtype: str, text: str) -> None:
    with pytest.raises(ValueError):
        rdata(rtype, text)


def test_only_records_of_the_asked_type_are_answered() -> None:
    local = (("A", "192.0.2.1"), ("TXT", '"t"'), ("A", "192.0.2.2"))
    assert records_for(local, TYPE_A) == [bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])]
    assert records_for(local, TYPE_AAAA) == []


def test_the_rpz_parser_rejects_local_data_it_could_not_answer() -> None:
    result = parse_rpz("bad.example A 300.1.1.1\nok.example A 192.0.2.9\n")
    assert [p.reason for p in result.problems] == ["A data '300.1.1.1' is not valid"]
    assert [r.name for r in result.rules] == ["ok.example"]
