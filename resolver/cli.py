"""The ``lachan`` command: assembles the click groups of each area; no logic lives here."""

from __future__ import annotations

import importlib

import click

from resolver import __version__

# The command name -> (module under resolver/commands, attribute). Modules are imported only
# when their command runs (or for --help): `lachan serve` then starts without importing the
# audit, coverage and list-download code (cryptography, aiodns, requests).
_COMMANDS = {
    "serve": ("serve", "serve"),
    "check-config": ("serve", "check_config"),
    "lists": ("lists", "lists"),
    "explain": ("policy", "explain"),
    "audit": ("audit", "audit"),
    "coverage": ("coverage", "coverage"),
    "allow": ("allow", "allow"),
    "backup": ("backup", "backup"),
    "restore": ("backup", "restore"),
    "devices": ("devices", "devices"),
    "collector": ("collector", "collector"),
    "report": ("report", "report"),
    "console": ("console", "console"),
    "subscribers": ("subscribers", "subscribers"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(f"resolver.commands.{spec[0]}")
        command: click.Command = getattr(module, spec[1])
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lachan")
def main() -> None:
    """lachan (lá chắn): a DNS filtering resolver that protects children online."""


if __name__ == "__main__":
    main()
