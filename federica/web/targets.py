"""What the caller may see and act on, shared by the API and the portal: their projects'
slices and projects (staff: all), and one slice checked against an action."""

from __future__ import annotations

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from federica.aaa.models import Project
from federica.aaa.policy import Action, allowed_projects
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
    """The slice, if the caller may take `action` on it (noted for the audit log)."""
    sl = service.get(s, ref)
    note(slice_id=sl.id, project=sl.project)
    authorize(action, project=sl.project, owner_id=sl.owner_id)
    return sl
