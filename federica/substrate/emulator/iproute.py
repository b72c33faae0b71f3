"""Thin, typed wrappers over iproute2's `ip` and `tc` (namespaces, links, qdiscs).

Batches go through `ip -batch -` / `tc -batch -` so one data-plane change is one or two
process starts, not dozens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

IP = shutil.which("ip") or "/usr/sbin/ip"
TC = shutil.which("tc") or "/usr/sbin/tc"


class IprouteError(RuntimeError):
    pass


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        cmd = " ".join(argv)
        detail = (proc.stderr or proc.stdout).strip()
        raise IprouteError(f"{cmd}: {detail}" + (f"\n--- batch ---\n{stdin}" if stdin else ""))
    return proc.stdout


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    return run([IP, *(["-n", ns] if ns else []), *args], check=check)


def ip_batch(lines: Sequence[str], ns: str | None = None) -> None:
    if lines:
        run([IP, *(["-n", ns] if ns else []), "-batch", "-"], stdin="\n".join(lines) + "\n")


def tc_batch(lines: Sequence[str], ns: str | None = None) -> None:
    if lines:
        run([TC, *(["-n", ns] if ns else []), "-batch", "-"], stdin="\n".join(lines) + "\n")


def links(ns: str | None = None) -> list[dict[str, Any]]:
    out = ip("-j", "-d", "link", "show", ns=ns)
    data: list[dict[str, Any]] = json.loads(out) if out.strip() else []
    return data


def qdiscs(ns: str | None = None) -> list[dict[str, Any]]:
    out = run([TC, *(["-n", ns] if ns else []), "-j", "qdisc", "show"])
    data: list[dict[str, Any]] = json.loads(out) if out.strip() else []
    return data


def namespaces() -> list[str]:
    out = ip("-j", "netns", "list")
    return [n["name"] for n in json.loads(out)] if out.strip() else []


def add_namespace(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)


def delete_namespace(name: str) -> None:
    ip("netns", "delete", name, check=False)


def root_link_names() -> set[str]:
    return {link["ifname"] for link in links()}
