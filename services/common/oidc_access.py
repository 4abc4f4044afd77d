"""What the provider's groups mean here: departments served, departments run, global roles.

``BB_OIDC_GROUP_MAP`` maps a group (or role) name as the provider sends it in the groups
claim to one grant: ``staff:<slug>`` (on that department's roster), ``admin:<slug>`` (its
department admin), ``dpo`` or ``operator``. Groups the map does not name grant nothing;
a sign-in that maps to nothing is refused. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GLOBAL_ROLES = ("dpo", "operator")
DEPARTMENT_ROLES = ("staff", "admin")
STAFF_ID = re.compile(r"^[\w.@+-]{1,64}$")  # shown to colleagues, stored in events


class MappingError(ValueError):
    pass


@dataclass(frozen=True)
class Access:
    """Global roles, and each department's roster role (``staff`` or ``admin``)."""

    roles: frozenset[str] = frozenset()
    departments: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.roles and not self.departments


def check_mapping(mapping: Mapping[str, str]) -> None:
    for group, grant in mapping.items():
        kind, _, slug = grant.partition(":")
        if grant in GLOBAL_ROLES or (kind in DEPARTMENT_ROLES and slug):
            continue
        raise MappingError(f"BB_OIDC_GROUP_MAP: {group!r} -> {grant!r} is not "
                           "staff:<slug>, admin:<slug>, dpo or operator")


def access_of(groups: Iterable[str], mapping: Mapping[str, str]) -> Access:
    roles: set[str] = set()
    departments: dict[str, str] = {}
    for group in groups:
        grant = mapping.get(group)
        if grant is None:
            continue
        if grant in GLOBAL_ROLES:
            roles.add(grant)
            continue
        kind, _, slug = grant.partition(":")
        if kind == "admin" or departments.get(slug) != "admin":
            departments[slug] = kind
    if departments:
        roles.add("staff")
    return Access(frozenset(roles), departments)


def groups_in(claims: Mapping[str, Any], claim: str) -> list[str]:
    """The groups claim: a list of names (Keycloak's group mapper with full paths sends
    ``/parent/child``; both that and the last part are looked up), or dotted into a
    nested claim such as ``realm_access.roles``."""
    value: Any = claims
    for part in claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if not isinstance(value, list):
        return []
    names = [item for item in value if isinstance(item, str) and len(item) <= 256]
    return [*names, *(name.rsplit("/", 1)[-1] for name in names if "/" in name)]


def staff_id_of(claims: Mapping[str, Any], claim: str) -> str:
    value = claims.get(claim)
    if not isinstance(value, str) or not STAFF_ID.match(value):
        raise MappingError(f"the claim {claim!r} is missing or not a usable staff id")
    return value
