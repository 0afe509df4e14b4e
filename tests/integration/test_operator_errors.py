"""What `serve` would die of, `check-config` finds first: each case runs the real `lachan`.

Every operator mistake ends in one line naming the file and key: check-config exits 1, serve
exits 2 (never a traceback), so systemd's ExecStartPre stops a unit that could not start.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.stub_upstream import ROOT, free_port, lachan_command


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lachan_command() + list(args), capture_output=True, text=True, timeout=timeout,
        cwd=ROOT, check=False,
    )  # fmt: skip


def config(tmp_path: Path, extra: str, lists: str = "{enabled: false}") -> Path:
    """A config on a free loopback port (lists off unless asked: no index to compile)."""
    port = free_port(("127.0.0.1",))
    path = tmp_path / "lachan.yaml"
    path.write_text(
        f'listen: ["127.0.0.1:{port}"]\nupstreams: ["127.0.0.1:9"]\nlists: {lists}\n{extra}',
        encoding="utf-8",
    )
    return path


def assert_both_refuse(path: Path, *expected: str) -> None:
    """check-config and serve give exactly these lines (in any order), exit 1 and 2."""
    checked = run("check-config", str(path))
    served = run("serve", "--config", str(path))
    for result, status in ((checked, 1), (served, 2)):
        assert result.returncode == status, result
        assert "Traceback" not in result.stderr
        assert sorted(result.stderr.splitlines()) == sorted(expected), result.stderr


def test_a_missing_catalogue_is_named_with_its_key(tmp_path: Path) -> None:
    path = config(tmp_path, "", lists="{catalogue: absent.yaml}")
    missing = tmp_path / "absent.yaml"
    assert_both_refuse(
        path,
        f"{path}: lists.catalogue: {missing}: cannot read catalogue: [Errno 2] "
        f"No such file or directory: '{missing}'",
    )


def test_a_missing_audit_key_and_ledger_folder_are_both_named(tmp_path: Path) -> None:
    path = config(tmp_path, "audit: {ledger: nowhere/ledger.jsonl, key: keys/audit.key}\n")
    assert_both_refuse(
        path,
        f"{path}: audit.key: {tmp_path}/keys/audit.key: cannot read private key: No such file "
        "or directory (create it with `lachan audit keygen --out DIR`)",
        f"{path}: audit.ledger: folder {tmp_path}/nowhere does not exist",
    )


def test_the_public_key_given_as_the_audit_key_is_refused(tmp_path: Path) -> None:
    assert run("audit", "keygen", "--out", str(tmp_path / "keys")).returncode == 0
    path = config(tmp_path, "audit: {ledger: ledger.jsonl, key: keys/audit.pub}\n")
    assert_both_refuse(
        path,
        f"{path}: audit.key: {tmp_path}/keys/audit.pub: not a PEM private key without passphrase",
    )


def test_a_missing_query_log_folder_is_named(tmp_path: Path) -> None:
    path = config(tmp_path, "querylog: {path: logs/queries.jsonl}\n")
    assert_both_refuse(path, f"{path}: querylog.path: folder {tmp_path}/logs does not exist")


def test_a_ledger_locked_by_a_running_instance_is_named(tmp_path: Path) -> None:
    assert run("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    ledger = tmp_path / "ledger.jsonl"
    path = config(tmp_path, "site: {id: thcs-a, kind: school}\n"
                            "audit: {ledger: ledger.jsonl, key: audit.key}\n")  # fmt: skip
    fd = os.open(ledger, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running lachan holds it
        assert_both_refuse(
            path,
            f"{path}: audit.ledger: {ledger} is locked by another process "
            "(is lachan already running with this ledger?)",
        )
        assert run("check-config", "--files-only", str(path)).returncode == 0
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_a_port_in_use_is_named_by_its_address(tmp_path: Path, kind: int) -> None:
    path = config(tmp_path, "")
    port = int(path.read_text().split(":", 2)[2].split('"')[0])
    proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
    with socket.socket(socket.AF_INET, kind) as busy:
        busy.bind(("127.0.0.1", port))
        if kind == socket.SOCK_STREAM:
            busy.listen()
        assert_both_refuse(
            path,
            f"{path}: listen[0]: 127.0.0.1:{port} ({proto}) is already in use "
            "(another DNS server, or lachan already running?)",
        )
        assert run("check-config", "--files-only", str(path)).returncode == 0


def test_a_bad_site_timezone_is_blamed_on_site_timezone(tmp_path: Path) -> None:
    path = config(tmp_path, "site: {timezone: Mars/Olympus}\n")
    assert_both_refuse(
        path,
        f"{path}: site.timezone: unknown time zone 'Mars/Olympus' "
        "(an IANA name such as Asia/Ho_Chi_Minh)",
    )


def test_upstream_for_upstreams_says_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text('upstream: ["1.1.1.1"]\nlisten: ["127.0.0.1:5300"]\ncahce: {}\n')
    result = run("check-config", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = sorted(result.stderr.splitlines(), key=lambda line: "cahce" in line)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{path}: upstream: must be a mapping of forwarding settings")
    assert lines[0].endswith("did you mean upstreams?")
    assert lines[1].startswith(f"{path}: cahce: unknown key (did you mean cache? known: acl,")


def test_a_config_with_a_key_ledger_and_query_log_folder_is_ok(tmp_path: Path) -> None:
    assert run("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    path = config(tmp_path, "audit: {ledger: ledger.jsonl, key: audit.key}\n"
                            "querylog: {path: queries.jsonl}\n")  # fmt: skip
    result = run("check-config", str(path))
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}: ok\n", "")


def test_a_privileged_port_checked_without_privilege_says_why_it_cannot_know() -> None:
    """Without CAP_NET_BIND_SERVICE (setpriv, util-linux), port 53 cannot be tried: a note,
    not a failure. The capability is dropped rather than the user changed, so the checkout
    need not be readable by another user (CI's clone may be in a private folder)."""
    folder = Path(tempfile.mkdtemp(prefix="lachan-nobody-"))
    try:
        folder.chmod(0o755)  # readable by nobody, unlike pytest's tmp_path
        path = folder / "lachan.yaml"
        path.write_text('listen: ["127.0.0.1:53"]\nupstreams: ["127.0.0.1:9"]\n'
                        "lists: {enabled: false}\n")  # fmt: skip
        path.chmod(0o644)
        result = subprocess.run(
            ["setpriv", "--inh-caps=-net_bind_service", "--bounding-set=-net_bind_service",
             *lachan_command(), "check-config", str(path)],
            capture_output=True, text=True, timeout=30, cwd="/", check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(folder)
    assert (result.returncode, result.stdout) == (0, f"{path}: ok\n"), result.stderr
    assert result.stderr == (
        f"note: {path}: listen[0]: cannot know whether 127.0.0.1:53 is free: binding port 53 "
        "needs root or CAP_NET_BIND_SERVICE (the systemd unit grants it)\n"
    )


def test_a_ledger_that_is_a_folder_and_a_missing_policies_dir_are_named(tmp_path: Path) -> None:
    assert run("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    (tmp_path / "ledger").mkdir()
    path = config(tmp_path, "audit: {ledger: ledger, key: audit.key}\n")
    assert_both_refuse(
        path, f"{path}: audit.ledger: {tmp_path}/ledger is a folder; name the ledger file in it"
    )
    path.write_text(path.read_text().replace("ledger: ledger", "ledger: ledger/l.jsonl")
                    + "policies: {dir: profiles}\n")  # fmt: skip
    assert_both_refuse(path, f"{path}: policies.dir: folder {tmp_path}/profiles does not exist")


@pytest.mark.parametrize("key", ["listen_tls", "listen_https"])
def test_an_encrypted_listener_port_in_use_is_named_by_its_key(tmp_path: Path, key: str) -> None:
    from tests.tls_helpers import make_pki

    pki = make_pki(tmp_path / "pki")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = config(tmp_path, f'{key}: ["127.0.0.1:{port}"]\n'
                                f"tls: {{cert: {pki.cert}, key: {pki.key}}}\n")  # fmt: skip
        assert_both_refuse(
            path,
            f"{path}: {key}[0]: 127.0.0.1:{port} (TCP) is already in use "
            "(another DNS server, or lachan already running?)",
        )


def test_a_config_that_listens_nowhere_is_refused(tmp_path: Path) -> None:
    """An empty file is a valid config, but serving it bound no port and answered nothing."""
    path = tmp_path / "lachan.yaml"
    path.write_text("# nothing yet\nupstreams: ['127.0.0.1:9']\nlists: {enabled: false}\n")
    assert_both_refuse(
        path, f"{path}: listen: no address to answer DNS on (give listen, listen_tls or "
              "listen_https)",
    )  # fmt: skip


def _audited(tmp_path: Path, site: str = "thcs-a") -> Path:
    assert run("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    return config(tmp_path, f"site: {{id: {site}, kind: school}}\n"
                            "audit: {ledger: ledger.jsonl, key: audit.key, instance: gw1}\n")  # fmt: skip


def test_a_ledger_whose_last_record_is_unreadable_is_named_and_kept(tmp_path: Path) -> None:
    path = _audited(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text('{"v": 1, "site": "x"}\nnot json\n')
    before = ledger.read_bytes()
    assert_both_refuse(
        path,
        f"{path}: audit.ledger: {ledger}:2: last record is unreadable (Expecting value: line 1 "
        "column 1 (char 0))",
    )
    assert ledger.read_bytes() == before


def test_a_ledger_signed_by_another_key_or_site_is_named_and_kept(tmp_path: Path) -> None:
    from tests.collector.collector_helpers import write_ledger

    assert run("audit", "keygen", "--out", str(tmp_path / "other")).returncode == 0
    path = _audited(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    write_ledger(ledger, tmp_path / "other" / "audit.key", "thcs-a", hours=2)
    before = ledger.read_bytes()
    assert_both_refuse(path, f"{path}: audit.ledger: {ledger}:2: last record is not signed by "
                             "this key")  # fmt: skip
    ledger.unlink()
    write_ledger(ledger, tmp_path / "audit.key", "thcs-b", hours=1)
    before = ledger.read_bytes()
    assert_both_refuse(path, f"{path}: audit.ledger: {ledger}: ledger belongs to site thcs-b "
                             "instance gw1, not thcs-a instance gw1")  # fmt: skip
    assert ledger.read_bytes() == before


def test_a_query_log_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "queries").mkdir()
    path = config(tmp_path, "querylog: {path: queries}\n")
    assert_both_refuse(
        path, f"{path}: querylog.path: {tmp_path}/queries is a folder; name the log file in it"
    )


def test_a_negative_worker_count_is_refused_before_serving(tmp_path: Path) -> None:
    path = config(tmp_path, "")
    served = run("serve", "--config", str(path), "--workers", "-5")
    assert served.returncode == 2 and "Traceback" not in served.stderr
    assert served.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--workers': -5 is not in the range 0<=x<=256."
    )


def test_what_serve_would_run_without_is_a_warning_of_check_config(tmp_path: Path) -> None:
    """serve keeps answering DNS when metrics, the console or RADIUS cannot start (it logs an
    error); check-config, run before it by systemd, says so up front without refusing."""
    with socket.socket() as busy, socket.socket() as taken:
        for sock in (busy, taken):
            sock.bind(("127.0.0.1", 0))
            sock.listen()
        port, other = busy.getsockname()[1], taken.getsockname()[1]
        path = config(tmp_path, f"metrics: {{listen: '127.0.0.1:{port}'}}\n"
                                f"console: {{listen: '127.0.0.1:{other}', blockpage_listen: "
                                "'127.0.0.1:0', tls_refuse_port: 0}\n"
                                "subscribers: {store: 'file:state', radius: "
                                "{listen: '127.0.0.1:0', secret_file: radius.secret, "
                                "nas: ['127.0.0.1/32']}}\n")  # fmt: skip
        (tmp_path / "state").mkdir()
        result = run("check-config", str(path))
    assert (result.returncode, result.stdout) == (0, f"{path}: ok\n"), result.stderr
    assert sorted(result.stderr.splitlines()) == sorted([
        f"warning: {path}: console.listen: 127.0.0.1:{other} (TCP) is already in use: "
        "serve would run without it",
        f"warning: {path}: metrics.listen: 127.0.0.1:{port} (TCP) is already in use: "
        "serve would run without it",
        f"warning: {path}: subscribers.radius.secret_file: cannot read "
        f"{tmp_path}/radius.secret: No such file or directory: serve would run without it",
        f"warning: {path}: subscribers.store: {tmp_path}/state: cannot read: Is a directory: "
        "serve would start with no subscriber bindings",
    ])  # fmt: skip


def test_tls_flags_are_named_as_flags_not_as_the_config(tmp_path: Path) -> None:
    from tests.tls_helpers import make_pki

    path = config(tmp_path, "")
    missing = run("serve", "--config", str(path), "--listen-tls", "127.0.0.1:0",
                  "--tls-cert", "none.pem", "--tls-key", "none.key")  # fmt: skip
    assert (missing.returncode, missing.stderr) == (2, (
        "--tls-cert/--tls-key: cannot load certificate none.pem with key none.key: "
        "[Errno 2] No such file or directory\n"
    ))  # fmt: skip
    pki = make_pki(tmp_path / "pki")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run("serve", "--config", str(path), "--listen-https", f"127.0.0.1:{port}",
                    "--tls-cert", str(pki.cert), "--tls-key", str(pki.key))  # fmt: skip
    assert (taken.returncode, taken.stderr) == (2, (
        f"--listen-https: 127.0.0.1:{port} (TCP) is already in use "
        "(another DNS server, or lachan already running?)\n"
    ))  # fmt: skip


def test_an_address_listed_twice_or_an_upstream_that_is_lachan_are_named(tmp_path: Path) -> None:
    """serve died of the first ('cannot serve: [Errno 98]') and looped every miss on the second."""
    port = free_port(("127.0.0.1",))
    path = tmp_path / "lachan.yaml"
    path.write_text(f"listen: ['127.0.0.1:{port}', '127.0.0.1:{port}']\n"
                    f"upstreams: ['127.0.0.1:{port}']\nlists: {{enabled: false}}\n")  # fmt: skip
    assert_both_refuse(
        path,
        f"{path}: listen[1]: 127.0.0.1:{port} (UDP) is already listen[0]",
        f"{path}: upstreams[0]: 127.0.0.1:{port} is lachan's own listen address: every miss "
        "would come back to it",
    )


def test_a_folder_or_a_broken_link_given_as_the_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lachan.yaml").mkdir()  # e.g. a volume mounted where the file should be
    (tmp_path / "link.yaml").symlink_to(tmp_path / "gone.yaml")
    for name, why in (("lachan.yaml", "Is a directory"), ("link.yaml", "No such file or directory")):
        path = tmp_path / name
        assert_both_refuse(path, f"{path}: cannot read: {why}")


def test_a_site_id_or_instance_the_ledger_cannot_carry_is_named_by_its_key(tmp_path: Path) -> None:
    assert run("audit", "keygen", "--out", str(tmp_path)).returncode == 0
    path = config(tmp_path, "site: {id: THCS Le Loi}\n"
                            "audit: {ledger: l.jsonl, key: audit.key, instance: gw1}\n")  # fmt: skip
    assert_both_refuse(
        path, f"{path}: site.id: 'THCS Le Loi' is not a label ([a-z0-9_-], no dots or colons)"
    )
    path = config(tmp_path, "audit: {ledger: l.jsonl, key: audit.key, instance: gw1.truong.vn}\n")
    assert_both_refuse(
        path,
        f"{path}: audit.instance: 'gw1.truong.vn' is not a label ([a-z0-9_-], no dots or colons)",
    )
    assert not (tmp_path / "l.jsonl").exists()


def test_a_site_id_that_is_not_a_label_without_a_ledger_is_a_warning(tmp_path: Path) -> None:
    # serve runs with it (no ledger to carry it); refusing it would stop DNS at the restart
    # after an upgrade, for a name only the province's registry needs to match.
    path = config(tmp_path, "site: {id: THCS Le Loi}\n")
    checked = run("check-config", str(path))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.splitlines() == [
        f"warning: {path}: site.id: 'THCS Le Loi' is not a label ([a-z0-9_-], no dots or "
        "colons): the province's registry cannot match it"
    ]
