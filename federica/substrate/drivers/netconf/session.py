"""NETCONF-over-SSH sessions that send at once and verify host keys by fingerprint.

ncclient's session thread polls its send queue every 100 ms (`TICK`), so every RPC waits
up to 100 ms before it leaves. `FastSSHSession` replaces that loop with one that sleeps in
select() on both the SSH channel and a wake-up socket written by send(): no busy loop, no
polling delay. Host keys are checked against the inventory's SHA256 fingerprint before
authenticating, so no credential is offered to an impostor.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import selectors
import socket
from dataclasses import dataclass
from typing import Any

from ncclient import manager
from ncclient.manager import make_device_handler
from ncclient.transport import parser as nc_parser
from ncclient.transport.errors import SessionCloseError, SSHUnknownHostError
from ncclient.transport.session import NetconfBase
from ncclient.transport.ssh import SSHSession

log = logging.getLogger(__name__)


class _QuietLogger:
    """ncclient's per-message debug logging costs ~12 µs a call even when disabled; the
    session uses this instead unless the ncclient logger is set to DEBUG."""

    def debug(self, *args: object, **kwargs: object) -> None:
        pass

    info = debug

    def __getattr__(self, name: str) -> Any:
        return getattr(logging.getLogger("ncclient.transport.session"), name)


BUF_SIZE = 65536
MSG_DELIM = b"]]>]]>"  # NETCONF 1.0 end of message (RFC 6242 §4.3)
END_DELIM = b"\n##\n"  # NETCONF 1.1 end of chunks (RFC 6242 §4.2)
# The loop wakes at least this often to notice a closed transport (not to poll the queue).
IDLE_WAKE_S = 30.0


def sha256_fingerprint(key_blob: bytes) -> str:
    """OpenSSH's `SHA256:…` form of a public key blob (as `ssh-keygen -l` prints)."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class HostKeyMismatch(SSHUnknownHostError):  # type: ignore[misc]
    def __init__(self, host: str, port: int, expected: str | None, got: str) -> None:
        self.host, self.port, self.expected, self.got = host, port, expected, got
        if not expected:
            msg = (
                f"{host}:{port} presented host key {got} but no fingerprint is recorded "
                "in the inventory; refusing to connect"
            )
        else:
            msg = (
                f"{host}:{port} presented host key {got}, the inventory expects {expected}; "
                "refusing to connect (possible impostor, or the device was re-keyed)"
            )
        Exception.__init__(self, msg)

    def __str__(self) -> str:
        return str(self.args[0])


class FastSSHSession(SSHSession):  # type: ignore[misc]
    """SSHSession whose I/O thread is woken by send() instead of polling every 100 ms."""

    def __init__(self, device_handler: Any) -> None:
        super().__init__(device_handler)
        if not logging.getLogger("ncclient").isEnabledFor(logging.DEBUG):
            self.logger = _QuietLogger()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._expected_fingerprint: str | None = None
        self.server_fingerprint: str | None = None

    # -- host keys -------------------------------------------------------------------
    def load_known_hosts(self, filename: str | None = None) -> None:
        """Never consult ~/.ssh/known_hosts: the inventory is the only source of truth."""

    def _check_host_key(self, host: str, _md5_fingerprint: str) -> bool:
        key = self._transport.get_remote_server_key()
        self.server_fingerprint = sha256_fingerprint(key.asbytes())
        return bool(self._expected_fingerprint) and (
            self.server_fingerprint == self._expected_fingerprint
        )

    def connect_verified(
        self, host: str, port: int, expected_fingerprint: str | None, **kwargs: Any
    ) -> None:
        self._expected_fingerprint = expected_fingerprint
        try:
            self.connect(
                host=host,
                port=port,
                hostkey_verify=True,
                unknown_host_cb=self._check_host_key,
                **kwargs,
            )
        except SSHUnknownHostError:
            raise HostKeyMismatch(
                host, port, expected_fingerprint, self.server_fingerprint or "?"
            ) from None

    # -- I/O loop --------------------------------------------------------------------
    def send(self, message: str) -> None:
        super().send(message)
        # BlockingIOError: a wake-up is already pending; OSError: the session is closing.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _frame(self, message: str) -> bytes:
        data = message.encode()
        if self._base == NetconfBase.BASE_11:
            return b"\n#%d\n%s%s" % (len(data), data, END_DELIM)
        return data + MSG_DELIM

    def _flush_queue(self) -> None:
        while not self._q.empty():
            data = self._frame(self._q.get())
            while data:
                n = self._channel.send(data)
                if n <= 0:
                    raise SessionCloseError(self._buffer.getvalue(), data)
                data = data[n:]

    def _feed(self, data: bytes) -> None:
        parser: Any = getattr(self, "parser")  # noqa: B009  (ncclient sets it untyped)
        try:
            parser.parse(data)
        except nc_parser.SAXFilterXMLNotFoundError:
            # ncclient's SAX filter fell back: continue with its DOM parser, as ncclient does.
            self.parser = nc_parser.DefaultXMLParser(self)
            self.parser.parse(data)

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._channel, selectors.EVENT_READ, "net")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while True:
                self._flush_queue()
                for key, _ in sel.select(timeout=IDLE_WAKE_S):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            self._wake_r.recv(BUF_SIZE)
                        continue
                    data = self._channel.recv(BUF_SIZE)
                    if data:
                        self._feed(data)
                    elif self._closing.is_set():
                        return
                    else:
                        raise SessionCloseError(self._buffer.getvalue())
                if self._closing.is_set() or self._channel.closed:
                    return
        except Exception as exc:  # ncclient's contract: errors go to the listeners
            log.debug("NETCONF session loop ended: %r", exc)
            self._dispatch_error(exc)
            self.close()
        finally:
            sel.close()
            self._wake_r.close()
            self._wake_w.close()


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    username: str
    key_filename: str | None
    host_key_fingerprint: str | None
    password: str | None = None
    timeout: float = 10.0

    def __repr__(self) -> str:  # never print the password
        return f"Endpoint({self.username}@{self.host}:{self.port})"


def connect(ep: Endpoint, *, device: str = "default", keepalive_s: int = 15) -> manager.Manager:
    """An ncclient Manager on a FastSSHSession, host key verified against `ep`."""
    handler = make_device_handler({"name": device})
    session = FastSSHSession(handler)
    session.connect_verified(
        ep.host,
        ep.port,
        ep.host_key_fingerprint,
        username=ep.username,
        password=ep.password,
        key_filename=ep.key_filename,
        allow_agent=False,
        look_for_keys=False,
        timeout=ep.timeout,
    )
    session.transport.set_keepalive(keepalive_s)
    # NETCONF is small request/reply messages: do not let Nagle hold them back.
    session.transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    mgr = manager.Manager(session, handler, timeout=ep.timeout)
    return mgr
