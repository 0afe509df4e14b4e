"""lachan: a DNS-level filtering resolver that protects children online."""

__version__ = "0.1.0"
