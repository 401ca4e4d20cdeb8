"""Each package's deliberate public surface, pinned; and no package's private names used from outside it.

A change to a package's ``__all__`` is a change to what other packages (and users) may build on:
it should be made here on purpose, not happen by accident. Underscored names (and underscored
modules) are a package's own business: code outside the package, benchmarks included, never
imports or reaches into them (tests of a package may, in tests/<package>/).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

import liverec

ROOT = Path(__file__).resolve().parent.parent

PUBLIC: dict[str, list[str]] = {
    "liverec": [
        "Engine", "Event", "EventType", "InvalidInputError", "Item", "LiveRecError", "NotFoundError",
        "NotTrainedError", "Reason", "Recommendation", "Settings", "__version__",
    ],
    "liverec.core": [
        "ConflictError", "DEFAULT_EVENT_WEIGHTS", "Event", "EventType", "InvalidInputError", "Item", "LiveRecError",
        "NotFoundError", "NotTrainedError", "Reason", "Recommendation", "Settings", "StorageError",
    ],
    "liverec.datasets": [
        "BadRow", "Dataset", "FORMATS", "FixedSplit", "read_dataset",
    ],
    "liverec.datasets.demo": [
        "CATEGORIES", "CATEGORY_IDS", "DemoUser", "DemoWorld", "Drift", "REFERENCE_TIME", "REVIEW_TEMPLATES",
        "build_demo_world", "review_sentiment",
    ],
    "liverec.evaluation": [
        "EvalSystem", "EvaluationResult", "LeaveOneOut", "Options", "PROTOCOLS", "PairedComparison", "ReplayResult",
        "SYSTEMS", "SystemResult", "bootstrap_ci", "build", "evaluate", "leave_one_out", "paired_test",
        "per_user_metrics", "write_report",
    ],
    "liverec.experiments": [
        "Assignment", "Experiment", "Variant", "VariantStats", "Z95", "newcombe_interval", "two_proportion_p_value",
        "variant_stats", "wilson_interval",
    ],
    "liverec.generation": [
        "Breaker", "GenerationError", "GenerationSettings", "GenerationTimeout", "Generator", "Message", "Narrator",
        "Rejected", "Text", "check", "collect", "open_generator",
    ],
    "liverec.models": [
        "ALSRecommender", "ClickThrough", "CoVisitation", "ContentModel", "ExposureModel", "MODELS", "Model",
        "OnlineModel", "Ranked", "ScoredItems",
        "SequenceModel", "TrainingData", "TrendingPopularity", "as_scored", "build_model", "check_model_settings",
        "covisit_counts", "model_class", "register_model", "snapshot_models", "unregister_model",
    ],
    "liverec.ranking": [
        "Case", "Explainer", "FEATURES", "FeatureBlock", "FeatureInput", "Features", "Filters", "GBDTRanker",
        "LinearFusion", "ModelSnapshot", "RECALLS", "Ranker", "ReasonContext", "Recall", "RecallContext", "SCORERS",
        "Scorer", "Serving", "Verdict", "WEIGHT_GRID", "build_features", "current_version", "intra_list_similarity",
        "load_snapshot", "mmr", "recall_names", "register_features", "register_recall", "register_scorer",
        "scorer_from_config", "search", "similar_items", "unregister_recall", "verdict", "write_snapshot",
    ],
    "liverec.realtime": [
        "EventSignal", "EventSignals", "Interest", "ItemLookup", "ItemTable", "LiveCatalog", "LiveStates",
        "MemoryStateStore", "RecentAction", "StateStore", "StateUpdater", "UserState", "decode_state",
        "encode_state", "open_state_store", "register_state_store",
    ],
    "liverec.service": [
        "ServiceSettings", "create_app", "load_settings",
    ],
    "liverec.storage": [
        "ApiKey", "Backend", "Catalog", "EventLog", "FeedbackLog", "FeedbackResult", "KeyStore", "MemoryFeedbackLog",
        "MemoryKeyStore", "MemoryStore", "PostgresStore", "SCOPES", "SqliteFeedbackLog", "SqliteKeyStore",
        "SqliteStore", "Store", "StoreLocation", "VariantCounts", "VectorCache", "locate", "open_key_store",
        "open_store", "register_backend",
    ],
    "liverec.testing": [
        "encoder_contract", "feedback_contract", "keystore_contract", "model_contract", "scorer_contract",
        "state_contract", "store_contract",
    ],
    "liverec.streams": [
        "ConsumeStats", "DEFAULT_BATCH", "MAX_EVENTS_PER_MESSAGE", "Message", "Source", "StreamError", "consume",
        "open_source", "parse_body", "register_source", "stop_on_signals",
    ],
    "liverec.text": [
        "CachedEncoder", "E5Encoder", "Encoder", "KeywordExtractor", "Language", "LanguageCentering",
        "MiniLMEncoder", "ReviewPolarity", "TextKind", "TextSpace", "USEEncoder", "available_encoders",
        "detect_language", "enrich", "extract_keywords", "get_encoder", "interest_tags", "item_language",
        "lexicon_polarity", "query_tags", "rating_polarity", "text_key",
    ],
    "liverec.training": [
        "Holdout", "LocalTraining", "LogColumns", "ModelLifecycle", "POSITIVE_ITEM_TYPES", "Progress", "ReadLog",
        "TrainReport", "TrainingEngine", "current_snapshot", "fit_models", "fit_snapshot", "refit_models",
    ],
    "liverec.cleaning": [
        "BotDetector", "CleanLog", "Cleaner", "CleaningSettings", "Duplicates", "QuarantineView", "RULES", "Screened",
        "cleaning_settings", "duplicate_key",
    ],
    "liverec.training.spark": [
        "SparkLog", "SparkTraining", "encode_catalog", "encode_missing", "export_events", "jdbc_options",
        "read_events", "spark_session",
    ],
}


def packages() -> list[str]:
    found = ["liverec"]
    for info in pkgutil.walk_packages(liverec.__path__, "liverec."):
        if info.ispkg and ".routes" not in info.name:  # service/routes is the service's own wiring
            found.append(info.name)
    return sorted(found)


def test_every_package_is_pinned() -> None:
    assert packages() == sorted(PUBLIC)


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_the_public_surface_is_what_is_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PUBLIC[package]
    for name in module.__all__:  # every name is there (a submodule, for liverec.testing's suites)
        assert hasattr(module, name) or importlib.util.find_spec(f"{package}.{name}") is not None, name


def _package_of(path: Path) -> str:
    """The liverec package a file belongs to (``core``, ``ranking``, …), or what it is outside liverec."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[0] == "liverec":
        return parts[1] if len(parts) > 2 else "liverec"
    if parts[0] == "tests" and len(parts) > 2:
        return parts[1]  # tests/ranking/... may use liverec.ranking's own names
    return "/".join(parts[:-1]) or parts[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    mine = _package_of(path)
    modules: dict[str, str] = {}  # local alias -> the liverec package of the module it names
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "liverec":
            parts = node.module.split(".")
            for alias in node.names:
                # ``from liverec import ranking`` names the package ranking itself
                owner = parts[1] if len(parts) > 1 else alias.name
                if owner != mine and (_private(alias.name) or any(_private(p) for p in parts)):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import {alias.name}")
                if owner != mine:
                    modules[alias.asname or alias.name] = owner
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "liverec" and len(parts) > 1 and parts[1] != mine:
                    if any(_private(p) for p in parts):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: import {alias.name}")
                    if alias.asname:
                        modules[alias.asname] = parts[1]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_package_uses_another_packages_private_names() -> None:
    files = [*ROOT.glob("liverec/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/*.py")]
    assert len(files) > 100
    assert [v for f in sorted(files) for v in _violations(f)] == []


def test_the_check_catches_what_it_should(tmp_path: Path) -> None:
    probe = ROOT / "benchmarks" / "_probe_for_the_private_check.py"
    probe.write_text("from liverec.models._common import top_k\nfrom liverec.ranking import ranker as r\nr._x\n")
    try:
        assert len(_violations(probe)) == 2
    finally:
        probe.unlink()
