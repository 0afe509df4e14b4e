"""Pure parser for AdBlock-style DNS rules (AdGuard Home / uBlock ``||name^`` syntax).

Only rules a DNS filter can honour become Rules: ``||name^`` (name and subdomains),
``|name^`` (exact), bare ``name``, ``@@`` exceptions, ``$important`` and ``$dnsrewrite``.
Cosmetic (``##``), regex, URL-path and browser-modifier rules are skipped and counted.
"""

from __future__ import annotations

from resolver.lists.match import ListAction
from resolver.lists.names import NameError_, is_ip_address, normalise
from resolver.lists.names import lines as _lines
from resolver.lists.rules import ParseResult, Rule, Scope

_COSMETIC = ("##", "#@#", "#?#", "#$#", "#%#", "#@$#", "#@?#")
# AdGuard Home DNS modifiers lachan cannot express per rule (they depend on the client or
# query type); skipping is safer than applying them too broadly.
_DNS_UNSUPPORTED = frozenset({"client", "ctag", "dnstype", "denyallow"})
_NOT_A_NAME = frozenset("/?=:&%,[]() ")


class _Skip(Exception):
    """A rule line that yields no DNS rule; the message is the reason."""


def parse_adblock(text: str) -> ParseResult:
    """Parse AdBlock/AdGuard DNS filter text; non-DNS rules are reported, not applied."""
    result = ParseResult()
    for no, line in enumerate(_lines(text), 1):
        body = line.strip()
        if not body or body.startswith(("!", "[")) or _is_hash_comment(body):
            continue
        try:
            result.rules.append(_parse_rule(body))
        except _Skip as exc:
            result.reject(no, line, str(exc))
        except NameError_ as exc:
            result.reject(no, line, str(exc))
    return result


def _is_hash_comment(body: str) -> bool:
    return body.startswith("#") and not body.startswith(_COSMETIC)


def _parse_rule(body: str) -> Rule:
    if any(marker in body for marker in _COSMETIC):
        raise _Skip("cosmetic rule (browser only)")
    allow = body.startswith("@@")
    if allow:
        body = body[2:]
    pattern, _, options = body.partition("$")
    if pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 1:
        raise _Skip("regular-expression rule not supported")
    action, rewrite = _options(options, allow) if options else (_base(allow), ())
    scope, name = _pattern(pattern)
    return Rule(name, scope, action, rewrite)


def _base(allow: bool) -> ListAction:
    return ListAction.ALLOW if allow else ListAction.BLOCK


def _pattern(pattern: str) -> tuple[Scope, str]:
    scope = Scope.SUBTREE
    if pattern.startswith("||"):
        pattern = pattern[2:]
    elif pattern.startswith("|"):
        scope, pattern = Scope.EXACT, pattern[1:]
    for tail in ("^|", "^", "|"):
        if pattern.endswith(tail):
            pattern = pattern[: -len(tail)]
            break
    if pattern.startswith("*.") and scope is Scope.SUBTREE:
        scope, pattern = Scope.WILDCARD, pattern[2:]
    if not pattern or "*" in pattern or "^" in pattern or _NOT_A_NAME & set(pattern):
        raise _Skip("URL or pattern rule not expressible as a DNS name")
    return scope, normalise(pattern)


def _options(options: str, allow: bool) -> tuple[ListAction, tuple[tuple[str, str], ...]]:
    action: ListAction = _base(allow)
    rewrite: tuple[tuple[str, str], ...] = ()
    for option in options.split(","):
        key, _, value = option.strip().partition("=")
        if key == "important":
            continue
        if key == "badfilter":
            raise _Skip("$badfilter rule (disables another rule) not supported")
        if key in _DNS_UNSUPPORTED:
            raise _Skip(f"DNS modifier ${key} not supported")
        if key != "dnsrewrite":
            raise _Skip(f"modifier ${key} cannot apply to DNS")
        if allow:
            raise _Skip("@@ exception with $dnsrewrite not supported")
        action, rewrite = _dnsrewrite(value)
    return action, rewrite


def _dnsrewrite(value: str) -> tuple[ListAction, tuple[tuple[str, str], ...]]:
    """Map ``$dnsrewrite`` (full ``RCODE;TYPE;VALUE`` or short form) onto an action."""
    parts = value.split(";")
    if len(parts) == 1:
        short = parts[0].strip()
        if short.upper() == "NXDOMAIN":
            return ListAction.BLOCK, ()
        if is_ip_address(short):
            return ListAction.REWRITE, (("AAAA" if ":" in short else "A", short),)
        return ListAction.REWRITE, (("CNAME", normalise(short) + "."),)
    if len(parts) != 3:
        raise _Skip(f"malformed $dnsrewrite value {value!r}")
    rcode, rtype, data = (p.strip() for p in parts)
    if rcode.upper() == "NXDOMAIN":
        return ListAction.BLOCK, ()
    if rcode.upper() != "NOERROR" or rtype.upper() not in ("A", "AAAA", "CNAME"):
        raise _Skip(f"$dnsrewrite {value!r} not supported (only NOERROR A/AAAA/CNAME)")
    if rtype.upper() == "CNAME":
        return ListAction.REWRITE, (("CNAME", normalise(data) + "."),)
    if not is_ip_address(data):
        raise _Skip(f"$dnsrewrite {rtype} value {data!r} is not an address")
    return ListAction.REWRITE, ((rtype.upper(), data),)
