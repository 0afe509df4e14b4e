"""The Debian tools the tests drive: a missing one fails the test naming the package to install."""

from __future__ import annotations

import shutil

import pytest

# Command -> Debian package (every package is listed in scripts/test-packages.txt, which
# scripts/install-test-tools installs; tests/test_tools.py keeps the two in step).
PACKAGES = {
    "certutil": "libnss3-tools",
    "chromium": "chromium",
    "curl": "curl",
    "dig": "bind9-dnsutils",
    "dnsdist": "dnsdist",
    "dnsmasq": "dnsmasq-base",
    "dnsperf": "dnsperf",
    "dpkg-buildpackage": "dpkg-dev",
    "kdig": "knot-dnsutils",
    "lintian": "lintian",
    "mount": "mount",
    "nft": "nftables",
    "nsd": "nsd",
    "openssl": "openssl",
    "pdftotext": "poppler-utils",
    "pdftoppm": "poppler-utils",
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "radclient": "freeradius-utils",
    "redis-server": "redis-server",
    "setpriv": "util-linux",
    "systemd-analyze": "systemd",
    "systemd-sysusers": "systemd",
    "systemd-tmpfiles": "systemd",
    "tesseract": "tesseract-ocr",
    "unbound": "unbound",
}


def missing_message(tool: str) -> str:
    package = PACKAGES[tool]
    return f"{tool} is not installed: run scripts/install-test-tools (apt-get install {package})"


def require(tool: str) -> str:
    """The tool's path; fails the calling test (never skips it) when it is not installed."""
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail(missing_message(tool), pytrace=False)
    return path
