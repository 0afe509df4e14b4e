"""DNS over HTTPS (resolver/transport/doh*.py) against real clients: dnspython, kdig, curl."""

from __future__ import annotations

import base64
import http.client
import socket
import subprocess
from collections.abc import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import h2.connection
import h2.events
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

from resolver.transport import doh_ng
from tests.stub_upstream import LachanProcess, StubUpstream


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def lachan(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(DoH port, plain DNS port) of one lachan."""
    port = ports()
    with StubUpstream() as stub:
        work = tmp_path_factory.mktemp("doh")
        process = LachanProcess(work, [stub.address], encrypted_config(pki, doh=port))
        with process:
            wait_for_port(port)
            yield port, process.port
            assert process.alive(), process.stderr()
            process.assert_clean_log()


@pytest.fixture(scope="module")
def server(lachan: tuple[int, int]) -> int:
    return lachan[0]


def _https(
    port: int,
    pki: Pki,
    query: dns.message.Message,
    path: str = "/dns-query",
    post: bool = True,
    http2: bool = True,
) -> dns.message.Message:
    # The certificate names dns.example.vn: dnspython connects to the bootstrap address on
    # loopback and checks that name against the test CA.
    return dns.query.https(
        query,
        f"https://{SERVER_NAME}:{port}{path}",
        timeout=5,
        post=post,
        bootstrap_address="127.0.0.1",
        verify=client_context(pki, ("h2", "http/1.1")),
        http_version=dns.query.HTTPVersion.H2 if http2 else dns.query.HTTPVersion.H1,
    )


def _query(name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype, use_edns=0)


def _canary_profile(response: dns.message.Message) -> str:
    texts = [b"".join(r.strings).decode() for rrset in response.answer for r in rrset]
    return next(t.split("=", 1)[1] for t in texts if t.startswith("profile="))


@pytest.mark.parametrize("http2", [True, False])
@pytest.mark.parametrize("post", [True, False])
def test_dnspython_resolves_over_https_by_get_and_post(
    server, pki, http2: bool, post: bool
) -> None:
    response = _https(server, pki, _query("www.example.test"), post=post, http2=http2)
    assert response.rcode() == dns.rcode.NOERROR and response.answer


def test_the_path_device_id_selects_the_device_profile(server, pki) -> None:
    status = _query("status.lachan.arpa", "TXT")
    assert _canary_profile(_https(server, pki, status)) == "isp-default"
    assert _canary_profile(_https(server, pki, status, "/dns-query/kid-an")) == "under16"
    assert (
        _canary_profile(_https(server, pki, status, "/dns-query/lab-01", http2=False)) == "school"
    )


def test_an_unknown_path_device_is_refused_with_ede_18_and_status_200(server, pki) -> None:
    response = _https(server, pki, _query("www.example.test"), "/dns-query/nobody")
    assert response.rcode() == dns.rcode.REFUSED
    (ede,) = [o for o in response.options if o.otype == dns.edns.EDE]
    assert ede.code == 18 and "nobody" in ede.text


def _raw(
    port: int,
    pki: Pki,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=_h1_context(pki))
    connection.request(method, target, body=body, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _h1_context(pki: Pki):  # type: ignore[no-untyped-def]
    context = client_context(pki, ("http/1.1",))
    context.check_hostname = False  # http.client sends the IP as SNI; the CA is still checked
    return context


def test_bad_requests_get_http_status_codes_and_the_server_keeps_serving(server, pki) -> None:
    wire = _query("www.example.test").to_wire()
    dns_type = {"content-type": "application/dns-message"}
    assert _raw(server, pki, "GET", "/dns-query?dns=***").status == 400
    assert _raw(server, pki, "POST", "/dns-query", b"\x00" * 5, dns_type).status == 400
    assert (
        _raw(server, pki, "POST", "/dns-query", wire, {"content-type": "text/plain"}).status == 415
    )
    assert _raw(server, pki, "POST", "/dns-query", b"\x00" * 70_000, dns_type).status == 413
    assert _raw(server, pki, "GET", "/index.html").status == 404
    put = _raw(server, pki, "PUT", "/dns-query", wire, dns_type)
    assert put.status == 405 and put.getheader("allow") == "GET, POST"
    assert _https(server, pki, _query("www.example.test")).rcode() == dns.rcode.NOERROR


@pytest.mark.parametrize("http2", [True, False])
@pytest.mark.parametrize("post", [True, False])
def test_edns_version_1_and_notify_get_their_dns_errors_with_status_200(
    server, pki, http2: bool, post: bool
) -> None:
    # RFC 8484 4.2.1: DNS errors are answers (they were HTTP 400, so no client saw BADVERS).
    badvers = _https(server, pki, dns.message.make_query("www.example.test", "A", use_edns=1),
                     post=post, http2=http2)  # fmt: skip
    assert badvers.rcode() == dns.rcode.BADVERS and badvers.edns == 0
    notify = dns.message.make_query("example.test", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    notimp = _https(server, pki, notify, post=post, http2=http2)
    assert notimp.rcode() == dns.rcode.NOTIMP and notimp.opcode() == dns.opcode.NOTIFY


def test_cache_control_max_age_is_the_lowest_ttl_of_the_answer(server, pki) -> None:
    wire = _query("www.example.test").to_wire()
    encoded = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
    response = _raw(server, pki, "GET", f"/dns-query?dns={encoded}")
    assert (
        response.status == 200 and response.getheader("content-type") == "application/dns-message"
    )
    answer = dns.message.from_wire(_raw_body(server, pki, encoded))
    lowest = min(rrset.ttl for rrset in answer.answer)
    age = int(response.getheader("cache-control").removeprefix("max-age="))
    assert 0 < age <= lowest + 1 and age >= lowest - 2


def _raw_body(port: int, pki: Pki, encoded: str) -> bytes:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=_h1_context(pki))
    connection.request("GET", f"/dns-query?dns={encoded}")
    body = connection.getresponse().read()
    connection.close()
    return body


def test_kdig_queries_over_https(server, pki) -> None:
    out = subprocess.run(
        [
            "kdig",
            "@127.0.0.1",
            "-p",
            str(server),
            "+https=/dns-query/kid-an",
            f"+tls-ca={pki.ca}",
            f"+tls-hostname={SERVER_NAME}",
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


def test_a_question_truncated_over_udp_is_answered_whole_over_https_every_time(
    lachan: tuple[int, int], pki: Pki
) -> None:
    # Repeated questions are answered from prepared answers on both transports; UDP's are cut
    # to the UDP size (TC=1), so DoH must never be handed those (resolver/pipeline.py).
    doh, udp = lachan
    query = dns.message.make_query("big.example.test", "TXT", use_edns=0, payload=1232)
    for _ in range(3):
        cut = dns.query.udp(query, "127.0.0.1", port=udp, timeout=5)
        assert cut.flags & dns.flags.TC
    encoded = base64.urlsafe_b64encode(query.to_wire()).rstrip(b"=").decode()
    for _ in range(4):  # a miss, a cache hit, then prepared answers
        whole = dns.message.from_wire(_raw_body(doh, pki, encoded))
        assert not whole.flags & dns.flags.TC and whole.id == query.id
        assert sum(len(s) for rrset in whole.answer for r in rrset for s in r.strings) > 2000


def test_http2_is_served_by_nghttp2_where_the_library_is_installed() -> None:
    # scripts/test-packages.txt and debian/control install libnghttp2-14; without it DoH
    # falls back to h2 (pure Python, about 3x the cost per request).
    assert doh_ng.available(), "libnghttp2.so.14 did not load: apt-get install libnghttp2-14"


def test_one_connection_posts_more_than_a_flow_control_window_of_queries(server, pki) -> None:
    # Request bodies' windows are handed back once each request is complete (doh_ng.py,
    # doh_h2.py): 200 padded queries of ~470 bytes are ~94 KB, past the 64 KiB window.
    raw = socket.create_connection(("127.0.0.1", server), timeout=5)
    with client_context(pki, ("h2",)).wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
        conn = h2.connection.H2Connection()
        conn.initiate_connection()
        query = dns.message.make_query("www.example.test", "A", use_edns=0, pad=468)
        wire = query.to_wire()
        assert len(wire) >= 468
        answered = 0
        tls.settimeout(5)
        for stream_id in range(1, 2 * 200, 2):
            conn.send_headers(stream_id, [
                (":method", "POST"), (":path", "/dns-query"), (":scheme", "https"),
                (":authority", SERVER_NAME), ("content-type", "application/dns-message"),
            ])  # fmt: skip
            conn.send_data(stream_id, wire, end_stream=True)
            tls.sendall(conn.data_to_send())
            ended = False
            while not ended:
                data = tls.recv(65536)
                assert data, "the server closed the connection"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    ended = ended or isinstance(event, h2.events.StreamEnded)
                tls.sendall(conn.data_to_send())
            answered += 1
    assert answered == 200


def test_a_dropped_client_gets_refused_even_for_a_query_with_a_dns_error(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # HTTP must answer something: a dropped query is REFUSED, and one that carries a DNS
    # error of its own (EDNS version 1) must not break the refusal on its way.
    port = ports()
    work = tmp_path_factory.mktemp("doh-drop")
    extra = "acl: {allow: [127.0.0.2/32], action: drop}\n"
    config = encrypted_config(pki, doh=port, extra=extra)
    with StubUpstream() as stub, LachanProcess(work, [stub.address], config) as process:
        wait_for_port(port)
        for query in (_query("a.example.test"), dns.message.make_query("a.test", "A", use_edns=1)):
            response = _https(port, pki, query, http2=False)
            assert response.rcode() == dns.rcode.REFUSED and response.id == query.id
        process.assert_clean_log()
