"""Cilium's vocabulary, shared by both backends: what Cilium's Go code spells out.

One place for names and formats, so the embedded datapath's output and the live parsers
cannot drift apart:

- ``identities``: reserved security identities and their names;
- ``conntrack``: CT entry flag names;
- ``reasons``: drop reasons, observation points, trace states, metric directions, source
  file ids (the C side's ``#define``\\ s in ``bpf/lib/common.h`` are checked against these
  by a test);
- ``text``: `cilium-dbg` / `cilium monitor` / `hubble observe` text and JSON, from labkit's
  tables.
"""

from __future__ import annotations

from .conntrack import CT_FLAG_NAMES, ct_flag_names
from .identities import RESERVED_BY_NAME, RESERVED_IDENTITIES, identity_name

__all__ = ["CT_FLAG_NAMES", "RESERVED_BY_NAME", "RESERVED_IDENTITIES", "ct_flag_names", "identity_name"]
