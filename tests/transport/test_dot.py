"""DNS over TLS (resolver/transport/dot.py) against real clients: dnspython, kdig, openssl."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest
from tls_helpers import (
    SERVER_NAME,
    Pki,
    client_context,
    encrypted_config,
    make_pki,
    ports,
    wait_for_port,
)

from tests.stub_upstream import LachanProcess, StubUpstream


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, StubUpstream]]:
    port = ports()
    with StubUpstream() as stub:
        work = tmp_path_factory.mktemp("dot")
        process = LachanProcess(work, [stub.address], encrypted_config(pki, dot=port))
        with process:
            wait_for_port(port)
            yield port, stub
            assert process.alive(), process.stderr()
            process.assert_clean_log()


def _query(name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0)


def _tls(
    port: int, pki: Pki, query: dns.message.Message, sni: str = SERVER_NAME, host: str = "127.0.0.1"
) -> dns.message.Message:
    return dns.query.tls(
        query, host, port=port, timeout=5, ssl_context=client_context(pki), server_hostname=sni
    )


def _canary_profile(response: dns.message.Message) -> str:
    texts = [b"".join(r.strings).decode() for rrset in response.answer for r in rrset]
    return next(t.split("=", 1)[1] for t in texts if t.startswith("profile="))


def test_dnspython_resolves_a_name_over_tls_with_the_address_profile(server, pki) -> None:
    port, _ = server
    response = _tls(port, pki, _query("www.example.test"))
    assert response.rcode() == dns.rcode.NOERROR and response.answer
    assert _canary_profile(_tls(port, pki, _query("status.lachan.arpa", "TXT"))) == "isp-default"


def test_the_sni_device_id_selects_the_device_profile(server, pki) -> None:
    port, _ = server
    status = _query("status.lachan.arpa", "TXT")
    assert _canary_profile(_tls(port, pki, status, "kid-an." + SERVER_NAME)) == "under16"
    assert _canary_profile(_tls(port, pki, status, "lab-01." + SERVER_NAME, "::1")) == "school"


def test_an_unknown_device_id_is_refused_with_ede_18_and_a_reason(server, pki) -> None:
    port, _ = server
    response = _tls(port, pki, _query("www.example.test"), "nobody." + SERVER_NAME)
    assert response.rcode() == dns.rcode.REFUSED
    (ede,) = [o for o in response.options if o.otype == dns.edns.EDE]
    assert ede.code == 18 and "nobody" in ede.text and "unknown device" in ede.text


def test_kdig_queries_over_tls_verifying_the_certificate(server, pki) -> None:
    port, _ = server
    out = subprocess.run(
        [
            "kdig",
            "@127.0.0.1",
            "-p",
            str(port),
            "+tls",
            f"+tls-ca={pki.ca}",
            f"+tls-hostname=kid-an.{SERVER_NAME}",
            f"+tls-sni=kid-an.{SERVER_NAME}",
            "status.lachan.arpa",
            "TXT",
            "+timeout=5",
            "+retry=0",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    assert "NOERROR" in out and '"profile=under16"' in out, out


def test_pipelined_queries_are_all_answered_on_one_connection(server, pki) -> None:
    # RFC 7858 3.3: a client may send many queries without waiting; each gets its answer.
    port, _ = server
    names = ["www.example.test", "status.lachan.arpa", "mail.example.test"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
            assert tls.selected_alpn_protocol() == "dot"
            wires = [_query(n, "TXT" if "status" in n else "A") for n in names]
            for i, q in enumerate(wires):
                q.id = 100 + i
            tls.sendall(
                b"".join(len(w).to_bytes(2, "big") + w for w in (q.to_wire() for q in wires))
            )
            ids = {_read_frame(tls).id for _ in names}
    assert ids == {100, 101, 102}


def _read_frame(tls: ssl.SSLSocket) -> dns.message.Message:
    size = int.from_bytes(_read_exactly(tls, 2), "big")
    return dns.message.from_wire(_read_exactly(tls, size))


def _read_exactly(sock: ssl.SSLSocket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_a_tls_session_is_resumed_on_a_second_connection(server, pki) -> None:
    port, _ = server
    context = client_context(pki)
    session = None
    reused = []
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=SERVER_NAME, session=session) as tls:
                q = _query("www.example.test").to_wire()
                tls.sendall(len(q).to_bytes(2, "big") + q)
                _read_frame(tls)  # TLS 1.3 tickets arrive after the handshake
                reused.append(tls.session_reused)
                session = tls.session
    assert reused == [False, True]


def test_garbage_instead_of_a_client_hello_closes_only_that_connection(server, pki) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05hello" + bytes(range(256)) * 4)
        raw.settimeout(5)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert _tls(port, pki, _query("www.example.test")).rcode() == dns.rcode.NOERROR


def test_flags_open_dot_and_require_device_id_keeps_unnamed_clients_out(
    pki: Pki, tmp_path: Path
) -> None:
    port = ports()
    extra = "require_device_id: true\n"
    # Listener and files from the flags (the config has devices, server name and the switch).
    text = encrypted_config(pki, extra=extra).replace(f'cert: "{pki.cert}", key: "{pki.key}", ', "")
    with StubUpstream() as stub:
        process = LachanProcess(tmp_path, [stub.address], text)
        process.args += ["--listen-tls", f"127.0.0.1:{port}", "--tls-cert", str(pki.cert)]
        process.args += ["--tls-key", str(pki.key)]
        with process:
            wait_for_port(port)
            bare = _tls(port, pki, _query("www.example.test"))
            named = _tls(port, pki, _query("www.example.test"), "kid-an." + SERVER_NAME)
            process.assert_clean_log()
    assert bare.rcode() == dns.rcode.REFUSED
    (ede,) = [o for o in bare.options if o.otype == dns.edns.EDE]
    assert ede.code == 18 and "registered devices only" in ede.text
    assert named.rcode() == dns.rcode.NOERROR and named.answer


def test_with_two_workers_every_worker_serves_dot_with_device_ids(pki: Pki, tmp_path: Path) -> None:
    port = ports()
    text = encrypted_config(pki, dot=port, extra="workers: 2\n")
    with StubUpstream() as stub, LachanProcess(tmp_path, [stub.address], text) as process:
        wait_for_port(port)
        profiles = {
            _canary_profile(_tls(port, pki, _query("status.lachan.arpa", "TXT"), sni))
            for sni in ["kid-an." + SERVER_NAME, "lab-01." + SERVER_NAME] * 4
        }
        process.assert_clean_log()
    assert profiles == {"under16", "school"}


def test_a_question_truncated_over_udp_is_answered_whole_over_tls_every_time(server, pki) -> None:
    # Repeated questions come from prepared answers on UDP and on DoT/DoH; UDP's are cut to
    # the UDP size (TC=1), so DoT must never be handed those (resolver/pipeline.py).
    port, _ = server
    query = dns.message.make_query("big.example.test", "TXT", use_edns=0, payload=1232)
    for _ in range(4):  # a miss, a cache hit, then prepared answers
        whole = _tls(port, pki, query)
        assert not whole.flags & dns.flags.TC and whole.id == query.id
        assert sum(len(s) for rrset in whole.answer for r in rrset for s in r.strings) > 2000
