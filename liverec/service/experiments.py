"""A/B experiments: split users between ranking variants and measure each variant's click-through rate.

An :class:`Experiment` assigns every user to one :class:`Variant` by a salted hash, so the same
user sees the same variant on every request, in every process, with no assignment table to keep.
A :class:`FeedbackLog` remembers which variant served each recommendation list and counts the
impressions and clicks reported against it; :meth:`FeedbackLog.stats` turns the counts into a CTR
per variant with a Wilson interval, and compares every variant with the control (the first).

CTR here is clicks per impressed item: each (request, item) pair counts at most once as an
impression and once as a click, so a client that retries a report cannot inflate the numbers.

This module is library code: it raises :mod:`liverec.core.errors`, never HTTP errors.
"""

from __future__ import annotations

import hashlib
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from statistics import NormalDist
from types import MappingProxyType
from typing import Any

from liverec.core.errors import ConflictError, InvalidInputError, NotFoundError
from liverec.ranking.recalls import RECALLS
from liverec.storage.sqlite import SqliteConnection

#: The two-sided 95% normal quantile, 1.95996...
Z95 = NormalDist().inv_cdf(0.975)

FEEDBACK_KINDS = ("impression", "click")

_VARIANT_KEYS = ("name", "share", "weights", "diversity")


# ---------------------------------------------------------------------------- variants


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment.

    Parameters
    ----------
    name
        Unique within the experiment; it is what the feedback log and the stats report.
    share
        This variant's fraction of users (the shares of an :class:`Experiment` sum to 1).
    weights
        Recall fusion weights that replace the trained ones (recalls left out weigh 0), or
        ``None`` to serve with the trained weights.
    diversity
        The ``diversity`` passed to ``Engine.recommend`` (the MMR trade-off: 0 keeps the relevance
        order, 1 favours mutually different items), or ``None`` for the request's own or the default.
    """

    name: str
    share: float = 1.0
    weights: Mapping[str, float] | None = None
    diversity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the same keys :meth:`Experiment.from_config` reads."""
        return {
            "name": self.name,
            "share": self.share,
            "weights": None if self.weights is None else dict(self.weights),
            "diversity": self.diversity,
        }


def _is_number(value: object) -> bool:
    # bool is an int subclass; ``share: true`` in a config is a mistake, not 1.0.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_variant(variant: Variant, where: str) -> Variant:
    """``variant`` with its weights copied read-only, or InvalidInputError naming ``where.field``."""
    name = variant.name
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"{where}.name {name!r} must be a non-empty string", field=f"{where}.name", value=name)
    share = variant.share
    if not _is_number(share) or not math.isfinite(share) or share <= 0:
        raise InvalidInputError(
            f"{where}.share {share!r} must be a positive number", field=f"{where}.share", value=share
        )
    weights = variant.weights
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise InvalidInputError(
                f"{where}.weights must map recall names to numbers, not {type(weights).__name__}",
                field=f"{where}.weights", value=weights,
            )
        for recall, weight in weights.items():
            field = f"{where}.weights.{recall}"
            if recall not in RECALLS:
                raise InvalidInputError(
                    f"recall {recall!r} in {where}.weights is not one of {', '.join(RECALLS)}",
                    field=field, value=recall,
                )
            if not _is_number(weight) or not math.isfinite(weight) or weight < 0:
                raise InvalidInputError(
                    f"{field} {weight!r} must be a finite number >= 0", field=field, value=weight
                )
        # All-zero weights would score every candidate 0, and an empty mapping would silently
        # fall back to the trained weights in the ranker: neither is what the author meant.
        if not any(w > 0 for w in weights.values()):
            raise InvalidInputError(
                f"{where}.weights needs at least one positive weight", field=f"{where}.weights", value=dict(weights)
            )
        weights = MappingProxyType({r: float(w) for r, w in weights.items()})
    diversity = variant.diversity
    if diversity is not None:
        if not _is_number(diversity) or not 0.0 <= diversity <= 1.0:
            raise InvalidInputError(
                f"{where}.diversity {diversity!r} must be between 0 and 1", field=f"{where}.diversity", value=diversity
            )
        diversity = float(diversity)
    return Variant(name, float(share), weights, diversity)


