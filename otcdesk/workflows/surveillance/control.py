"""Actual-control groups (实际控制关系账户组): accounts tied by a shared strong identifier, directly or transitively.

A union-find over normalised `id_number`, `mobile`, `bank_account` and `device_id`: two accounts sharing any one
of them are one group, and groups sharing a member merge. `address` and `ip` are weak: an office building or a
broker's NAT is shared by strangers, so a weak link is recorded as evidence beside a group, never as a link.

Values that cannot identify anyone are skipped (`ControlRules`): too short, placeholders, one repeated character,
or shared by more accounts than a person plausibly controls (a default device id, a firm's switchboard).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from otcdesk.workflows.surveillance.model import STRONG_KEYS, WEAK_KEYS, Account, mask

PLACEHOLDERS = frozenset({"0", "NULL", "NONE", "NA", "N/A", "UNKNOWN", "-", "无", "未知", "空"})


@dataclass(frozen=True)
class ControlRules:
    """What counts as a link.

    - `min_length`: a normalised value shorter than this for its key is no identifier (a typo or a stub);
    - `max_accounts_per_value`: a strong value shared by more accounts is a placeholder or a shared utility (a
      default device id), not control, and is reported nowhere; a weak value (an address, an IP) shared by more
      is dropped from the evidence too;
    - `weights`: how much one shared value of a key says that the accounts have one controller, in [0, 1); the
      group's score combines them (see `ControlGroup.score`).
    """

    min_length: dict = field(default_factory=lambda: {"id_number": 15, "mobile": 11, "bank_account": 10,
                                                      "device_id": 8, "address": 6, "ip": 7})
    max_accounts_per_value: int = 20
    weights: dict = field(default_factory=lambda: {"id_number": 0.9, "bank_account": 0.7, "mobile": 0.6,
                                                   "device_id": 0.5, "address": 0.1, "ip": 0.1})


@dataclass(frozen=True)
class Link:
    """One identifier shared by several accounts: its key, its masked value, the accounts (sorted)."""

    key: str
    value: str  # masked (model.mask): evidence without the personal datum
    accounts: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"key": self.key, "value": self.value, "accounts": list(self.accounts)}


@dataclass(frozen=True)
class ControlGroup:
    """Two or more accounts under one actual controller, as far as shared identifiers show.

    `score` in [0, 1): 1 − Π(1 − w) over the group's strong links and the weak links inside it, with `w` the key's
    weight: one shared ID number gives 0.9, one shared device id 0.5, a device id and a mobile 0.8.
    """

    accounts: tuple[str, ...]
    links: tuple[Link, ...]
    weak_links: tuple[Link, ...]
    score: float


@dataclass(frozen=True)
class ControlResult:
    groups: tuple[ControlGroup, ...]  # sorted by their first account
    group_of: dict  # account_id -> index into groups
    weak_links: tuple[Link, ...]  # every weak link (also those between accounts in no common group)

    def unit(self, account_id: str) -> tuple[str, object]:
        """Who acts as one: ("group", index) for a grouped account, else ("account", account_id)."""
        g = self.group_of.get(account_id)
        return ("account", account_id) if g is None else ("group", g)

    def members(self, account_id: str) -> tuple[str, ...]:
        g = self.group_of.get(account_id)
        return (account_id,) if g is None else self.groups[g].accounts


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra  # the smaller id is the root: deterministic whatever the input order


def _usable(key: str, value: str, rules: ControlRules) -> bool:
    if not value or value in PLACEHOLDERS:
        return False
    if len(value) < rules.min_length.get(key, 1):
        return False
    return len(set(value)) > 1  # 00000000000, XXXXXXXX


def _shared(accounts: Iterable[Account], keys: tuple[str, ...], rules: ControlRules) -> list[tuple[str, str, tuple]]:
    """(key, value, accounts) for every usable value of `keys` that two or more accounts share."""
    holders: dict[tuple[str, str], set[str]] = {}
    for acc in accounts:
        for key in keys:
            value = getattr(acc, key)
            if _usable(key, value, rules):
                holders.setdefault((key, value), set()).add(acc.account_id)
    return sorted((key, value, tuple(sorted(ids))) for (key, value), ids in holders.items()
                  if 2 <= len(ids) <= rules.max_accounts_per_value)


def control_groups(accounts: Iterable[Account], rules: ControlRules = ControlRules()) -> ControlResult:
    accounts = list(accounts)
    strong = _shared(accounts, STRONG_KEYS, rules)
    weak = _shared(accounts, WEAK_KEYS, rules)
    uf = _UnionFind()
    for _key, _value, ids in strong:
        for other in ids[1:]:
            uf.union(ids[0], other)
    linked = {acc for _key, _value, ids in strong for acc in ids}
    members: dict[str, list[str]] = {}
    for acc in linked:
        members.setdefault(uf.find(acc), []).append(acc)
    roots = sorted(members, key=lambda r: min(members[r]))
    root_index = {r: i for i, r in enumerate(roots)}
    strong_by_group: dict[int, list[Link]] = {}
    for key, value, ids in strong:
        strong_by_group.setdefault(root_index[uf.find(ids[0])], []).append(Link(key, mask(key, value), ids))
    group_of = {acc: root_index[uf.find(acc)] for acc in linked}
    weak_links = tuple(Link(key, mask(key, value), ids) for key, value, ids in weak)
    weak_by_group: dict[int, list[Link]] = {}
    for link in weak_links:
        for g in sorted({group_of[a] for a in link.accounts if a in group_of}):
            weak_by_group.setdefault(g, []).append(link)
    groups = []
    for i, root in enumerate(roots):
        links = tuple(strong_by_group.get(i, ()))
        inner_weak = tuple(w for w in weak_by_group.get(i, ()) if sum(group_of.get(a) == i for a in w.accounts) >= 2)
        miss = 1.0
        for link in links + inner_weak:
            miss *= 1.0 - rules.weights.get(link.key, 0.0)
        groups.append(ControlGroup(tuple(sorted(members[root])), links, tuple(weak_by_group.get(i, ())),
                                   round(1.0 - miss, 4)))
    return ControlResult(tuple(groups), group_of, weak_links)
