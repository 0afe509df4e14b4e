"""The one error hierarchy: user mistakes end as one clear line, never a traceback."""


class LachanError(Exception):
    """Base of every error lachan raises on purpose."""


class ConfigError(LachanError):
    """A configuration file is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class ListError(LachanError):
    """A blocklist source, catalogue or compiled index is unusable."""


class IndexError_(ListError):
    """A compiled index file is corrupt, truncated or of an unknown format."""


class StoreUnavailable(LachanError):
    """The subscriber store cannot be reached or read; the replica keeps serving what it had."""


class AuditError(LachanError):
    """An audit ledger, key or report input is invalid."""
