"""What the caller may see and act on, shared by the API and the portal: their projects'
slices and projects (staff: all), and one slice or project checked against an action.
A slice or project the caller may not see is answered exactly as one that does not exist
(404, the same words), so walking ids or names learns nothing."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from federica.aaa.models import Project
from federica.aaa.policy import Action, allowed_projects, can_see
from federica.errors import NotFound, shown
from federica.slices import service
from federica.slices.models import Slice
from federica.web.auth import authorize, note, require


def visible_slices() -> Select[Slice]:
    """Newest first: the caller's projects' slices and the ones they booked."""
    query = select(Slice).order_by(Slice.id.desc())
    who = require()
    mine = allowed_projects(who)
    if mine is not None:
        query = query.where(or_(Slice.project.in_(mine), Slice.owner_id == who.user_id))
    return query


def visible_projects() -> Select[Project]:
    query = select(Project).order_by(Project.name)
    mine = allowed_projects(require())
    if mine is not None:
        query = query.where(Project.name.in_(mine))
    return query


def slice_for(s: Session, ref: str, action: Action) -> Slice:
    """The slice (by id, or the newest of that name the caller may see), if the caller
    may take `action` on it (noted for the audit log)."""
    who = require()
    if (ref.isascii() and ref.isdigit()) or "\x00" in ref:
        sl = service.get(s, ref)
    else:
        found = s.scalars(visible_slices().where(Slice.name == ref).limit(1)).first()
        sl = found if found is not None else service.get(s, ref)
    note(slice_id=sl.id, project=sl.project)
    if not can_see(who, sl.project, sl.owner_id):
        raise NotFound(f"no slice {shown(ref)}")
    authorize(action, project=sl.project, owner_id=sl.owner_id)
    return sl


def project_for(name: str, action: Action) -> None:
    """Checks `action` on project `name`: 404 if the caller may not know it exists (its
    existence is checked where it is loaded, with the same words)."""
    note(project=name)
    if not can_see(require(), name):
        raise NotFound(f"no project {shown(name)}")
    authorize(action, project=name)
