"""Service settings: defaults, then a TOML file, then ``LIVEREC_*`` environment variables.

Each layer overrides the one before; an unknown key in any layer is an error, so a misspelt
setting never silently does nothing. Engine settings live in an ``[engine]`` table (see
:class:`liverec.core.settings.Settings`), A/B variants in ``[[variants]]`` tables.

>>> s = load_settings(env={"LIVEREC_PORT": "9000", "LIVEREC_STORE": "memory://"})
>>> (s.port, s.store, s.host)
(9000, 'memory://', '127.0.0.1')
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from liverec.core.errors import InvalidInputError
from liverec.core.settings import Settings
from liverec.engine import check_settings
from liverec.experiments import Experiment
from liverec.generation.stage import GenerationSettings
from liverec.service.privacy import Pseudonymizer

ENV_PREFIX = "LIVEREC_"
MiB = 1024 * 1024


@dataclass(frozen=True)
class ServiceSettings:
    """How ``liverec serve`` behaves.

    Parameters
    ----------
    store
        Event/item store URL (``sqlite:///path.db`` or ``memory://``).
    host, port
        Where to listen. Any address other than loopback needs API keys.
    keys_file
        A SQLite file of API keys (hashes only) to use instead of the store's own: by default
        ``<db>.keys.db`` beside a sqlite store, in memory for ``memory://``.
    require_keys
        Demand an API key on every resource route even on loopback. Keys are always demanded
        once any key exists.
    user_id_secret
        When set, user ids are stored as keyed HMAC pseudonyms. A string of at least 16 bytes;
        anything else (a TOML number, a short text) refuses to start.
    max_body_bytes, max_batch
        A request body above ``max_body_bytes`` gets 413; a batch above ``max_batch`` items or
        events gets 422.
    max_inflight
        Requests served at once; one more gets 503 at once rather than waiting in a queue.
    max_pending_events
        Events waiting for their group commit; beyond it ``POST /events`` gets 503.
    commit_timeout
        Seconds a request waits for its commit before answering 503 (the batch may still be
        stored; a retry is idempotent).
    retrain_interval
        Seconds between scheduled background retrainings; None: only ``POST /admin/train``.
    experiment_salt, variants
        A/B variants: ``[{name, share, weights, diversity}]``; none means one ``default``.
    feedback_file
        A SQLite file for served requests and their feedback instead of the store's own: by
        default ``<db>.feedback.db`` beside a sqlite store, in memory for ``memory://``.
    engine
        Engine settings (``encoder``, ``event_weights``, half-lives, ...).
    max_queue_ms
        A request that waited longer than this for the event loop or a ranking thread is answered
        503 with ``Retry-After`` at once: under a burst, late answers are worth less than quick
        refusals a client can retry (served by ``liverec serve``; in-process clients have no wait).
    sync_interval
        Seconds between checks for what another process changed in the store: a ``liverec
        forget`` run beside the service reaches its live states and served models within this.
    max_backlog
        Requests read but not yet started (queued for the event loop) beyond which the next is
        answered 503 with ``Retry-After`` straight from the HTTP protocol, skipping the app: under a
        burst, refusals stay cheap and quick (served by ``liverec serve``).
    header_timeout, body_timeout
        Seconds a connection may take to send its request head (then it is closed with 408), and
        to send each part of its body (then 408): idle half-requests must not hold the service.
    allowed_hosts
        Host names (and browser origins) the service answers to. Default: on loopback, the
        loopback names only (a web page cannot reach the keyless service through DNS rebinding);
        elsewhere, any (keys protect it) unless names are given.
    tls_cert, tls_key
        PEM certificate chain and private key: serve HTTPS. Off loopback the service refuses to
        start without them unless ``behind_proxy`` says TLS ends at a proxy in front of it.
    generation
        The language-model stage (``[generation]``: ``llm``, a ``.gguf`` path or an OpenAI-compatible
        server's URL, ``model``, ``api_key_env``, ``timeout``, ``explain_budget_ms``, ...; see
        :class:`liverec.generation.GenerationSettings`). Off when ``llm`` is not set.
    reports_dir
        Where ``liverec evaluate --out`` wrote its reports: the operator view shows the newest
        (``GET /reports/latest``).
    session_hours
        How long a browser stays signed in after exchanging a key for a session cookie
        (``POST /session``, used by the page at ``/``).
    behind_proxy, trusted_proxies
        TLS terminates upstream; the ``X-Forwarded-For``/``-Proto`` headers of the addresses in
        ``trusted_proxies`` (default 127.0.0.1) are believed, nobody else's.
    """

    store: str = "sqlite:///liverec.db"
    host: str = "127.0.0.1"
    port: int = 8000
    keys_file: str | None = None
    require_keys: bool = False
    user_id_secret: str | None = None
    max_body_bytes: int = 32 * MiB
    max_batch: int = 10_000
    max_inflight: int = 256
    max_pending_events: int = 200_000
    commit_timeout: float = 30.0
    retrain_interval: float | None = None
    experiment_salt: str = "liverec"
    variants: Sequence[Mapping[str, Any]] = ()
    feedback_file: str | None = None
    engine: Mapping[str, Any] = field(default_factory=dict)
    max_queue_ms: float = 10.0
    max_backlog: int = 32
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    sync_interval: float = 1.0
    allowed_hosts: Sequence[str] = ()
    tls_cert: str | None = None
    tls_key: str | None = None
    behind_proxy: bool = False
    trusted_proxies: Sequence[str] = ("127.0.0.1",)
    session_hours: float = 12.0
    reports_dir: str | None = None
    generation: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("port", "max_body_bytes", "max_batch", "max_inflight", "max_pending_events",
                     "max_backlog"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}", field=name, value=value)
        if self.port > 65535:
            raise InvalidInputError(f"port {self.port} is not a TCP port", field="port", value=self.port)
        for name in ("commit_timeout", "retrain_interval", "max_queue_ms", "header_timeout", "body_timeout",
                     "sync_interval", "session_hours"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
                raise InvalidInputError(f"{name} must be a positive number, got {value!r}", field=name, value=value)
        if not isinstance(self.variants, Sequence) or isinstance(self.variants, str):
            raise InvalidInputError("variants must be a list of tables", field="variants", value=self.variants)
        for name in ("allowed_hosts", "trusted_proxies"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence) or not all(
                    isinstance(v, str) and v.strip() for v in value):
                raise InvalidInputError(f"{name} must be a list of names, got {value!r}", field=name, value=value)
        self._check_tls()
        check_settings(Settings.from_mapping(self.engine))  # now, so a bad [engine] key stops the start
        _ = self.generation_settings  # likewise a bad [generation] key
        # Likewise variants and the secret: found only in the app's startup they would crash the
        # server with a traceback instead of a one-line refusal naming the setting.
        if not isinstance(self.experiment_salt, str) or not self.experiment_salt:
            # Not a secret (the experiment's figures show it), but a TOML number here would only
            # fail once variants are configured.
            raise InvalidInputError(f"experiment_salt must be a non-empty string, not {self.experiment_salt!r}",
                                    field="experiment_salt", value=self.experiment_salt)
        if self.variants:
            Experiment.from_config(self.variants, salt=self.experiment_salt)
        Pseudonymizer(self.user_id_secret)  # a string of 16 bytes or more; never echoed

    def _check_tls(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise InvalidInputError("tls_cert and tls_key go together: give both or neither",
                                    field="tls_key" if self.tls_cert else "tls_cert")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise InvalidInputError(f"{name} {path!r} is not a readable file", field=name, value=path)

    @property
    def hosts(self) -> frozenset[str] | None:
        """The Host names requests must carry, lower-case without port; None: any."""
        if self.allowed_hosts:
            return frozenset(h.lower() for h in self.allowed_hosts)
        if self.loopback:
            return frozenset({"localhost", "127.0.0.1", "[::1]", self.host.lower()})
        return None

    @property
    def engine_settings(self) -> Settings:
        return Settings.from_mapping(self.engine)

    @property
    def generation_settings(self) -> GenerationSettings:
        return GenerationSettings.from_mapping(self.generation)

    @property
    def loopback(self) -> bool:
        """Whether ``host`` only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name may resolve anywhere


def _coerce(name: str, text: str) -> Any:
    """An environment variable's text as the type its setting has."""
    default = next(f for f in fields(ServiceSettings) if f.name == name).default
    kind = type(default) if default is not None else None
    try:
        if name in ("variants", "engine", "generation"):
            import json

            return json.loads(text)
        if kind is bool:
            if text.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes")
        if kind is int:
            return int(text)
        if kind is float or name == "retrain_interval":
            return None if text == "" else float(text)
        if kind is tuple:  # a list setting: comma-separated names
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise InvalidInputError(f"{ENV_PREFIX}{name.upper()}={text!r} is not valid: {exc}", field=name) from exc
    return text or None if name in ("keys_file", "user_id_secret", "feedback_file", "tls_cert", "tls_key") else text


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServiceSettings:
    """Defaults ← TOML file at ``path`` ← ``LIVEREC_*`` variables in ``env`` ← ``overrides``.

    ``overrides`` are command-line options; None values in it mean "not given".
    """
    known = {f.name for f in fields(ServiceSettings)}
    values: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                values.update(tomllib.load(fh))
        except OSError as exc:
            raise InvalidInputError(f"cannot read settings file {str(path)!r}: {exc.strerror}", field="config") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"settings file {str(path)!r} is not valid TOML: {exc}", field="config") from exc
        unknown = set(values) - known
        if unknown:
            raise InvalidInputError(
                f"unknown setting(s) in {str(path)!r}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}",
                field=sorted(unknown)[0],
            )
    env = os.environ if env is None else env
    for key, text in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in known:
            raise InvalidInputError(
                f"unknown environment setting {key}; known: "
                + ", ".join(ENV_PREFIX + k.upper() for k in sorted(known)),
                field=key,
            )
        values[name] = _coerce(name, text)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ServiceSettings(**values)
    except TypeError as exc:  # a TOML value of the wrong shape for a dataclass field
        raise InvalidInputError(f"invalid settings: {exc}", field="config") from exc
