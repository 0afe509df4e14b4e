"""The C extension and the shipped folders; everything else is declared in setup.cfg."""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

# policies/ and blocklists/ stay at the top of the repository (profiles and lists are edited
# there); a built wheel carries them as resolver/_shipped/, which resolver/shipped.py finds.
SHIPPED = ("policies", "blocklists")


class BuildWithShipped(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        for name in SHIPPED:
            target = Path(self.build_lib) / "resolver" / "_shipped" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(name, target)


setup(
    cmdclass={"build_py": BuildWithShipped},
    ext_modules=[
        # One C extension, five sources: the name table and fast path, DoH's allocator, the
        # upstream answer scanner of the miss path, the sockets of upstream attempts, and the
        # cached body's TTL countdown.
        Extension(
            "resolver._nametable",
            [
                "resolver/_nametable.c",
                "resolver/_ngmem.c",
                "resolver/_wire.c",
                "resolver/_upsock.c",
                "resolver/_ttl.c",
                "resolver/_query.c",
            ],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
    ],
)
