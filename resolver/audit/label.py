"""The one shape of every label a ledger record carries, and of a category name anywhere.

Its own module so that what only needs the shape (temporary allows, the collector's site
names) does not import the record's signatures (cryptography) at every `lachan serve` start.
"""

from __future__ import annotations

import re

# Every label in a record (action, category, profile, engine, site, instance) must match this.
# It has no dot and no colon, so neither a domain name nor an IPv4/IPv6 client address can ever
# be written into a ledger, whatever a caller passes: privacy enforced by the format itself.
LABEL = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
