"""Service settings: defaults ← TOML file ← LIVEREC_* environment ← command-line options, and every
unknown or ill-typed setting refused by name."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from liverec.core.errors import InvalidInputError
from liverec.core.types import EventType
from liverec.experiments import Experiment
from liverec.service.settings import MiB, ServiceSettings, load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "liverec.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_defaults() -> None:
    s = load_settings(env={})
    assert s == ServiceSettings()
    assert (s.store, s.host, s.port) == ("sqlite:///liverec.db", "127.0.0.1", 8000)
    assert (s.keys_file, s.require_keys, s.user_id_secret, s.feedback_file) == (None, False, None, None)
    assert (s.max_body_bytes, s.max_batch, s.max_inflight, s.max_pending_events) == (32 * MiB, 10_000, 256, 200_000)
    assert (s.commit_timeout, s.retrain_interval) == (30.0, None)
    assert (s.experiment_salt, tuple(s.variants), dict(s.engine)) == ("liverec", (), {})
    assert s.loopback


def test_a_toml_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = _toml(tmp_path, """
store = "sqlite:///data/shop.db"
port = 9001
require_keys = true
retrain_interval = 3600
max_body_bytes = 1048576
""")
    s = load_settings(path, env={})
    assert (s.store, s.port, s.require_keys, s.retrain_interval, s.max_body_bytes) == (
        "sqlite:///data/shop.db", 9001, True, 3600, MiB)
    assert s.host == "127.0.0.1"  # not in the file: the default


def test_the_environment_overrides_the_file_and_the_options_override_both(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'store = "sqlite:///file.db"\nport = 9001\nhost = "127.0.0.1"\nmax_batch = 50\n')
    env = {"LIVEREC_PORT": "9002", "LIVEREC_STORE": "sqlite:///env.db", "PATH": "/bin", "LIVERECX": "ignored"}
    s = load_settings(path, env=env)
    assert (s.store, s.port, s.max_batch) == ("sqlite:///env.db", 9002, 50)
    s = load_settings(path, env=env, overrides={"port": 9003, "store": None, "host": "::1"})
    assert (s.store, s.port, s.host, s.max_batch) == ("sqlite:///env.db", 9003, "::1", 50)  # None: not given


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEREC_MAX_INFLIGHT", "12")
    assert load_settings().max_inflight == 12


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("REQUIRE_KEYS", "yes", True),
        ("REQUIRE_KEYS", "0", False),
        ("REQUIRE_KEYS", "TRUE", True),
        ("COMMIT_TIMEOUT", "2.5", 2.5),
        ("RETRAIN_INTERVAL", "60", 60.0),
        ("RETRAIN_INTERVAL", "", None),
        ("KEYS_FILE", "", None),
        ("KEYS_FILE", "/etc/liverec/keys.json", "/etc/liverec/keys.json"),
        ("USER_ID_SECRET", "", None),
        ("MAX_BODY_BYTES", "1024", 1024),
        ("EXPERIMENT_SALT", "spring-test", "spring-test"),
        ("VARIANTS", '[{"name": "a"}, {"name": "b", "diversity": 0.5}]',
         [{"name": "a"}, {"name": "b", "diversity": 0.5}]),
        ("ENGINE", '{"tag_half_life": 3600}', {"tag_half_life": 3600}),
    ],
)
def test_environment_text_is_read_as_the_settings_type(name: str, text: str, value: Any) -> None:
    s = load_settings(env={f"LIVEREC_{name}": text})
    got = getattr(s, name.lower())
    assert got == value and type(got) is type(value)


def test_an_unknown_key_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'port = 9000\nmax_bacth = 5\n')
    with pytest.raises(InvalidInputError, match="unknown setting\\(s\\) in .*: max_bacth; known: ") as info:
        load_settings(path, env={})
    assert info.value.field == "max_bacth"


def test_an_unknown_environment_variable_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="unknown environment setting LIVEREC_FOO; known: ") as info:
        load_settings(env={"LIVEREC_FOO": "1"})
    assert info.value.field == "LIVEREC_FOO"
    assert "LIVEREC_MAX_BATCH" in str(info.value)


@pytest.mark.parametrize(
    ("env", "field", "words"),
    [
        ({"LIVEREC_PORT": "abc"}, "port", "LIVEREC_PORT='abc' is not valid"),
        ({"LIVEREC_PORT": "0"}, "port", "port must be a positive integer, got 0"),
        ({"LIVEREC_PORT": "70000"}, "port", "port 70000 is not a TCP port"),
        ({"LIVEREC_MAX_BATCH": "-5"}, "max_batch", "max_batch must be a positive integer, got -5"),
        ({"LIVEREC_REQUIRE_KEYS": "maybe"}, "require_keys", "LIVEREC_REQUIRE_KEYS='maybe' is not valid"),
        ({"LIVEREC_COMMIT_TIMEOUT": "soon"}, "commit_timeout", "is not valid"),
        ({"LIVEREC_COMMIT_TIMEOUT": "0"}, "commit_timeout", "must be a positive number"),
        ({"LIVEREC_VARIANTS": "[not json"}, "variants", "is not valid"),
    ],
)
def test_a_bad_environment_value_is_refused_by_name(env: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=None) as info:
        load_settings(env=env)
    assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ('port = "abc"', "port", "port must be a positive integer, got 'abc'"),
        ("port = true", "port", "got True"),
        ("max_batch = -1", "max_batch", "max_batch must be a positive integer, got -1"),
        ("max_inflight = 1.5", "max_inflight", "got 1.5"),
        ("retrain_interval = -60", "retrain_interval", "must be a positive number"),
        ('variants = "fast"', "variants", "variants must be a list of tables"),
        ("[variants]\nname = 'a'", "variants", "variants must be a list of tables"),
        ("port = ", "config", "is not valid TOML"),
    ],
)
def test_a_bad_file_value_is_refused_by_name(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_settings(_toml(tmp_path, text + "\n"), env={})
    assert info.value.field == field
    assert words in str(info.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read settings file") as info:
        load_settings(tmp_path / "absent.toml", env={})
    assert info.value.field == "config"


def test_a_bad_option_is_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="port must be a positive integer") as info:
        load_settings(env={}, overrides={"port": -1})
    assert info.value.field == "port"


def test_the_engine_table_becomes_engine_settings(tmp_path: Path) -> None:
    path = _toml(tmp_path, """