class Experiment:
    """Variants with traffic shares, and the stable assignment of users to them.

    The first variant is the control: :meth:`FeedbackLog.stats` compares the others with it.
    Shares are normalised to sum to 1, so ``1, 1`` and ``0.5, 0.5`` mean the same split.
    Changing ``salt`` reshuffles every user, which is how a new experiment starts from a fresh split.

    Examples
    --------
    >>> exp = Experiment.from_config([{"name": "control", "share": 3}, {"name": "mmr", "diversity": 0.5}])
    >>> [(v.name, v.share) for v in exp.variants]
    [('control', 0.75), ('mmr', 0.25)]
    >>> exp.assign("u1") is exp.assign("u1")
    True
    """

    def __init__(self, variants: Sequence[Variant], salt: str = "") -> None:
        if isinstance(variants, str | bytes) or not isinstance(variants, Sequence) or not variants:
            raise InvalidInputError("variants must be a list of at least one variant", field="variants",
                                    value=variants)
        if not isinstance(salt, str):
            raise InvalidInputError(f"salt {salt!r} must be a string", field="salt", value=salt)
        checked: list[Variant] = []
        seen: set[str] = set()
        for i, variant in enumerate(variants):
            if not isinstance(variant, Variant):
                raise InvalidInputError(f"variants[{i}] is a {type(variant).__name__}, not a Variant",
                                        field=f"variants[{i}]", value=variant)
            v = _checked_variant(variant, f"variants[{i}]")
            if v.name in seen:
                raise InvalidInputError(f"variant name {v.name!r} is used twice", field=f"variants[{i}].name",
                                        value=v.name)
            seen.add(v.name)
            checked.append(v)
        total = math.fsum(v.share for v in checked)
        self.variants: tuple[Variant, ...] = tuple(replace(v, share=v.share / total) for v in checked)
        self.salt = salt
        # Upper bounds of each variant's slice of [0, 1); the last is pinned to 1 so rounding in
        # the cumulative sum can never leave a sliver of users unassigned.
        bounds = []
        acc = 0.0
        for v in self.variants:
            acc += v.share
            bounds.append(acc)
        bounds[-1] = 1.0
        self._bounds = tuple(bounds)

    @classmethod
    def from_config(cls, variants: Sequence[Mapping[str, Any]], salt: str = "") -> Experiment:
        """Build from plain mappings (parsed JSON or TOML), each with the keys of :class:`Variant`.

        ``name`` is required; ``share`` defaults to 1 (an equal split); ``weights`` and
        ``diversity`` default to ``None``. Any other key is an error rather than ignored, so a
        misspelt ``divresity`` cannot quietly run an experiment without its treatment.

        Raises
        ------
        InvalidInputError
            With ``field`` naming the offending entry, e.g. ``variants[1].weights.als``.
        """
        if isinstance(variants, str | bytes) or not isinstance(variants, Sequence):
            raise InvalidInputError("variants must be a list of mappings", field="variants", value=variants)
        parsed: list[Variant] = []
        for i, entry in enumerate(variants):
            where = f"variants[{i}]"
            if not isinstance(entry, Mapping):
                raise InvalidInputError(f"{where} must be a mapping, not {type(entry).__name__}", field=where,
                                        value=entry)
            for key in entry:
                if key not in _VARIANT_KEYS:
                    raise InvalidInputError(
                        f"{where} has unknown key {key!r}; expected {', '.join(_VARIANT_KEYS)}",
                        field=f"{where}.{key}", value=key,
                    )
            if "name" not in entry:
                raise InvalidInputError(f"{where} has no name", field=f"{where}.name")
            parsed.append(Variant(entry["name"], entry.get("share", 1.0), entry.get("weights"),
                                  entry.get("diversity")))
        return cls(parsed, salt=salt)

    @classmethod
    def single(cls) -> Experiment:
        """No experiment: one variant named ``default`` serving everyone with the defaults."""
        return cls([Variant("default")])

    @property
    def control(self) -> Variant:
        return self.variants[0]

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; :class:`NotFoundError` (kind ``variant``) if there is none."""
        for v in self.variants:
            if v.name == name:
                return v
        raise NotFoundError(f"no variant {name!r} in the experiment", kind="variant", key=name)

    def bucket(self, user_id: str) -> float:
        """The user's point in [0, 1): the first 8 bytes of sha256(salt + user_id), big-endian, / 2**64.

        A cryptographic hash rather than :func:`hash`: Python salts ``hash`` per process, and the
        point must be the same in every worker and after every restart.
        """
        digest = hashlib.sha256((self.salt + user_id).encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def assign(self, user_id: str) -> Variant:
        """The variant whose slice of [0, 1) holds :meth:`bucket` of ``user_id``."""
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInputError(f"user_id {user_id!r} must be a non-empty string", field="user_id",
                                    value=user_id)
        point = self.bucket(user_id)
        for variant, bound in zip(self.variants, self._bounds, strict=True):
            if point < bound:
                return variant
        return self.variants[-1]  # unreachable: the last bound is 1 and point < 1

    def to_dict(self) -> dict[str, Any]:
        return {"salt": self.salt, "variants": [v.to_dict() for v in self.variants]}

    def __repr__(self) -> str:
        return f"Experiment({[(v.name, round(v.share, 4)) for v in self.variants]!r}, salt={self.salt!r})"


# ---------------------------------------------------------------------------- statistics


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at 0 or n
    successes, which is where CTRs of a fresh variant live. With ``n == 0`` it is (0, 1):
    nothing is known yet.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(10, 100)]
    [0.0552, 0.1744]
    >>> wilson_interval(0, 0)
    (0.0, 1.0)
    """
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4 * n * n))
    # At 0 (or n) successes the bound is exactly 0 (or 1); pin it against rounding.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def newcombe_interval(s1: int, n1: int, s2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """A CI for p1 - p2 by Newcombe's hybrid score method (method 10 of Newcombe, 1998).

    It combines the two Wilson intervals, so it inherits their good coverage at small counts
    and near 0, where the normal (Wald) interval for a difference collapses. Needs n1, n2 > 0.
    """
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson_interval(s1, n1, z)
    l2, u2 = wilson_interval(s2, n2, z)
    diff = p1 - p2
    return diff - math.hypot(p1 - l1, u2 - p2), diff + math.hypot(u1 - p1, p2 - l2)


def two_proportion_p_value(s1: int, n1: int, s2: int, n2: int) -> float:
    """The two-sided p-value of the pooled two-proportion z-test of p1 == p2. Needs n1, n2 > 0.

    When both samples are all misses (or all hits) the pooled variance is 0 and the proportions
    are equal, so there is no evidence of a difference: the p-value is 1.
    """
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    if se == 0.0:
        return 1.0
    z = (s1 / n1 - s2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2.0))


@dataclass(frozen=True)
class VariantStats:
    """One variant's counts, its CTR with a 95% Wilson interval, and its comparison with the control.

    ``ctr`` is 0 while there are no impressions (the interval, (0, 1), says it is unknown). The
    ``lift`` fields are ``None`` for the control itself, and while either side has no impressions.
    ``lift`` is ``ctr - control ctr``; its interval is Newcombe's hybrid score interval and
    ``p_value`` is the two-sided pooled two-proportion z-test.
    """

    name: str
    requests: int
    impressions: int
    clicks: int
    ctr: float
    ci_low: float
    ci_high: float
    control: bool = False
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeedbackResult:
    """What one :meth:`FeedbackLog.record` call newly counted (0 and 0 for a retried report)."""

    request_id: str
    variant: str
    impressions: int
    clicks: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _variant_stats(name: str, requests: int, impressions: int, clicks: int) -> VariantStats:
    low, high = wilson_interval(clicks, impressions)
    return VariantStats(name, requests, impressions, clicks, clicks / impressions if impressions else 0.0, low, high)


def _versus(stats: VariantStats, control: VariantStats) -> VariantStats:
    if stats.impressions == 0 or control.impressions == 0:
        return stats
    low, high = newcombe_interval(stats.clicks, stats.impressions, control.clicks, control.impressions)
    p_value = two_proportion_p_value(stats.clicks, stats.impressions, control.clicks, control.impressions)
    return replace(stats, lift=stats.ctr - control.ctr, lift_ci_low=low, lift_ci_high=high, p_value=p_value)


# ---------------------------------------------------------------------------- feedback log

# ``served`` holds the newest ``capacity`` lists, keyed by an ever-growing seq so eviction is a
# range delete on every table. ``variants`` holds running totals, so evicting a list forgets
# only its item ids, never what it contributed to the stats.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS served (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT UNIQUE NOT NULL,
    variant TEXT NOT NULL,
    user_id TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS served_user ON served (user_id);
CREATE TABLE IF NOT EXISTS served_items (
    seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    PRIMARY KEY (seq, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS feedback (
    seq INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (seq, item_id, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS variants (
    name TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    impressions INTEGER NOT NULL DEFAULT 0,
    clicks INTEGER NOT NULL DEFAULT 0
);
"""


