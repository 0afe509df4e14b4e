"""Only the C extension lives here; everything else is declared in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "resolver._nametable",
            ["resolver/_nametable.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
