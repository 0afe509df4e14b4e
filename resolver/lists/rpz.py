"""Pure parser for DNS Response Policy Zone files (QNAME triggers only).

A trigger ``name`` covers that name exactly and ``*.name`` covers names below it, as in
BIND and Unbound. Actions: ``CNAME .`` NXDOMAIN (BLOCK), ``CNAME *.`` NODATA,
``CNAME rpz-passthru.`` ALLOW, ``CNAME rpz-drop.`` DROP, any other CNAME/A/AAAA/TXT data
is local data (REWRITE). rpz-ip, rpz-nsdname, rpz-nsip and rpz-client-ip triggers are
reported as unsupported. ``$ORIGIN`` and ``$TTL`` are honoured; owners are relative to the
origin (the zone apex when the file has none).

One deliberate difference from BIND and Unbound (pinned by the Unbound differential test):
there, an existing trigger such as ``ok.bad.example`` hides an enclosing ``*.bad.example``
for names below it (RFC 4592 closest encloser); lachan keeps applying the enclosing wildcard,
because its index merges many sources and a list entry must never remove protection.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from resolver.lists.match import ListAction
from resolver.lists.names import NameError_, normalise
from resolver.lists.names import lines as _lines
from resolver.lists.rules import ParseResult, Rule, Scope
from resolver.localdata import rdata as local_rdata

_CLASSES = frozenset({"IN", "CH", "HS", "CS"})
_IGNORED_APEX = frozenset({"SOA", "NS"})
_LOCAL_DATA = frozenset({"A", "AAAA", "TXT", "CNAME"})
_UNSUPPORTED_TRIGGERS = ("rpz-ip", "rpz-nsdname", "rpz-nsip", "rpz-client-ip")
_CNAME_ACTIONS = {
    ".": ListAction.BLOCK,
    "*.": ListAction.NODATA,
    "rpz-passthru.": ListAction.ALLOW,
    "rpz-drop.": ListAction.DROP,
}


@dataclass(slots=True)
class _Owner:
    """Records collected for one trigger while reading (RPZ allows several per owner)."""

    line_no: int
    text: str
    action: ListAction | None = None
    rewrite: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _State:
    origin: str = ""
    owner: str | None = None
    owners: dict[tuple[str, Scope], _Owner] = field(default_factory=dict)


def parse_rpz(text: str) -> ParseResult:
    """Parse an RPZ master file into Rules; every unusable record line is reported."""
    result = ParseResult()
    state = _State()
    for no, line, body in _logical_lines(text):
        try:
            _line(state, result, no, line, body)
        except (_Unsupported, NameError_) as exc:
            result.reject(no, line, str(exc))
    for (name, scope), owner in state.owners.items():
        action = owner.action or ListAction.REWRITE
        result.rules.append(Rule(name, scope, action, tuple(owner.rewrite)))
    return result


class _Unsupported(Exception):
    """A record lachan does not apply; the message says why."""


def _strip_comment(line: str) -> str:
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            return line[:i]
    return line


def _logical_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """Yield (first line number, original text, comment-free body) joining ``( ... )``."""
    pending: list[str] = []
    start = 0
    first = ""
    for no, line in enumerate(_lines(text), 1):
        body = _strip_comment(line)
        if pending:
            pending.append(body)
            if ")" in body:
                yield start, first, " ".join(pending).replace("(", " ").replace(")", " ")
                pending = []
            continue
        if "(" in body and ")" not in body:
            pending, start, first = [body], no, line
            continue
        if body.strip():
            yield no, line, body.replace("(", " ").replace(")", " ")


def _line(state: _State, result: ParseResult, no: int, line: str, body: str) -> None:
    if body.startswith("$"):
        _directive(state, body.split())
        return
    fields = body.split()
    if body[0] in " \t":
        owner = state.owner
    else:
        owner, fields = fields[0], fields[1:]
        state.owner = owner
    if owner is None:
        raise _Unsupported("record without an owner name")
    rtype, rdata = _type_and_data(fields)
    trigger = _relative(owner, state.origin)
    if trigger == "":
        if rtype in _IGNORED_APEX:
            return
        raise _Unsupported(f"{rtype} record at the zone apex")
    _record(state, no, line, trigger, rtype, rdata)


def _directive(state: _State, fields: list[str]) -> None:
    name = fields[0].upper()
    if name == "$ORIGIN" and len(fields) > 1:
        state.origin = "" if fields[1] == "." else normalise(fields[1])
    elif name != "$TTL":
        raise _Unsupported(f"directive {fields[0]} not supported")


def _type_and_data(fields: list[str]) -> tuple[str, list[str]]:
    """Skip the optional TTL and class (either order) and return (TYPE, rdata fields)."""
    i = 0
    while i < len(fields) and i < 2 and (fields[i][:1].isdigit() or fields[i].upper() in _CLASSES):
        i += 1
    if i >= len(fields):
        raise _Unsupported("record without a type")
    return fields[i].upper(), fields[i + 1 :]


def _relative(owner: str, origin: str) -> str:
    """Owner name relative to the origin, lowercase, '' for the apex."""
    if owner == "@":
        return ""
    owner = owner.lower()
    if not owner.endswith("."):
        return owner
    absolute = owner[:-1]
    if not origin:
        return absolute
    if absolute == origin:
        return ""
    if absolute.endswith("." + origin):
        return absolute[: -len(origin) - 1]
    raise _Unsupported(f"owner {owner!r} is outside the zone {origin}.")


def _record(state: _State, no: int, line: str, trigger: str, rtype: str, rdata: list[str]) -> None:
    last = trigger.rsplit(".", 1)[-1]
    if last in _UNSUPPORTED_TRIGGERS:
        raise _Unsupported(f"trigger type {last} not supported")
    scope = Scope.EXACT
    if trigger.startswith("*."):
        scope, trigger = Scope.WILDCARD, trigger[2:]
    name = normalise(trigger)
    if rtype not in _LOCAL_DATA:
        raise _Unsupported(f"{rtype} record not supported as a policy action")
    if not rdata:
        raise _Unsupported(f"{rtype} record without data")
    action = _CNAME_ACTIONS.get(rdata[0].lower()) if rtype == "CNAME" else None
    if action is None and rtype == "CNAME" and rdata[0].lower().startswith(("rpz-", "*.")):
        raise _Unsupported(f"CNAME action {rdata[0]} not supported")
    owner = state.owners.get((name, scope))
    if owner is not None and owner.action is not None:
        raise _Unsupported(f"second record for {trigger!r} after a policy action")
    if owner is not None and action is not None:
        raise _Unsupported(f"policy action for {trigger!r} mixed with local data")
    if action is None and rtype != "CNAME":
        _check_local_data(rtype, rdata)
    if owner is None:
        owner = state.owners[(name, scope)] = _Owner(no, line)
    if action is not None:
        owner.action = action
    else:
        owner.rewrite.append((rtype, " ".join(rdata)))


def _check_local_data(rtype: str, rdata: list[str]) -> None:
    """Reject A/AAAA/TXT data the server could not answer with."""
    text = " ".join(rdata)
    try:
        local_rdata(rtype, text)
    except ValueError:
        raise _Unsupported(f"{rtype} data {text!r} is not valid") from None
