"""A/B variants and how users are assigned to them.

An :class:`Experiment` assigns every user to one :class:`Variant` by a salted hash, so the same
user sees the same variant on every request, in every process, with no assignment table to keep.
A variant may change how candidates are scored (a scorer configuration, or linear fusion
weights for short) and the diversity of its lists. The service reads an experiment through the
:class:`Assignment` protocol, so another way of assigning users (a bandit) plugs in beside it.

This module is library code: it raises :mod:`liverec.core.errors`, never HTTP errors.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.ranking.scoring import Scorer, scorer_from_config

__all__ = ["Assignment", "Experiment", "Variant"]

_VARIANT_KEYS = ("name", "share", "weights", "diversity", "scorer")


@runtime_checkable
class Assignment(Protocol):
    """What the service needs of an experiment: its variants, and which one serves a user."""

    @property
    def variants(self) -> tuple[Variant, ...]: ...

    @property
    def control(self) -> Variant:
        """The variant the others are compared with."""
        ...

    def assign(self, user_id: str) -> Variant:
        """The variant that serves ``user_id`` (the same one on every call)."""
        ...

    def scorer(self, variant: Variant) -> Scorer | None:
        """The variant's scorer, built once; None: the trained one."""
        ...

    def to_dict(self) -> dict[str, Any]: ...


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
        Linear fusion weights that replace the trained scorer (recalls left out weigh 0): short
        for ``scorer={"kind": "linear", "weights": ...}``.
    diversity
        The ``diversity`` passed to ``Engine.recommend`` (the MMR trade-off: 0 keeps the relevance
        order, 1 favours mutually different items), or ``None`` for the request's own or the default.
    scorer
        A scorer configuration (``{"kind": ..., **parameters}``, see
        :func:`liverec.ranking.scoring.scorer_from_config`) that replaces the trained scorer.
        ``weights`` and ``scorer`` are exclusive; with neither, the trained scorer serves.
    """

    name: str
    share: float = 1.0
    weights: Mapping[str, float] | None = None
    diversity: float | None = None
    scorer: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the same keys :meth:`Experiment.from_config` reads."""
        return {
            "name": self.name,
            "share": self.share,
            "weights": None if self.weights is None else dict(self.weights),
            "diversity": self.diversity,
            "scorer": None if self.scorer is None else dict(self.scorer),
        }

    def scorer_config(self) -> dict[str, Any] | None:
        """The scorer configuration this variant serves with (None: the trained scorer)."""
        if self.weights is not None:
            return {"kind": "linear", "weights": dict(self.weights)}
        return None if self.scorer is None else dict(self.scorer)


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
    weights, scorer = variant.weights, variant.scorer
    if weights is not None and scorer is not None:
        raise InvalidInputError(f"{where} gives both weights and scorer; weights are short for a linear scorer",
                                field=f"{where}.weights", value=weights)
    if weights is not None:
        # An empty mapping would silently fall back to the trained scorer: not what the author meant.
        if isinstance(weights, Mapping) and not weights:
            raise InvalidInputError(f"{where}.weights needs at least one positive weight", field=f"{where}.weights",
                                    value={})
        scorer_from_config({"kind": "linear", "weights": weights}, where=where)
        weights = MappingProxyType({r: float(w) for r, w in weights.items()})
    if scorer is not None:
        if not isinstance(scorer, Mapping):
            raise InvalidInputError(f"{where}.scorer must be a table with a kind", field=f"{where}.scorer",
                                    value=scorer)
        scorer_from_config(scorer, where=f"{where}.scorer")
        scorer = MappingProxyType(dict(scorer))
    diversity = variant.diversity
    if diversity is not None:
        if not _is_number(diversity) or not 0.0 <= diversity <= 1.0:
            raise InvalidInputError(
                f"{where}.diversity {diversity!r} must be between 0 and 1", field=f"{where}.diversity", value=diversity
            )
        diversity = float(diversity)
    return Variant(name, float(share), weights, diversity, scorer)


class Experiment:
    """Variants with traffic shares, and the stable assignment of users to them.

    The first variant is the control: :func:`~liverec.experiments.stats.variant_stats` compares the others with it.
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
        self._scorers = {v.name: _built(v) for v in self.variants}
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

        ``name`` is required; ``share`` defaults to 1 (an equal split); ``weights``, ``scorer``
        and ``diversity`` default to ``None``. Any other key is an error rather than ignored, so a
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
                                  entry.get("diversity"), entry.get("scorer")))
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

    def scorer(self, variant: Variant) -> Scorer | None:
        """The variant's scorer, built once when the experiment was (None: the trained one)."""
        return self._scorers.get(variant.name)

    def to_dict(self) -> dict[str, Any]:
        return {"salt": self.salt, "variants": [v.to_dict() for v in self.variants]}

    def __repr__(self) -> str:
        return f"Experiment({[(v.name, round(v.share, 4)) for v in self.variants]!r}, salt={self.salt!r})"


def _built(variant: Variant) -> Scorer | None:
    config = variant.scorer_config()
    return None if config is None else scorer_from_config(config)
