"""The AM API's Shutdown is the facility's emergency stop: the slice's segments disabled
on every device, its nodes frozen, its gateway closed, its state kept for forensics,
audited under the GENI user's URN; lifted only by the facility's operators."""

from __future__ import annotations

from federica.aaa.policy import Principal
from federica.db import transaction
from federica.estop import service as estop
from federica.estop.toolkit import Context, make_toolkit
from federica.geni.aggregate import Shutdown
from federica.slices.models import Slice


def estop_shutdown(context: Context) -> Shutdown:
    toolkit = make_toolkit(context, seen_by="geni")  # its NETCONF sessions stay open

    def stop(slice_id: int, *, reason: str, actor: Principal) -> None:
        with transaction(context.read_sessions) as s:
            sl = s.get(Slice, slice_id)
            stoppable = sl is not None and sl.status in estop.STOPPABLE
        if not stoppable:
            return  # shut down already, or over: Shutdown is idempotent and answers true
        estop.stop(context, toolkit, estop.Selector(slice=str(slice_id)), actor, reason)

    return stop