[engine]
tag_half_life = 86400.0
recent_length = 20

[engine.event_weights]
click = 2.5
""")
    s = load_settings(path, env={})
    engine = s.engine_settings
    assert (engine.tag_half_life, engine.recent_length) == (86400.0, 20)
    assert engine.event_weights[EventType.CLICK] == 2.5


def test_model_tables_scorer_and_state_store_reach_the_engine_and_are_checked_at_load(tmp_path: Path) -> None:
    path = _toml(tmp_path, """
[engine]
seed = 3
state_store = "memory://"
scorer = { kind = "linear", rounds = 1 }

[engine.models.als]
factors = 16
iterations = 4
""")
    engine = load_settings(path, env={}).engine_settings
    assert dict(engine.models) == {"als": {"factors": 16, "iterations": 4}}
    assert (engine.seed, engine.state_store, dict(engine.scorer)) == (3, "memory://", {"kind": "linear", "rounds": 1})
    for table, field in (("[engine.models.als]\nfactor = 16\n", "models.als.factor"),
                         ("[engine.models.bm25]\nk1 = 1.2\n", "models.bm25"),
                         ("[engine]\nscorer = { kind = 'xgboost' }\n", "scorer.kind"),
                         ("[engine]\nstate_store = 'memcached://x'\n", "state_store")):
        with pytest.raises(InvalidInputError) as info:
            load_settings(_toml(tmp_path, table), env={})
        assert info.value.field == field


def test_an_unknown_engine_key_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown setting\\(s\\): tag_halflife") as info:
        load_settings(_toml(tmp_path, "[engine]\ntag_halflife = 3600\n"), env={})
    assert info.value.field == "tag_halflife"
    with pytest.raises(InvalidInputError) as info:
        load_settings(env={"LIVEREC_ENGINE": '{"encodr": "x"}'})
    assert info.value.field == "encodr"


def test_variants_tables_are_parsed(tmp_path: Path) -> None:
    path = _toml(tmp_path, """
experiment_salt = "2026-q1"

[[variants]]
name = "control"
share = 3

