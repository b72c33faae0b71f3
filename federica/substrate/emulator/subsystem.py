"""sshd's `netconf` subsystem for the emulated devices: relays one SSH session to netconfd.

It replaces yuma123's netconf-subsystem, which forwards bytes as they come. netconfd (2.13)
loses a message that reaches it in the same read() as the client's <hello>: it sets the
trailing bytes aside until the hello is handled, and the code meant to come back to them
never runs (agt_ncxserver_run clears `scb` in the loop just before it checks for them), so
they wait for the next bytes on that session. Those never come: the client is waiting for
the reply. A client sends its first RPC right after its hello; when netconfd is scheduled
late (a busy CPU), both are in the socket when it reads, and that RPC never gets an answer.

So this relay forwards the bytes up to and including each of the first two end-of-message
markers (its own ncx-connect, then the client's hello) and holds back what follows until
netconfd has read everything before it (SIOCOUTQ: nothing unread left in the socket).
netconfd handles each message it read before it reads again, so the RPC always arrives in
a read of its own. After the hello it is a plain relay.

Both directions are buffered and non-blocking: netconfd writes to its sessions with
blocking writes, so a client that stops reading must not stop netconfd (and with it every
other session). A client that leaves more than MAX_PENDING bytes unread is disconnected.

Standard library only, run by path with `python -I -S` (a process per SSH session starts in
~10 ms): `subsystem.py SOCKET_PATH`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import struct
import sys
import termios
import time

EOM = b"]]>]]>"  # NETCONF 1.0 end of message (RFC 6242 §4.3): ncx-connect and <hello> use it
# yuma123's internal greeting on its Unix socket (agt_connect.c checks `magic`).
NCX_URN = "http://netconfcentral.org/ns/yuma-ncx"
NCX_MAGIC = "x56o8937ab17eg922z34rwhobskdbyswfehkpsqq3i55a0an960ccw24a4ek864aOpal1t2p"
CHUNK = 65536
MAX_PENDING = 32 * 1024 * 1024
# netconfd reads within a millisecond when it is running; a stopped one is not polled hot.
BARRIER_POLL_S = (0.0005, 0.05)


def ncx_connect(user: str, address: str, port: str) -> bytes:
    """The message netconfd expects first on a new Unix-socket connection."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ncx-connect xmlns="{NCX_URN}" version="1" '
        f'user="{user}" address="{address}" magic="{NCX_MAGIC}" transport="ssh" '
        f'port="{port}" />\n'
    ).encode() + EOM


def unread(sock: socket.socket) -> int:
    """Bytes sent on `sock` that the peer has not read yet (Linux SIOCOUTQ)."""
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


class Splitter:
    """Cuts a byte stream after its first `count` end-of-message markers."""

    def __init__(self, count: int) -> None:
        self.left = count
        self._tail = b""  # the end of what was scanned: a marker may span two reads

    def split(self, data: bytes) -> tuple[bytes, bytes]:
        """(up to and including the next marker, the rest); (data, b"") without one."""
        if self.left == 0:
            return data, b""
        seen = self._tail + data
        at = seen.find(EOM)
        if at < 0:
            self._tail = seen[-(len(EOM) - 1) :]
            return data, b""
        cut = at + len(EOM) - len(self._tail)
        self.left -= 1
        self._tail = b""
        return data[:cut], data[cut:]


# What a client is given to take netconfd's last words once netconfd has closed.
DRAIN_S = 5.0


def relay(sock: socket.socket, stdin: int, stdout: int) -> None:
    held = bytearray()  # from the client, not yet released to netconfd
    to_server = bytearray()  # released: goes out as fast as netconfd reads
    to_client = bytearray()
    barrier = True  # the ncx-connect just sent must be read before anything else goes
    splitter = Splitter(1)  # the client's hello: its marker is the next barrier
    client_open = True
    poll_s = BARRIER_POLL_S[0]
    sock.setblocking(False)
    os.set_blocking(stdout, False)

    def release() -> bool:
        """Move held bytes on, up to the hello's marker; True if a barrier starts there."""
        left = splitter.left
        now, later = splitter.split(bytes(held))
        to_server.extend(now)
        held[:] = later
        return splitter.left < left

    while True:
        if barrier and not to_server and unread(sock) == 0:
            barrier = release()
            poll_s = BARRIER_POLL_S[0]
        if not client_open and not to_server:
            # The client left (what it left held back has no one to answer to): netconfd
            # sees the socket close and ends the session.
            return
        rlist = [sock.fileno()]
        if client_open and len(held) + len(to_server) < MAX_PENDING:
            rlist.append(stdin)
        wlist = ([sock.fileno()] if to_server else []) + ([stdout] if to_client else [])
        timeout = None
        if barrier and not to_server:
            timeout, poll_s = poll_s, min(poll_s * 2, BARRIER_POLL_S[1])
        readable, writable, _ = select.select(rlist, wlist, [], timeout)
        if stdin in readable:
            data = os.read(stdin, CHUNK)
            if not data:
                client_open = False
            held.extend(data)
            if not barrier:
                barrier = release()
        if sock.fileno() in readable:
            try:
                got: bytes | None = sock.recv(CHUNK)
            except BlockingIOError:
                got = None
            if got == b"":
                _drain(stdout, to_client)
                return
            if got:
                to_client.extend(got)
                if len(to_client) > MAX_PENDING:
                    return  # the client stopped reading: drop its session
        if sock.fileno() in writable:
            with contextlib.suppress(BlockingIOError):
                del to_server[: sock.send(to_server)]
        if stdout in writable:
            with contextlib.suppress(BlockingIOError):
                del to_client[: os.write(stdout, to_client)]


def _drain(fd: int, data: bytearray) -> None:
    """Hand the client what netconfd said before it closed (e.g. a close-session reply),
    for as long as the client keeps reading: one that stopped, or left with its pipe
    still open, must not keep this process forever."""
    deadline = time.monotonic() + DRAIN_S
    while data:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        _, writable, _ = select.select([], [fd], [], left)
        if not writable:
            return
        try:
            del data[: os.write(fd, data)]
        except BlockingIOError:
            continue
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            return


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} NETCONFD_SOCKET", file=sys.stderr)
        return 2
    conn = os.environ.get("SSH_CONNECTION", "").split()
    if len(conn) != 4:
        print("SSH_CONNECTION is not set: run me as sshd's subsystem", file=sys.stderr)
        return 2
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "root"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(argv[1])
        except OSError as exc:
            print(f"cannot reach netconfd at {argv[1]}: {exc}", file=sys.stderr)
            return 1
        sock.sendall(ncx_connect(user, conn[0], conn[3]))
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            relay(sock, sys.stdin.fileno(), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
