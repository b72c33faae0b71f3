"""Settings: every field has an embedded default and a FEDERICA_<FIELD> override.

Secrets never have a default outside demo mode.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "FEDERICA_"


# A scrape token is a password Prometheus sends: long enough not to be guessed.
MIN_METRICS_TOKEN = 32
MAX_TRUSTED_PROXIES = 5


class SettingsError(ValueError):
    """A FEDERICA_* variable could not be parsed."""


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    # Empty means: SQLite file data_dir/federica.db.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    # The peer API's mutual-TLS listener (on `host`); 0: off. See docs/federation.md.
    federation_port: int = 0
    # The GENI AM API v3 listener (XML-RPC over mutual TLS, on `host`); 0: off. The GENI
    # authorities it trusts and their local projects: a YAML file (see docs/geni.md).
    geni_port: int = 0
    geni_authorities_file: Path | None = None
    # An Allocate not provisioned within this many minutes is released.
    geni_allocation_minutes: int = 10
    # The GENI monitoring datastore's TLS listener (on `host`); 0: off. Collectors present
    # a client certificate chaining to a CA in `gmoc_trust_roots` (PEM) or a token; its
    # public URL (selfRef of every object; empty: https://<host>:<gmoc_port>). See
    # docs/gmoc.md.
    gmoc_port: int = 0
    gmoc_trust_roots: Path | None = None
    gmoc_url: str = ""
    # The peer API behind a TLS-terminating proxy (nginx): plain HTTP on this Unix socket,
    # the client certificate taken from the proxy's X-Client-Cert header. Its directory
    # must be closed to other users (docs/operator-guide.md, "Behind nginx"). Empty: off.
    federation_proxy_socket: Path | None = None
    log_level: str = "INFO"
    demo: bool = False
    # SQLite: how long a writer waits for the lock before failing (ms).
    sqlite_busy_timeout_ms: int = 30_000
    # Largest request body the API accepts (bytes).
    max_request_bytes: int = 1_000_000
    # Emulated facility: namespace-name prefix (one emulator per prefix) and SNMP community.
    emulator_prefix: str = "fed"
    emulator_community: str = "federica"
    # NETCONF: credential sets by name (YAML file; see docs/operator-guide.md), timeouts.
    netconf_credentials_file: Path | None = None
    netconf_rpc_timeout_s: int = 10
    netconf_confirm_timeout_s: int = 30
    # Emergency stop: how long isolation waits for a device before cutting its slices
    # off around it (their V-node links, a neighbour's port), in seconds.
    estop_device_wait_s: float = 1.5
    # Slices: the longest window one booking may have.
    max_slice_days: int = 30
    # How far ahead bookings and find-slot may look.
    booking_horizon_days: int = 365
    # A warn-before-end event fires this long before a slice ends.
    warn_before_end_min: int = 60
    # Worker: how often it looks for due events; how long a claim lasts before another
    # worker may take the event over (a worker that died). The worker running an event
    # renews its claim every third of this, so it bounds the takeover, not the work.
    worker_poll_s: float = 1.0
    worker_lease_s: int = 60
    # An event whose handler raises is tried this many times in all, waiting between
    # attempts (doubling from the first wait, up to the longest); then it is given up.
    worker_max_attempts: int = 5
    worker_retry_first_s: float = 10.0
    worker_retry_longest_s: float = 300.0
    # Duties that must run once among several workers (and the monitor's polling) run in
    # the process holding the role's lock (PostgreSQL advisory lock; see leader.py): it
    # renews every third of the lease; when it dies a follower takes over within a lease.
    leader_lease_s: float = 15.0
    # The leading worker rolls up and prunes the monitoring data this often (s).
    rollup_every_s: float = 300.0
    # The leading worker reconciles the devices and V-nodes with the database this often
    # (s; also when it becomes leader); something unknown in the controller's range is
    # removed only once it has been seen for the grace period (s), so a change in flight
    # is never torn down. 0 turns the periodic reconciliation off.
    reconcile_every_s: float = 60.0
    reconcile_grace_s: float = 300.0
    # Federation, duties of the leading worker: ask each peer for its alarms this often,
    # and retry the emergency stops not yet told to a peer this often (s).
    peer_alarms_every_s: float = 30.0
    # Booking across facilities: the peers hold their parts this long (s) for this
    # facility's commit; a hold never committed is freed by the peer when it runs out
    # (at its next peer call, and by its leading worker every guest_holds_every_s).
    federation_hold_s: int = 120
    guest_holds_every_s: float = 5.0
    estop_relay_every_s: float = 5.0
    # libvirt compute driver (real facilities): URI per V-node ({host} is its name),
    # domain type, storage pool of the images, how interfaces reach the VLANs.
    libvirt_uri: str = "qemu+ssh://root@{host}/system"
    libvirt_domain_type: str = "kvm"
    libvirt_pool: str = "default"
    libvirt_networking: str = "ovs"  # ovs | bridge
    libvirt_bridge: str = "br-uplink"  # ovs: the uplink trunk's bridge; bridge: "br{vlan}"

    # Monitoring (`federica monitor`): every device's SNMP agent is polled this often (s);
    # one request waits this long (s) and is retried this many times; at most this many
    # devices at once; a device that stops answering is tried again after 1, 2, 4 … up to
    # this many intervals. SNMP credential sets (YAML; see docs/operator-guide.md).
    monitor_interval_s: float = 30.0
    snmp_timeout_s: float = 2.0
    snmp_retries: int = 1
    snmp_concurrency: int = 200
    snmp_max_backoff_intervals: int = 10
    # The SNMP library the poller reads with: "pysnmp" (pure Python), or "gufo" (gufo-snmp,
    # Rust: ~40x less CPU per interface, bench B5) for facilities of thousands of interfaces.
    snmp_backend: str = "pysnmp"
    snmp_credentials_file: Path | None = None
    # How long rates are kept: raw (one per poll), 5-minute and hourly averages (hours).
    monitor_raw_hours: int = 24
    monitor_5min_hours: int = 30 * 24
    monitor_1h_hours: int = 365 * 24
    # A bearer token for Prometheus alone: it may read /metrics and the http_sd target
    # list, nothing else (empty: off; then an operator's API token reads them).
    metrics_token: str = ""
    # Alarms: a device whose agent failed this many polls in a row is unreachable.
    alarm_unreachable_polls: int = 3
    # Rate alarms on inventory ports and links: raised when every poll over the last
    # alarm_rate_window_s seconds was over the threshold (Prometheus' `for:`), cleared at
    # the first poll under it. Utilisation in % of the link's capacity (a port on no
    # link: its speed), errors and discards per second (in + out).
    alarm_rate_window_s: float = 300.0
    alarm_utilisation_percent: float = 90.0
    alarm_error_rate_per_s: float = 1.0
    alarm_discard_rate_per_s: float = 10.0
    # Projects' alarm webhooks, sent by the monitor's loop after each round: one POST waits
    # this long (s); a failed one is tried again after 1, 2, 4 … times the first wait, at
    # most this many attempts in all; a round spends at most a third of its interval on
    # them. Receivers on loopback, private or link-local addresses are refused unless
    # allowed (an in-house receiver; tests).
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 5
    webhook_retry_first_s: float = 30.0
    webhook_private_addresses: bool = False

    # AAA. Signing key of the browser session (the OIDC login's state); empty: a random key
    # kept in data_dir/secret_key (0600), shared by every process on this data directory.
    secret_key: str = ""
    # API tokens: lifetime when none is asked for, and the longest allowed (days).
    token_default_days: int = 30
    token_max_days: int = 365
    # The portal's browser sessions: a signed-in browser holds a session token this long.
    portal_session_hours: int = 12
    # Send the portal's cookies only over HTTPS: auto (unless the portal is reached on a
    # loopback address), true, or false (plain HTTP on another address: testing only).
    portal_secure_cookies: str = "auto"
    # Password logins: failures allowed per username and per client address in the window.
    login_window_min: int = 15
    login_max_failures: int = 5
    login_max_failures_per_address: int = 30
    # How many proxies (nginx, a load balancer) stand in front of the API and portal, each
    # appending the address it was reached from to X-Forwarded-For: the client's address is
    # then the one the outermost trusted proxy saw. 0 (no proxy): the header is ignored, as
    # any client can send it. Behind the nginx example: 1. Per-address login limits and
    # the audit log's addresses depend on it.
    trusted_proxies: int = 0
    # OpenID Connect login (eduTEAMS, Keycloak, …); empty issuer: off. The client secret
    # comes from FEDERICA_OIDC_CLIENT_SECRET or a file, never from a default.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_client_secret_file: Path | None = None
    oidc_scopes: str = "openid profile email"
    # The claim that names the user, and (optional) the claim listing their projects
    # (e.g. "groups"; values that name an existing project make them a member).
    oidc_username_claim: str = "preferred_username"
    oidc_projects_claim: str = ""
    # The callback URL registered at the provider; empty: derived from the request.
    oidc_redirect_url: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.federation_hold_s <= 600:
            raise SettingsError(
                "FEDERICA_FEDERATION_HOLD_S: 1 to 600 seconds (a peer holds at most 10 min)"
            )
        # Anchored once, where the settings are read: the paths end up in files and argv of
        # other processes (sshd re-executes itself for every connection; daemons chdir),
        # which would read a relative path against another directory.
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, absolute(value))
        mode = str(self.portal_secure_cookies).strip().lower()
        spelled = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false"}
        mode = spelled.get(mode, mode)
        if mode not in {"auto", "true", "false"}:
            raise SettingsError(
                f"{ENV_PREFIX}PORTAL_SECURE_COOKIES: auto, true or false, "
                f"not {self.portal_secure_cookies!r}"
            )
        object.__setattr__(self, "portal_secure_cookies", mode)
        if not 0 <= self.trusted_proxies <= MAX_TRUSTED_PROXIES:
            raise SettingsError(
                f"{ENV_PREFIX}TRUSTED_PROXIES: the number of proxies in front, "
                f"0 to {MAX_TRUSTED_PROXIES}, not {self.trusted_proxies}"
            )
        for name in ("reconcile_every_s", "reconcile_grace_s", "worker_lease_s"):
            if getattr(self, name) < 0:
                raise SettingsError(
                    f"{ENV_PREFIX}{name.upper()}: must not be negative, got {getattr(self, name)}"
                )
        if self.worker_lease_s == 0:
            raise SettingsError(f"{ENV_PREFIX}WORKER_LEASE_S: must be at least 1 (seconds)")
        if self.metrics_token and len(self.metrics_token) < MIN_METRICS_TOKEN:
            raise SettingsError(
                f"{ENV_PREFIX}METRICS_TOKEN: at least {MIN_METRICS_TOKEN} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'federica.db').resolve()}"

    @property
    def emulator_dir(self) -> Path:
        return self.data_dir / "emulator" / self.emulator_prefix

    @property
    def gateway_dir(self) -> Path:
        """The slices' login gateways (their sshd files) of this controller."""
        return self.data_dir / "gateways"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then FEDERICA_* variables, then explicit overrides."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _parse(field.name, field.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_PATH_FIELDS = (
    "data_dir",
    "netconf_credentials_file",
    "oidc_client_secret_file",
    "geni_authorities_file",
    "gmoc_trust_roots",
    "federation_proxy_socket",
)


def absolute(path: Path | str) -> Path:
    """`path` against the current directory, without resolving symlinks."""
    return Path(os.path.abspath(path))


def _parse(name: str, type_name: Any, raw: str) -> Any:
    var = ENV_PREFIX + name.upper()
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{var}: expected a boolean (true/false), got {raw!r}")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{var}: expected an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{var}: expected a number, got {raw!r}") from None
    if kind in {"Path", "Path | None"}:
        return Path(raw) if raw else None
    return raw
