"""The ``lachan`` command: assembles the click groups of each area; no logic lives here."""

from __future__ import annotations

import importlib

import click

from resolver import __version__

# Each area registers its commands in resolver/commands/<area>.py as a module-level
# ``commands`` list; an area that is not present yet is simply absent from --help.
_AREAS = ("serve", "lists", "policy", "audit", "coverage")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lachan")
def main() -> None:
    """lachan (lá chắn): a DNS filtering resolver that protects children online."""


def _register_areas() -> None:
    for area in _AREAS:
        try:
            module = importlib.import_module(f"resolver.commands.{area}")
        except ModuleNotFoundError as exc:
            if exc.name != f"resolver.commands.{area}":
                raise
            continue
        for command in module.commands:
            main.add_command(command)


_register_areas()

if __name__ == "__main__":
    main()
