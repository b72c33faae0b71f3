"""The emulated devices' netconf subsystem relay: what follows the client's <hello> reaches
netconfd only once netconfd has read the hello (netconfd 2.13 would never answer it
otherwise); after that it is a plain relay, both ways."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from federica.substrate.emulator.subsystem import DRAIN_S, EOM, Splitter, ncx_connect, relay, unread

HELLO = b'<?xml version="1.0"?><hello><capabilities/></hello>' + EOM
RPC = b"\n#25\n<rpc><get-config/></rpc>\n##\n"


def test_the_splitter_cuts_after_the_marker_even_across_reads() -> None:
    s = Splitter(1)
    assert s.split(b"<hello/>]]>") == (b"<hello/>]]>", b"")
    assert s.split(b"]]>\n#5\n") == (b"]]>", b"\n#5\n")
    assert s.split(b"more ]]>]]> data") == (b"more ]]>]]> data", b"")  # only the first


class Server:
    """netconfd's end of the Unix socket, reading only when told to (a frozen netconfd)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self) -> bytes:
        """Everything queued now, in one read() as netconfd would."""
        time.sleep(0.2)  # the relay has had its chance to send more
        return self.sock.recv(1 << 20)


@pytest.fixture
def wired() -> Iterator[tuple[Server, int, int]]:
    server_end, relay_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    c_in_r, c_in_w = os.pipe()  # client -> relay (sshd's stdin of the subsystem)
    c_out_r, c_out_w = os.pipe()  # relay -> client
    relay_end.sendall(ncx_connect("root", "127.0.0.1", "830"))
    t = threading.Thread(target=relay, args=(relay_end, c_in_r, c_out_w), daemon=True)
    t.start()
    yield Server(server_end), c_in_w, c_out_r
    os.close(c_in_w)
    server_end.close()
    # The relay ends once both sides are closed, even with netconfd's last words unread
    # by the client (it gives up on them after DRAIN_S; it used to wait forever).
    t.join(DRAIN_S + 10)
    assert not t.is_alive()
    for fd in (c_in_r, c_out_r, c_out_w):
        os.close(fd)
    relay_end.close()


def test_the_first_rpc_never_shares_a_read_with_the_hello(
    wired: tuple[Server, int, int],
) -> None:
    server, client_in, client_out = wired
    # The client's hello and first RPC arrive together while netconfd is not reading.
    os.write(client_in, HELLO + RPC)
    connect = server.read()
    assert connect.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ncx-connect ')
    assert connect.endswith(EOM) and b' magic="' in connect
    assert server.read() == HELLO
    assert server.read() == RPC
    # Replies go straight back; later messages are relayed as they come.
    server.sock.sendall(b"\n#9\n<reply/>\n##\n")
    assert os.read(client_out, 100) == b"\n#9\n<reply/>\n##\n"
    os.write(client_in, RPC + RPC)
    assert server.read() == RPC + RPC


def test_a_client_that_does_not_read_does_not_block_the_server(
    wired: tuple[Server, int, int],
) -> None:
    server, client_in, _client_out = wired
    os.write(client_in, HELLO)
    server.read(), server.read()
    # netconfd's writes would block once the socket is full; the relay keeps taking them.
    server.sock.settimeout(5)
    blob = b"x" * (4 << 20)
    server.sock.sendall(blob)  # far beyond what the pipe to the client holds
    assert unread(server.sock) < len(blob)
