"""What booking knows of a department: learnt from the rooms service's events, never asked.

An ``Office`` is booking's own small record of one department (its profile and who is on
its staff), built by the policy from ``DepartmentRegistered``, ``DepartmentUpdated``,
``StaffAssigned`` and ``StaffUnassigned``. Those events may arrive out of order (a
redelivery after later ones), so each aspect keeps the department version it was set
from, and an older event of the same aspect changes nothing.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

OFFICE_NAMESPACE = UUID("5b8e1f3a-7c2d-4a6e-9f0b-3d1c8e5a7b42")


class Office(Aggregate):
    """A department as booking sees it. Create it with ``Office(department_id, ...)``."""

    @staticmethod
    def create_id(department_id: UUID) -> UUID:
        return uuid5(OFFICE_NAMESPACE, str(department_id))

    @event("Registered")
    def __init__(self, department_id: UUID, profile: dict[str, Any], upstream_version: int) -> None:
        self.department_id = department_id
        self.profile = profile
        self.profile_version = upstream_version
        self.roster: dict[str, str] = {}  # staff id -> "staff" | "admin"
        self.roster_versions: dict[str, int] = {}

    def update_profile(self, profile: dict[str, Any], upstream_version: int) -> None:
        if upstream_version > self.profile_version:
            self._updated(profile=profile, upstream_version=upstream_version)

    @event("Updated")
    def _updated(self, profile: dict[str, Any], upstream_version: int) -> None:
        self.profile = profile
        self.profile_version = upstream_version

    def assign_staff(self, staff_id: str, role: str, upstream_version: int) -> None:
        if upstream_version > self.roster_versions.get(staff_id, 0):
            self._staff_assigned(staff_id=staff_id, role=role, upstream_version=upstream_version)

    @event("StaffAssigned")
    def _staff_assigned(self, staff_id: str, role: str, upstream_version: int) -> None:
        self.roster[staff_id] = role
        self.roster_versions[staff_id] = upstream_version

    def unassign_staff(self, staff_id: str, upstream_version: int) -> None:
        if upstream_version > self.roster_versions.get(staff_id, 0):
            self._staff_unassigned(staff_id=staff_id, upstream_version=upstream_version)

    @event("StaffUnassigned")
    def _staff_unassigned(self, staff_id: str, upstream_version: int) -> None:
        self.roster.pop(staff_id, None)
        self.roster_versions[staff_id] = upstream_version

    # -- queries ------------------------------------------------------------------------

    @property
    def slug(self) -> str:
        return str(self.profile["slug"])

    @property
    def anonymous(self) -> bool:
        return bool(self.profile.get("anonymous"))

    @property
    def accepts_appointments(self) -> bool:
        return bool(self.profile.get("accepts_appointments"))

    @property
    def languages(self) -> list[str]:
        return list(self.profile.get("languages", []))

    @property
    def topic_ids(self) -> list[str]:
        return [str(t["id"]) for t in self.profile.get("topics", [])]

    def name(self, language: str) -> str:
        return str(self.profile.get(f"name_{language}") or self.profile.get("name_de") or "")

    def serves(self, staff_id: str) -> bool:
        return staff_id in self.roster

    def administers(self, staff_id: str) -> bool:
        return self.roster.get(staff_id) == "admin"