[[variants]]
name = "mmr"
diversity = 0.6
weights = { content = 1.0, trending = 0.5 }
""")
    s = load_settings(path, env={})
    assert [dict(v) for v in s.variants] == [
        {"name": "control", "share": 3},
        {"name": "mmr", "diversity": 0.6, "weights": {"content": 1.0, "trending": 0.5}},
    ]
    experiment = Experiment.from_config(s.variants, salt=s.experiment_salt)
    assert [(v.name, v.share, v.diversity) for v in experiment.variants] == [("control", 0.75, None),
                                                                            ("mmr", 0.25, 0.6)]
    assert dict(experiment.variants[1].weights or {}) == {"content": 1.0, "trending": 0.5}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[[variants]]\nname = 'a'\ndivresity = 0.5", "variants[0].divresity"),
        ("[[variants]]\nname = 'a'\n[[variants]]\nname = 'a'", "variants[1].name"),
        ("[[variants]]\nshare = 1", "variants[0].name"),
        ("[[variants]]\nname = 'a'\nweights = { nope = 1.0 }", "variants[0].weights.nope"),
    ],
)
def test_a_bad_variant_is_refused_when_the_settings_load(tmp_path: Path, text: str, field: str) -> None:
    # Refused with the settings, so `liverec serve` exits with one line instead of failing at startup.
    with pytest.raises(InvalidInputError) as info:
        load_settings(_toml(tmp_path, text + "\n"), env={})
    assert info.value.field == field


def test_a_short_user_id_secret_is_refused_when_the_settings_load() -> None:
    with pytest.raises(InvalidInputError, match="at least 16") as info:
        load_settings(env={"LIVEREC_USER_ID_SECRET": "short"})
    assert info.value.field == "user_id_secret"
    assert "short" not in str(info.value)  # never echo a secret


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.8.0.1", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("my-host.internal", False),
])
def test_loopback(host: str, loopback: bool) -> None:
    assert ServiceSettings(host=host).loopback is loopback


def test_every_setting_can_come_from_the_environment(tmp_path: Path) -> None:
    # A setting the environment could not express would be a silent gap in the documented layering.
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("-")
    key.write_text("-")
    texts = {
        "store": "memory://", "host": "::1", "port": "8080", "keys_file": "k.json", "require_keys": "true",
        "user_id_secret": "s" * 16, "max_body_bytes": "2048", "max_batch": "10", "max_inflight": "4",
        "max_pending_events": "100", "commit_timeout": "5", "retrain_interval": "600", "experiment_salt": "x",
        "variants": '[{"name": "a"}]', "feedback_file": "fb.db", "engine": '{"recent_length": 7}',
        "max_queue_ms": "40", "max_backlog": "16", "header_timeout": "3", "body_timeout": "4",
        "sync_interval": "2", "allowed_hosts": "a.example, b.example",
        "tls_cert": str(cert), "tls_key": str(key), "behind_proxy": "true", "trusted_proxies": "10.0.0.1,10.0.0.2",
        "session_hours": "2", "reports_dir": "reports",
        "generation": '{"llm": "http://127.0.0.1:8080/v1", "timeout": 3}',
    }
    assert set(texts) == {f.name for f in fields(ServiceSettings)}
    s = load_settings(env={f"LIVEREC_{name.upper()}": text for name, text in texts.items()})
    assert s == ServiceSettings(
        store="memory://", host="::1", port=8080, keys_file="k.json", require_keys=True, user_id_secret="s" * 16,
        max_body_bytes=2048, max_batch=10, max_inflight=4, max_pending_events=100, commit_timeout=5.0,
        retrain_interval=600.0, experiment_salt="x", variants=[{"name": "a"}], feedback_file="fb.db",
        engine={"recent_length": 7}, max_queue_ms=40.0, max_backlog=16, header_timeout=3.0, body_timeout=4.0,
        sync_interval=2.0, allowed_hosts=("a.example", "b.example"), tls_cert=str(cert), tls_key=str(key),
        behind_proxy=True, trusted_proxies=("10.0.0.1", "10.0.0.2"), session_hours=2.0, reports_dir="reports",
        generation={"llm": "http://127.0.0.1:8080/v1", "timeout": 3},
    )
