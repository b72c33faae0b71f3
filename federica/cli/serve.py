"""federica serve"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from federica.app import create_app
from federica.cli import CliState, cli, pass_state
from federica.errors import FieldError, InvalidInput

# gunicorn kills a replica whose request runs longer than this (s); a booking takes
# milliseconds, but a listing of a large calendar on a busy machine may take seconds.
REPLICA_TIMEOUT_S = 60
# On SIGTERM replicas finish what they are doing for up to this long (s).
GRACEFUL_S = 20


def serve_app(state: CliState, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM (waitress returns then)."""
    import waitress

    app = create_app(state.settings, context=state.context)
    click.echo(f"federica portal on http://{host}:{port}/  (Ctrl-C stops)")
    click.echo(f"federica API on http://{host}:{port}/api/v1/substrate")
    waitress.serve(app, host=host, port=port, threads=8, ident="federica")


def serve_replicas(state: CliState, host: str, port: int, workers: int, threads: int) -> None:
    """gunicorn: `workers` pre-forked processes, each with its own application context
    (engine, calendar index), made after the fork: nothing in them is shared but the
    database. Serves until SIGTERM or Ctrl-C, then lets running requests finish."""
    from gunicorn.app.base import BaseApplication

    settings = state.settings
    master_engine = state.context.engine  # the schema check above; not for the replicas

    class Replicas(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
                "workers": workers,
                # gthread keeps connections alive (a client's next request skips the
                # TCP set-up) and lets a replica wait on the database for one request
                # while it serves another.
                "worker_class": "gthread" if threads > 1 else "sync",
                "threads": threads,
                "timeout": REPLICA_TIMEOUT_S,
                "graceful_timeout": GRACEFUL_S,
                "proc_name": "federica",
                "post_fork": _post_fork,
                # Behind the proxy: it is the only one that connects (loopback).
                "forwarded_allow_ips": "127.0.0.1,::1",
                # gunicorn 23+'s management socket sits at one path per user: a second
                # server (another facility on this host) would take it over. Unused.
                "control_socket_disable": True,
            }
            for key, value in options.items():
                if key in self.cfg.settings:  # control_socket_disable: gunicorn 23+
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    def _post_fork(_server: Any, _worker: Any) -> None:
        # The master's pooled connections are its own: a replica must never close them
        # (that would end the master's session under it).
        master_engine.dispose(close=False)

    click.echo(
        f"federica on http://{host}:{port}/ : {workers} gunicorn replica(s) x {threads} "
        "thread(s) (Ctrl-C or SIGTERM stops)"
    )
    Replicas().run()


@contextmanager
def serving(server: Any, name: str, banner: str) -> Iterator[None]:
    """A cheroot server (the peer API, the AM API, the datastore) in a thread of this
    process while the body runs; stopped after it."""
    server.prepare()
    thread = threading.Thread(target=server.serve, name=name, daemon=True)
    thread.start()
    click.echo(banner)
    try:
        yield
    finally:
        server.stop()
        thread.join(timeout=10)


@contextmanager
def peer_proxy_listener(state: CliState, socket_path: Path | None) -> Iterator[None]:
    """The peer API for a TLS-terminating proxy on a Unix socket while the body runs."""
    if socket_path is None:
        yield
        return
    from federica.app import federation_proxy_server

    server = federation_proxy_server(state.context, socket_path)
    banner = f"federation peer API for the proxy on unix:{socket_path}"
    with serving(server, "federation-proxied", banner):
        yield


@cli.command()
@click.option("--host", help="Listen address (FEDERICA_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Listen port (FEDERICA_PORT, default 8080).")
@click.option(
    "--federation-port",
    type=int,
    help="Also serve the peer API over mutual TLS here (FEDERICA_FEDERATION_PORT; 0: off).",
)
@click.option(
    "--geni-port",
    type=int,
    help="Also serve the GENI AM API v3 over mutual TLS here (FEDERICA_GENI_PORT; 0: off).",
)
@click.option(
    "--gmoc-port",
    type=int,
    help="Also serve the GENI monitoring datastore over TLS here (FEDERICA_GMOC_PORT; 0: off).",
)
@click.option(
    "--workers",
    type=int,
    help="Serve with gunicorn and this many replica processes (default: one waitress "
    "process). Use PostgreSQL with more than one.",
)
@click.option(
    "--threads",
    type=int,
    default=4,
    show_default=True,
    help="Threads per gunicorn replica (with --workers).",
)
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    federation_port: int | None,
    geni_port: int | None,
    gmoc_port: int | None,
    workers: int | None,
    threads: int,
) -> None:
    """Serve the REST API and portal (waitress, or gunicorn replicas with --workers) and,
    if asked, the peer API (cheroot, mutual TLS; or for a proxy on a Unix socket), the
    GENI AM API (cheroot, mutual TLS) and the GENI monitoring datastore (cheroot, TLS
    with client certificates)."""
    from federica.cli.federation import peer_listener

    problems = []
    if workers is not None and not 1 <= workers <= 64:
        problems.append(FieldError("--workers", "must be between 1 and 64"))
    if not 1 <= threads <= 64:
        problems.append(FieldError("--threads", "must be between 1 and 64"))
    if problems:
        raise InvalidInput(problems)
    host = host or state.settings.host
    port = port or state.settings.port
    if federation_port is None:
        federation_port = state.settings.federation_port
    if geni_port is None:
        geni_port = state.settings.geni_port
    if gmoc_port is None:
        gmoc_port = state.settings.gmoc_port
    with (
        peer_listener(state, host, federation_port),
        peer_proxy_listener(state, state.settings.federation_proxy_socket),
        geni_listener(state, host, geni_port),
        gmoc_listener(state, host, gmoc_port),
    ):
        if workers is None:
            serve_app(state, host, port)
        else:
            serve_replicas(state, host, port, workers, threads)


@contextmanager
def geni_listener(state: CliState, host: str, port: int) -> Iterator[None]:
    """Serves the GENI AM API on `port` (0: not at all) while the body runs."""
    if not port:
        yield
        return
    from federica.app import geni_server

    banner = f"GENI AM API v3 on https://{host}:{port}/ (XML-RPC, mutual TLS)"
    with serving(geni_server(state.context, host, port), "geni-listener", banner):
        yield


@contextmanager
def gmoc_listener(state: CliState, host: str, port: int) -> Iterator[None]:
    """Serves the datastore on `port` (0: not at all) while the body runs."""
    if not port:
        yield
        return
    from federica.app import gmoc_server

    banner = f"GENI monitoring datastore on https://{host}:{port}/info/opsconfig/ (TLS)"
    with serving(gmoc_server(state.context, host, port), "gmoc-listener", banner):
        yield
