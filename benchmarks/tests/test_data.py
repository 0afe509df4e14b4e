"""Blocklist reading, peer formats and workload files, on small real files."""

from data import read_domains, synthetic_domains, write_peer_formats, write_workloads


def test_read_domains_normalises_and_counts_rejects(tmp_path):
    src = tmp_path / "list.txt"
    src.write_text(
        "# comment\nExample.COM.\n0.0.0.0 ads.example.net\nexample.com\nnot a name!\n1.2.3.4\n"
    )
    names, rejected = read_domains(src)
    assert names == ["ads.example.net", "example.com"]
    assert rejected == 2


def test_peer_formats(tmp_path):
    write_peer_formats(tmp_path, "bl", ["a.example", "b.example"])
    assert (tmp_path / "bl.txt").read_text() == "a.example\nb.example\n"
    assert 'local-zone: "b.example." always_nxdomain' in (tmp_path / "bl.unbound.conf").read_text()
    assert "0.0.0.0 a.example\n:: a.example\n" in (tmp_path / "bl.hosts").read_text()
    rpz = (tmp_path / "bl.rpz").read_text()
    assert "a.example CNAME .\n*.a.example CNAME .\n" in rpz and "IN SOA" in rpz
    write_peer_formats(tmp_path, "empty", [])
    assert (tmp_path / "empty.txt").read_text() == ""


def test_workloads(tmp_path):
    listed = synthetic_domains(500)
    sizes = {"miss": 2_000, "miss_paced": 500, "blocked": 1_000, "mixed": 1_000}
    write_workloads(tmp_path, listed, sizes, rounds=2)
    bset = set(listed)
    hit = (tmp_path / "wl-hit.txt").read_text().splitlines()
    assert len(hit) <= 1000 and all(line.endswith(" A") for line in hit)
    miss1 = (tmp_path / "wl-miss-r1.txt").read_text().splitlines()
    miss2 = set((tmp_path / "wl-miss-r2.txt").read_text().splitlines())
    assert len(miss1) == len(set(miss1)) > 1_990 and not miss2 & set(miss1)
    paced = set((tmp_path / "wl-miss-paced-r1.txt").read_text().splitlines())
    assert len(paced) > 490 and not paced & (set(miss1) | miss2)
    blocked = [line.split()[0] for line in (tmp_path / "wl-blocked.txt").read_text().splitlines()]
    exact = [n for n in blocked if n in bset]
    assert (
        len(blocked) == 1_000 and len(exact) >= 500
    )  # half exact (plus subdomains that happen to be listed)
    assert all(any(n.endswith("." + d) for d in bset) for n in blocked if n not in bset)
    mixed = (tmp_path / "wl-mixed.txt").read_text().splitlines()
    assert len(mixed) == 1_000 and {line.split()[1] for line in mixed} == {"A", "AAAA"}
