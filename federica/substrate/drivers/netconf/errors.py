"""Turn ncclient/paramiko failures into the driver contract's domain errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ncclient.operations import RPCError
from ncclient.operations.errors import TimeoutExpiredError
from ncclient.transport import TransportError
from ncclient.transport.errors import SessionCloseError

from federica.substrate.drivers.base import (
    CommitFailed,
    ConfigIssue,
    ConfigRejected,
    DriverError,
    HostKeyRejected,
    LockDenied,
    Unreachable,
)
from federica.substrate.drivers.netconf.session import ConnectTimeout, HostKeyMismatch

_PREFIX = re.compile(r"/?(?:nc:rpc/nc:edit-config/nc:config/)?")


def issues(exc: RPCError) -> list[ConfigIssue]:
    errs = getattr(exc, "errors", None) or [exc]
    out = []
    for e in errs:
        path = _PREFIX.sub("/", (getattr(e, "path", None) or "").strip(), count=1)
        message = (e.message or e.tag or str(e)).strip()
        out.append(ConfigIssue(path if path != "/" else "", message))
    return out


@contextmanager
def translated(
    device: str, action: str, on_rpc_error: Callable[[str, RPCError], DriverError] | None = None
) -> Iterator[None]:
    """Run one RPC; any failure leaves as a DriverError naming the device and the action."""
    try:
        yield
    except DriverError:
        raise
    except RPCError as exc:
        if on_rpc_error is not None:
            raise on_rpc_error(device, exc) from None
        raise CommitFailed(device, f"{action} failed: {'; '.join(map(str, issues(exc)))}") from None
    except HostKeyMismatch as exc:
        raise HostKeyRejected(device, str(exc)) from None
    except TimeoutExpiredError:
        raise Unreachable(device, f"{action}: no answer in time") from None
    except ConnectTimeout as exc:
        raise Unreachable(device, f"{action}: {exc}") from None
    except (SessionCloseError, TransportError, OSError, EOFError) as exc:
        raise Unreachable(
            device, f"{action}: session lost ({exc.__class__.__name__}: {exc})"
        ) from None


LOCK_TAGS = {"lock-denied", "in-use"}


def _tags(exc: RPCError) -> set[str]:
    return {str(getattr(e, "tag", "") or "") for e in (getattr(exc, "errors", None) or [exc])}


def rejected(device: str, exc: RPCError) -> DriverError:
    if _tags(exc) & LOCK_TAGS:
        return lock_denied(device, exc)
    return ConfigRejected(device, issues(exc))


def lock_denied(device: str, exc: RPCError) -> DriverError:
    found = issues(exc)
    info = getattr(exc, "info", "") or ""
    holder = re.search(r"<session-id>(\d+)</session-id>", info)
    who = f" (held by session {holder.group(1)})" if holder else ""
    return LockDenied(
        device, f"candidate is locked by another session{who}: " + "; ".join(map(str, found))
    )
