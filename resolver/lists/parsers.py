"""Pure parsers for hosts, plain-domain and wildcard lists, and the format dispatch table.

Every parser takes the file's text and returns a ParseResult; nothing here touches files.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from resolver.lists.adblock import parse_adblock
from resolver.lists.match import ListAction
from resolver.lists.names import MAX_NAME, NameError_, is_ip_address, normalise
from resolver.lists.names import lines as _lines
from resolver.lists.rpz import parse_rpz
from resolver.lists.rules import FORMATS, ParseResult, Rule, Scope

BLOCK = ListAction.BLOCK
ALLOW = ListAction.ALLOW

# Names every stock hosts file maps to loopback; they are not blocklist entries.
_HOSTS_LOCAL = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)


def _strip_comment(line: str) -> str:
    cut = line.find("#")
    return (line if cut < 0 else line[:cut]).strip()


# Already-normal names (lowercase LDH, two or more labels, alphabetic TLD) skip normalise():
# nearly every line of a real list takes this path, which makes compiling a million fast.
_PLAIN = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+[a-z][a-z0-9-]{0,62}")


def _name_rule(result: ParseResult, no: int, line: str, raw: str, action: ListAction) -> None:
    """Append a SUBTREE rule for ``raw`` (or WILDCARD for ``*.name``), rejecting bad names."""
    if len(raw) <= MAX_NAME and _PLAIN.fullmatch(raw) is not None:
        result.rules.append(Rule(raw, Scope.SUBTREE, action))
        return
    scope = Scope.SUBTREE
    if raw.startswith("*."):
        scope, raw = Scope.WILDCARD, raw[2:]
    try:
        name = normalise(raw)
    except NameError_ as exc:
        result.reject(no, line, str(exc))
        return
    if "." not in name:
        # A bare single label here is nearly always a typo and would block a whole TLD.
        result.reject(no, line, f"single-label name {name!r} (would block a whole TLD)")
        return
    result.rules.append(Rule(name, scope, action))


def parse_hosts(text: str) -> ParseResult:
    """Parse a hosts file: ``0.0.0.0 name [name...] # comment``; every name blocks its subtree."""
    result = ParseResult()
    for no, line in enumerate(_lines(text), 1):
        body = _strip_comment(line)
        if not body:
            continue
        fields = body.split()
        if not is_ip_address(fields[0]):
            result.reject(no, line, f"first field {fields[0]!r} is not an IP address")
            continue
        if len(fields) == 1:
            result.reject(no, line, "address without a name")
            continue
        for raw in fields[1:]:
            if raw.lower() in _HOSTS_LOCAL:
                result.reject(no, line, f"loopback entry {raw!r} skipped")
                continue
            _name_rule(result, no, line, raw, BLOCK)
    return result


def parse_domains(text: str, action: ListAction = BLOCK) -> ParseResult:
    """Parse one name per line (``#`` comments); ``*.name`` lines cover subdomains only."""
    result = ParseResult()
    for no, line in enumerate(_lines(text), 1):
        body = _strip_comment(line)
        if not body:
            continue
        if len(body.split()) != 1:
            result.reject(no, line, "more than one field on a domain-list line")
            continue
        _name_rule(result, no, line, body, action)
    return result


def parse_wildcards(text: str, action: ListAction = BLOCK) -> ParseResult:
    """Parse a wildcard list: ``*.name`` (subdomains only) or ``name`` (name and subdomains)."""
    return parse_domains(text, action)


def parse_allow(text: str) -> ParseResult:
    """Parse a plain-domain allow list: every entry is an exception for its subtree."""
    return parse_domains(text, ALLOW)


PARSERS: dict[str, Callable[[str], ParseResult]] = {
    "hosts": parse_hosts,
    "domains": parse_domains,
    "wildcard": parse_wildcards,
    "allow": parse_allow,
    "adblock": parse_adblock,
    "rpz": parse_rpz,
}


def parse(text: str, fmt: str) -> ParseResult:
    """Parse ``text`` in list format ``fmt`` (see FORMATS, or ``auto``: detected from the
    text, for a site's own lists); raise KeyError for unknown ones."""
    return PARSERS[detect_format(text) if fmt == "auto" else fmt](text)


assert tuple(PARSERS) == FORMATS, "rules.FORMATS names every parser, in order"


def detect_format(text: str) -> str:
    """Guess a list's format from its first rule lines (for ``lachan lists check``)."""
    votes = {"rpz": 0, "adblock": 0, "hosts": 0, "domains": 0}
    seen = 0
    for line in _lines(text):
        body = line.strip()
        if not body or body.startswith(("#", "!", ";")):
            continue
        fields = body.split()
        if body.startswith(("$TTL", "$ORIGIN")) or " SOA " in f" {body} " or "CNAME" in fields:
            votes["rpz"] += 1
        elif body.startswith(("||", "@@", "|", "[Adblock")) or "^" in body:
            votes["adblock"] += 1
        elif is_ip_address(fields[0]):
            votes["hosts"] += 1
        else:
            votes["domains"] += 1
        seen += 1
        if seen >= 200:
            break
    return max(votes, key=lambda k: votes[k])