def _check_str(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{field} {value!r} must be a non-empty string", field=field, value=value)
    return value


def _check_items(item_ids: object) -> list[str]:
    # A bare string is a sequence of characters: almost certainly one id passed without a list.
    if isinstance(item_ids, str | bytes) or not isinstance(item_ids, Sequence):
        raise InvalidInputError("item_ids must be a list of item ids", field="item_ids", value=item_ids)
    for item_id in item_ids:
        _check_str(item_id, "item_ids")
    return list(item_ids)


class FeedbackLog:
    """Which variant served which list, and the impressions and clicks reported on those lists.

    Parameters
    ----------
    path
        A SQLite file, so counts and served lists survive a restart; ``None`` keeps everything in
        memory for tests and throwaway runs.
    capacity
        How many served lists are remembered for feedback. Past it the oldest are forgotten and
        feedback on them is :class:`NotFoundError`; their counts stay in the stats.

    Safe to share between threads: one connection behind one lock, as in ``liverec.storage.sqlite``.
    Every sqlite3 failure surfaces as :class:`StorageError`, and a failed call counts nothing.
    """

    def __init__(self, path: str | Path | None = None, capacity: int = 1_000_000) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidInputError(f"capacity {capacity!r} must be a positive integer", field="capacity",
                                    value=capacity)
        self.path = None if path is None else Path(path)
        self.capacity = capacity
        self._served = 0  # rows in ``served``, kept here so eviction needs no COUNT(*) per request
        # NORMAL in WAL mode survives a crash of this process and loses at most the last few
        # commits on power loss: fine for counters, and a click costs no fsync.
        self._db = SqliteConnection(self.path, "feedback log", synchronous="NORMAL")
        try:
            with self._transaction("creating the schema") as c:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        c.execute(statement)
                self._served = c.execute("SELECT COUNT(*) FROM served").fetchone()[0]
                self._evict(c)  # reopened with a smaller capacity
        except BaseException:
            self.close()
            raise

    # -- plumbing

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; on rollback the count of ``served`` rows rolls back with them."""
        saved: list[int] = []

        def restore() -> None:
            if saved:
                self._served = saved[0]

        with self._db.transaction(action, on_rollback=restore) as conn:
            saved.append(self._served)  # read under the lock, as restore runs
            yield conn

    def _evict(self, conn: sqlite3.Connection) -> None:
        excess = self._served - self.capacity
        if excess <= 0:
            return
        keep_from = conn.execute("SELECT seq FROM served ORDER BY seq LIMIT 1 OFFSET ?", (excess,)).fetchone()[0]
        for table in ("served", "served_items", "feedback"):
            conn.execute(f"DELETE FROM {table} WHERE seq < ?", (keep_from,))
        self._served -= excess

    # -- writes

    def record_served(
        self, request_id: str, variant: str, user_id: str, item_ids: Sequence[str], ts: float | None = None
    ) -> None:
        """Remember that ``variant`` served ``item_ids`` to ``user_id`` as request ``request_id``.

        Recording the same request again with the same content is a no-op (a retried write);
        with other content it is a :class:`ConflictError`, since feedback already counted against
        the first list would no longer match.
        """
        _check_str(request_id, "request_id")
        _check_str(variant, "variant")
        _check_str(user_id, "user_id")
        items = _check_items(item_ids)
        if len(set(items)) != len(items):
            dupes = sorted({i for i in items if items.count(i) > 1})
            raise InvalidInputError(f"item_ids repeat {dupes!r}; a served list has each item once",
                                    field="item_ids", value=dupes)
        when = time.time() if ts is None else ts
        if not _is_number(when) or not math.isfinite(when):
            raise InvalidInputError(f"ts {ts!r} must be a finite number of seconds", field="ts", value=ts)
        with self._transaction(f"recording request {request_id!r}") as conn:
            row = conn.execute("SELECT seq, variant, user_id FROM served WHERE request_id = ?",
                               (request_id,)).fetchone()
            if row is not None:
                if (row[1], row[2], self._items(conn, row[0])) != (variant, user_id, items):
                    raise ConflictError(f"request {request_id!r} was already recorded with another variant, "
                                        "user or item list")
                return
            seq = conn.execute("INSERT INTO served (request_id, variant, user_id, ts) VALUES (?, ?, ?, ?)",
                               (request_id, variant, user_id, float(when))).lastrowid
            conn.executemany("INSERT INTO served_items (seq, position, item_id) VALUES (?, ?, ?)",
                             [(seq, pos, item) for pos, item in enumerate(items)])
            conn.execute(
                "INSERT INTO variants (name, first_seen, requests) VALUES (?, ?, 1)"
                " ON CONFLICT (name) DO UPDATE SET requests = requests + 1",
                (variant, seq),
            )
            self._served += 1
            self._evict(conn)

    @staticmethod
    def _items(conn: sqlite3.Connection, seq: int) -> list[str]:
        return [r[0] for r in conn.execute("SELECT item_id FROM served_items WHERE seq = ? ORDER BY position", (seq,))]

    def record(self, request_id: str, kind: str, item_ids: Sequence[str] | None = None) -> FeedbackResult:
        """Count impressions or clicks on items of a served list.

        Parameters
        ----------
        kind
            ``impression`` (the items were shown) or ``click``. A click also counts its item's
            impression, since a client may report only the click.
        item_ids
            The items concerned, all from the served list. ``None`` with an impression means
            the whole list was shown; a click must name its items.

        Each (request, item, kind) counts once, so a retried report changes nothing and returns
        zeros. Nothing is counted unless the whole report is valid.

        Raises
        ------
        NotFoundError
            ``kind='request'``: the request was never recorded, or has been evicted.
        InvalidInputError
            ``field='type'`` for an unknown kind, ``field='item_ids'`` for items not served.
        """
        _check_str(request_id, "request_id")
        if kind not in FEEDBACK_KINDS:
            raise InvalidInputError(f"feedback type {kind!r} is not one of {', '.join(FEEDBACK_KINDS)}",
                                    field="type", value=kind)
        if item_ids is None and kind == "click":
            raise InvalidInputError("a click must name the clicked item_ids", field="item_ids")
        wanted = None if item_ids is None else list(dict.fromkeys(_check_items(item_ids)))
        with self._transaction(f"recording {kind} on request {request_id!r}") as conn:
            row = conn.execute("SELECT seq, variant FROM served WHERE request_id = ?", (request_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"request {request_id!r} is unknown or too old to take feedback",
                                    kind="request", key=request_id)
            seq, variant = row
            served = self._items(conn, seq)
            if wanted is None:
                wanted = served
            else:
                known = set(served)
                unserved = [i for i in wanted if i not in known]
                if unserved:
                    raise InvalidInputError(f"items {unserved!r} were not served in request {request_id!r}",
                                            field="item_ids", value=unserved)
            impressions = self._insert(conn, seq, wanted, "impression")
            clicks = self._insert(conn, seq, wanted, "click") if kind == "click" else 0
            if impressions or clicks:
                conn.execute("UPDATE variants SET impressions = impressions + ?, clicks = clicks + ? WHERE name = ?",
                             (impressions, clicks, variant))
        return FeedbackResult(request_id, variant, impressions, clicks)

    @staticmethod
    def _insert(conn: sqlite3.Connection, seq: int, item_ids: list[str], kind: str) -> int:
        """Insert the feedback rows not yet present; how many were new."""
        before = conn.total_changes
        conn.executemany("INSERT OR IGNORE INTO feedback (seq, item_id, kind) VALUES (?, ?, ?)",
                         [(seq, item, kind) for item in item_ids])
        return conn.total_changes - before

    def forget_user(self, user_id: str) -> int:
        """Erase the lists served to ``user_id`` and the feedback on them; how many lists were erased.

        The variants' running totals keep what those lists contributed: they are anonymous
        counts, and taking them back would change an experiment's results after the fact.
        Feedback on an erased list is then :class:`NotFoundError`, as for an evicted one.
        """
        _check_str(user_id, "user_id")
        with self._transaction(f"forgetting the lists served to user {user_id!r}") as conn:
            seqs = [(r[0],) for r in conn.execute("SELECT seq FROM served WHERE user_id = ?", (user_id,))]
            for table in ("served", "served_items", "feedback"):
                conn.executemany(f"DELETE FROM {table} WHERE seq = ?", seqs)
            self._served -= len(seqs)
        return len(seqs)

    # -- reads

    def stats(self, control: str | None = None) -> list[VariantStats]:
        """Every variant that has served a list, control first, then in the order first served.

        ``control`` names the variant the others are compared with (pass the experiment's
        ``control.name``); it is listed even before it has served anything. By default the
        first variant ever served is the control.
        """
        with self._db.access("reading the stats") as conn:
            rows = conn.execute(
                "SELECT name, requests, impressions, clicks FROM variants ORDER BY first_seen, name"
            ).fetchall()
        stats = [_variant_stats(*row) for row in rows]
        if control is not None:
            rest = [s for s in stats if s.name != control]
            first = next((s for s in stats if s.name == control), _variant_stats(control, 0, 0, 0))
            stats = [first, *rest]
        if not stats:
            return []
        base = replace(stats[0], control=True)
        return [base, *(_versus(s, base) for s in stats[1:])]

    def close(self) -> None:
        """Close the database; further calls raise :class:`StorageError`. Safe to call twice."""
        self._db.close()

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
