"""Who reads the datastore, and what they see. Pure: no I/O.

A collector is allowed the whole aggregate or one project's slices, and user objects only
if its registration says so; a researcher (their API token) sees the slices they booked
and their projects' slices; the facility's staff see everything. Everyone who may read at
all sees the facility's shape (aggregate, authority, nodes, interfaces, links); the
traffic of physical interfaces and the nodes' state only those allowed the whole
aggregate, since a physical port carries every project's traffic.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Viewer:
    name: str  # for the audit log: "collector:<name>" or the user's name
    # The projects whose slices it sees; None: every slice.
    projects: frozenset[str] | None
    owner_id: int | None = None  # a researcher sees the slices they booked, too
    users: bool = False

    @property
    def whole_aggregate(self) -> bool:
        return self.projects is None

    def sees_slice(self, project: str | None, owner_id: int | None) -> bool:
        if self.projects is None:
            return True
        if owner_id is not None and owner_id == self.owner_id:
            return True
        return project is not None and project in self.projects
