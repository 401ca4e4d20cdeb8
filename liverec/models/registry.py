"""The model registry: every model the engine knows, by name, and how to build one from settings.

A model registers itself once (``register_model``); training then fits every registered
snapshot model with the hyperparameters of its ``[models.NAME]`` settings table, a snapshot
saves and loads each through its class found here, and nothing else names models one by one.

>>> sorted(snapshot_models())
['als', 'covisit', 'ctr', 'sequential', 'trending']
>>> build_model("als", {"factors": 8}).factors
8
>>> build_model("als", {"factor": 8})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
liverec.core.errors.InvalidInputError: models.als has no parameter 'factor'; known: alpha, factors, ...
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from liverec.core.errors import InvalidInputError, NotFoundError
from liverec.models._common import hyperparameters
from liverec.models.base import Model

__all__ = [
    "MODELS",
    "ModelSpec",
    "build_model",
    "check_model_settings",
    "model_class",
    "model_hyperparameters",
    "model_parameters",
    "register_model",
    "snapshot_models",
    "unregister_model",
]

M = TypeVar("M", bound=type)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its class, and whether training fits it into every snapshot."""

    cls: type[Any]
    snapshot: bool = True


_SPECS: dict[str, ModelSpec] = {}
#: name -> class of every registered model (a live view of the registry).
MODELS: dict[str, type[Any]] = {}


def register_model(cls: M, *, snapshot: bool = True) -> M:
    """Register ``cls`` under its ``name``; returns ``cls``, so it can decorate the class.

    ``snapshot=False`` registers a model that is not trained from the event log into snapshots
    (the live text index, which the catalog keeps current). Registering the same class twice is
    harmless; another class under a name already taken is an error.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise InvalidInputError(f"model class {cls.__name__} needs a `name` that is an identifier, got {name!r}",
                                field="name", value=name)
    known = _SPECS.get(name)
    if known is not None and known.cls is not cls:
        raise InvalidInputError(f"model name {name!r} is already registered to {known.cls.__name__}",
                                field="name", value=name)
    _SPECS[name] = ModelSpec(cls, snapshot)
    MODELS[name] = cls
    return cls


def unregister_model(name: str) -> None:
    """Remove a registration (for tests and plug-ins that come and go); unknown names are ignored."""
    _SPECS.pop(name, None)
    MODELS.pop(name, None)


def model_class(name: str) -> type[Any]:
    """The class registered as ``name``; NotFoundError (kind ``model``) when there is none."""
    spec = _SPECS.get(name)
    if spec is None:
        raise NotFoundError(f"no model is registered as {name!r}; registered: {', '.join(sorted(_SPECS))}",
                            kind="model", key=name)
    return spec.cls


def snapshot_models() -> list[str]:
    """Names of the models training fits into every snapshot, in registration order."""
    return [name for name, spec in _SPECS.items() if spec.snapshot]


def model_parameters(name: str) -> list[str]:
    """The keyword arguments of the model's ``__init__``: its hyperparameters."""
    return list(inspect.signature(model_class(name)).parameters)


def check_model_settings(models: Mapping[str, Any], off: Sequence[str] = ()) -> None:
    """Check a ``[models]`` settings tree (known model names, each a table of known parameters)
    and the names of models turned off."""
    for name in off:
        if name not in _SPECS:
            raise InvalidInputError(f"models_off: no model is registered as {name!r}; registered: "
                                    f"{', '.join(sorted(_SPECS))}", field="models_off", value=name)
    if not isinstance(models, Mapping):
        raise InvalidInputError("models must map model names to tables of parameters", field="models", value=models)
    for name, params in models.items():
        if name not in _SPECS:
            raise InvalidInputError(f"models.{name}: no model is registered as {name!r}; registered: "
                                    f"{', '.join(sorted(_SPECS))}", field=f"models.{name}", value=name)
        if not isinstance(params, Mapping):
            raise InvalidInputError(f"models.{name} must be a table of parameters", field=f"models.{name}",
                                    value=params)
        known = model_parameters(name)
        for key in params:
            if key not in known:
                raise InvalidInputError(f"models.{name} has no parameter {key!r}; known: {', '.join(sorted(known))}",
                                        field=f"models.{name}.{key}", value=key)


def build_model(name: str, params: Mapping[str, Any] | None = None, *, seed: int | None = None) -> Model:
    """A new, unfitted ``name`` model with ``params``; ``seed`` fills a ``seed`` parameter not given."""
    params = dict(params or {})
    check_model_settings({name: params})
    if seed is not None and "seed" in model_parameters(name):
        params.setdefault("seed", seed)
    model: Model = model_class(name)(**params)
    return model


def model_hyperparameters(model: object) -> dict[str, Any]:
    """The model's hyperparameters with their values (scikit-learn's ``get_params``)."""
    return hyperparameters(model)
