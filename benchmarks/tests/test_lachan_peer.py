"""The config the benchmark writes for lachan is one lachan itself accepts, with the list in it."""

from pathlib import Path

import pytest
from lachan_peer import LachanCaps, byte_compile, lachan_argv, lachan_config, lachan_package

config = pytest.importorskip("resolver.config")
catalogue = pytest.importorskip("resolver.lists.catalogue")


def test_config_loads_with_the_list_as_the_only_source(tmp_path: Path):
    listfile = tmp_path / "list.txt"
    listfile.write_text("bad.example\n")
    path = lachan_config(tmp_path / "run", listfile, 5310, 5300, 2, LachanCaps(options=frozenset()))
    cfg = config.load(path)
    assert [str(listener) for listener in cfg.listeners] == ["127.0.0.1:5310"]
    assert cfg.workers == 2  # no --workers option: the config key carries it
    cat = catalogue.load_catalogue(cfg.lists.catalogue)
    assert [(s.id, s.category, s.format, s.bundled) for s in cat.sources] == [
        ("bench", "adult", "domains", listfile)
    ]
    assert (tmp_path / "run" / "policies" / "bench.yaml").is_file()


def test_without_list_support_the_config_is_plain_forwarding(tmp_path: Path):
    caps = LachanCaps(lists=False, workers=False)
    path = lachan_config(tmp_path, tmp_path / "list.txt", 5310, 5300, 1, caps)
    text = path.read_text()
    assert "lists" not in text and "workers" not in text


def test_argv_passes_workers_and_quiet_logging_when_the_cli_has_them(tmp_path: Path):
    caps = LachanCaps(options=frozenset({"--workers", "--log-level"}))
    argv = lachan_argv(5310, 2, tmp_path, tmp_path / "l.txt", 5300, None, caps)
    assert argv[argv.index("--listen") + 1] == "127.0.0.1:5310"
    assert argv[argv.index("--upstream") + 1] == "127.0.0.1:5300"
    assert argv[-4:] == ["--log-level", "warning", "--workers", "2"]
    stand_in = lachan_argv(5310, 1, tmp_path, tmp_path / "l.txt", 5300, "x --port {port}", caps)
    assert stand_in == ["x", "--port", "5310"]


def test_byte_compile_writes_bytecode_even_where_python_is_told_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as on the shared machines
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("X = 1\n")
    (package / "sub" / "mod.py").write_text("Y = 2\n")
    assert byte_compile(package)
    assert list((package / "__pycache__").glob("__init__.*.pyc"))
    assert list((package / "sub" / "__pycache__").glob("mod.*.pyc"))
    assert not byte_compile(None)


def test_the_package_compiled_is_the_one_the_venv_runs():
    found = lachan_package()
    assert found is not None and (found / "cli.py").is_file()
    assert found.resolve() == Path(catalogue.__file__).resolve().parent.parent
