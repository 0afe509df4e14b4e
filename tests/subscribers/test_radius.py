"""Accounting-Request decoding and what each request does to the store (pure)."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

import pytest
from pyrad.packet import AccountingResponse, AcctPacket

from resolver.subscribers.radius import Request, action_of, decode, read_secret
from resolver.subscribers.replica import Binding
from resolver.subscribers.settings import RadiusSettings
from tests.subscribers.radius_packets import DICTIONARY, SECRET, accounting

SETTINGS = RadiusSettings(
    "127.0.0.1", 1813, Path("unused"), (ipaddress.ip_network("10.0.0.0/8"),), "User-Name"
)


def decoded(raw: bytes, source: str = "10.1.2.3", settings: RadiusSettings = SETTINGS) -> Request:
    request = decode(raw, source, SECRET, settings, DICTIONARY)
    assert isinstance(request, Request), request
    return request


def test_a_start_binds_every_address_attribute_to_the_user_name() -> None:
    raw = accounting(
        "Start", User_Name="line-1", Framed_IP_Address="100.64.0.7",
        Framed_IPv6_Prefix="2001:db8:1:2::/64", Delegated_IPv6_Prefix="2001:db8:100::/56",
    )  # fmt: skip
    request = decoded(raw)
    action = action_of(request, 1000.0)
    assert action.kind == "bind"
    assert set(action.prefixes) == {"100.64.0.7/32", "2001:db8:1:2::/64", "2001:db8:100::/56"}
    assert action.binding == Binding("line-1", 1000.0, "10.1.2.3")


def test_the_answer_is_an_accounting_response_signed_for_this_request() -> None:
    raw = accounting("Interim-Update", User_Name="line-1", Framed_IP_Address="100.64.0.7")
    reply = AcctPacket(secret=SECRET, dict=DICTIONARY, packet=decoded(raw).reply)
    assert reply.code == AccountingResponse and reply.id == raw[1]
    request = AcctPacket(secret=SECRET, dict=DICTIONARY, packet=raw)
    assert request.VerifyReply(reply, decoded(raw).reply)


@pytest.mark.parametrize(
    ("status", "attributes", "kind"),
    [
        ("Interim-Update", {"User_Name": "l", "Framed_IP_Address": "100.64.0.7"}, "bind"),
        ("Stop", {"User_Name": "l", "Framed_IP_Address": "100.64.0.7"}, "unbind"),
        ("Accounting-On", {"NAS_IP_Address": "10.9.9.9"}, "unbind_nas"),
        ("Accounting-Off", {}, "unbind_nas"),
        ("Start", {"User_Name": "l"}, "none"),  # no address: nothing to bind
        ("Start", {"Framed_IP_Address": "100.64.0.7"}, "none"),  # no subscriber ID
    ],
)
def test_each_status_type_maps_to_one_store_change(
    status: str, attributes: dict[str, str], kind: str
) -> None:
    assert action_of(decoded(accounting(status, **attributes)), 0.0).kind == kind


def test_accounting_off_names_the_nas_that_sent_it() -> None:
    assert action_of(decoded(accounting("Accounting-Off")), 0.0).nas == "10.1.2.3"
    raw = accounting("Accounting-On", NAS_IP_Address="10.9.9.9")
    assert action_of(decoded(raw), 0.0).nas == "10.9.9.9"


def test_the_class_attribute_can_carry_the_subscriber_id() -> None:
    by_class = dataclasses.replace(SETTINGS, id_attribute="Class")
    raw = accounting("Start", Class=b"line-9", Framed_IP_Address="100.64.0.9")
    assert decoded(raw, settings=by_class).subscriber == "line-9"


@pytest.mark.parametrize(
    ("raw", "source", "result"),
    [
        (accounting("Start", User_Name="l", Framed_IP_Address="100.64.0.7"), "192.0.2.1",
         "unknown_nas"),
        (accounting("Start", secret=b"wrong", User_Name="l", Framed_IP_Address="100.64.0.7"),
         "10.1.2.3", "bad_authenticator"),
        (b"\x04\x01\x00", "10.1.2.3", "malformed"),
        (b"\x04\x01\x00\x30" + bytes(16) + b"\x01\xff", "10.1.2.3", "malformed"),
        (b"\x01\x01\x00\x14" + bytes(16), "10.1.2.3", "malformed"),  # an Access-Request
    ],
)  # fmt: skip
def test_rejections_are_named_by_reason(raw: bytes, source: str, result: str) -> None:
    assert decode(raw, source, SECRET, SETTINGS, DICTIONARY) == result


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "radius.secret"
    path.write_text("abc\n", encoding="utf-8")
    os.chmod(path, 0o640)
    with pytest.raises(ValueError, match="readable by group or others"):
        read_secret(path)
    os.chmod(path, 0o600)
    assert read_secret(path) == b"abc"
