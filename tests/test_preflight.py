"""The checks before serving: folders that must exist or be creatable, ports, locks."""

from __future__ import annotations

import socket
from pathlib import Path

from resolver import config, preflight


def test_a_folder_under_a_writable_one_is_creatable(tmp_path: Path) -> None:
    assert preflight.creatable(tmp_path / "a" / "b") is None
    assert preflight.creatable(tmp_path) is None


def test_a_folder_under_a_file_is_not_creatable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert preflight.creatable(tmp_path / "file" / "lists") == (
        f"{tmp_path / 'file'} is not a folder, so {tmp_path / 'file' / 'lists'} cannot be created"
    )


def test_a_lists_state_dir_that_cannot_be_created_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cfg = config.parse("lists: {state_dir: file/state}\nlisten: ['127.0.0.1:0']\n", "l.yaml",
                       tmp_path)  # fmt: skip
    found = preflight.check(cfg)
    assert found.problems == [
        f"l.yaml: lists.state_dir: {tmp_path / 'file'} is not a folder, so "
        f"{tmp_path / 'file' / 'state'} cannot be created"
    ]


def test_live_checks_are_skipped_when_not_asked(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        cfg = config.parse(f"lists: {{enabled: false}}\nlisten: ['127.0.0.1:{port}']\n", "l.yaml")
        assert preflight.check(cfg, live=False).problems == []
        assert len(preflight.check(cfg, live=True).problems) == 1


def test_an_extra_source_file_that_is_missing_is_named(tmp_path: Path) -> None:
    cfg = config.parse(
        "lists: {extra_sources: [{id: ours, category: adult, file: ours.txt}]}\n", "l.yaml",
        tmp_path,
    )  # fmt: skip
    found = preflight.check(cfg, live=False)
    assert found.problems == [
        f"l.yaml: lists.extra_sources[0].file: cannot read {tmp_path / 'ours.txt'}"
    ]
    (tmp_path / "ours.txt").write_text("x.example\n")
    assert preflight.check(cfg, live=False).problems == []


def test_a_catalogue_problem_names_the_config_and_key(tmp_path: Path) -> None:
    cfg = config.parse("lists: {catalogue: none.yaml}\n", "l.yaml", tmp_path)
    (line,) = preflight.check(cfg, live=False).problems
    assert line.startswith(f"l.yaml: lists.catalogue: {tmp_path / 'none.yaml'}: cannot read")
    assert preflight.check(cfg, live=False, catalogue=False).problems == []


def test_a_config_without_any_listener_cannot_serve_unless_encrypted_ones_are_given() -> None:
    bare = config.parse("lists: {enabled: false}\n", "l.yaml")
    assert preflight.check(bare, live=False).problems == []  # a fragment, for --files-only
    assert preflight.check(bare, live=True).problems == [
        "l.yaml: listen: no address to answer DNS on (give listen, listen_tls or listen_https)"
    ]
    dot_only = config.parse("lists: {enabled: false}\nlisten_tls: ['127.0.0.1:0']\n"
                            "tls: {cert: c.pem, key: k.pem}\n", "l.yaml")  # fmt: skip
    assert preflight.check(dot_only, live=True).problems == []


def test_an_address_listed_twice_is_a_problem_before_any_port_is_tried() -> None:
    cfg = config.parse("lists: {enabled: false}\nlisten: ['127.0.0.1:5301', '127.0.0.1:5301']\n"
                       "listen_tls: ['127.0.0.1:5302']\nlisten_https: ['127.0.0.1:5302']\n"
                       "tls: {cert: c.pem, key: k.pem}\n", "l.yaml")  # fmt: skip
    assert preflight.check(cfg, live=False).problems == [
        "l.yaml: listen[1]: 127.0.0.1:5301 (UDP) is already listen[0]",
        "l.yaml: listen_https[0]: 127.0.0.1:5302 (TCP) is already listen_tls[0]",
    ]


def test_an_upstream_that_is_lachan_itself_is_a_loop() -> None:
    cfg = config.parse("lists: {enabled: false}\nlisten: ['0.0.0.0:53']\n"
                       "upstreams: ['1.1.1.1', '127.0.0.1']\n", "l.yaml")  # fmt: skip
    assert preflight.check(cfg, live=False).problems == [
        "l.yaml: upstreams[1]: 127.0.0.1:53 is lachan's own listen address: every miss "
        "would come back to it"
    ]


def test_a_service_on_a_dns_address_is_a_warning() -> None:
    from resolver import preflight_services

    cfg = config.parse("lists: {enabled: false}\nlisten: ['127.0.0.1:5303']\n"
                       "metrics: {listen: '127.0.0.1:5303'}\n", "l.yaml")  # fmt: skip
    assert preflight_services.warnings(cfg, live=False) == [
        "l.yaml: metrics.listen: 127.0.0.1:5303 (TCP) is already listen[0]: "
        "serve would run without it"
    ]


def test_a_console_users_file_that_cannot_be_read_is_a_warning(tmp_path: Path) -> None:
    from resolver import preflight_services

    (tmp_path / "users").mkdir()
    cfg = config.parse("lists: {enabled: false}\nlisten: ['127.0.0.1:5304']\n"
                       "console: {listen: '127.0.0.1:0', blockpage_listen: '127.0.0.1:0', "
                       "users_file: users}\n", "l.yaml", tmp_path)  # fmt: skip
    assert preflight_services.warnings(cfg, live=False) == [
        f"l.yaml: console.users_file: {tmp_path / 'users'}: cannot read: [Errno 21] Is a "
        f"directory: '{tmp_path / 'users'}': the console would let no one log in"
    ]
