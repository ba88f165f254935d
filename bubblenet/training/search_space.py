"""The hyper-parameter search space of `bubblenet tune`, and how a trial's values become `fit` options.

Nishimoto et al. 2025 searched learning rate (1e-6-1e-3, log), weight decay
(1e-6-1e-3, log), positives per step {2, 4, 8, 16, 32} and negatives per
step (1-6) by Bayesian optimisation of the validation F2. `DEFAULT_SPACE`
keeps those and adds what matters here: augmentation strength (the largest
translated crop, ``max_crop_scale``), the default-box scale
(``anchor_scale``), the normalisation clip (``clip_sigma``) and, when the
negatives are clustered, one weight per cluster (``cluster_weights``).

A space is a mapping of `fit` option name to one of:

* ``{"min": a, "max": b}``, with ``"log": true`` for a log scale and
  ``"step"`` optionally: an integer range when a and b are integers, a
  float range otherwise;
* a list: a choice among its values;
* ``null``: not searched (the option keeps its `fit` value).

Seeds are fixed for a whole search, not tuned: the paper tuned its seed too,
which picks a lucky initialisation rather than a better method.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from typing import Any, Mapping

from bubblenet.errors import ConfigError
from bubblenet.training.config import FitConfig

__all__ = ["DEFAULT_SPACE", "resolve_space", "declare", "apply_values", "fit_value"]

log = logging.getLogger(__name__)

DEFAULT_SPACE: dict[str, Any] = {
    "lr": {"min": 1e-6, "max": 1e-3, "log": True},
    "weight_decay": {"min": 1e-6, "max": 1e-3, "log": True},
    "positives": [2, 4, 8, 16, 32],
    "negatives": {"min": 1, "max": 6},
    "max_crop_scale": {"min": 3.0, "max": 8.0},
    "anchor_scale": {"min": 0.7, "max": 1.4},
    "clip_sigma": {"min": 2.0, "max": 5.0},
    "cluster_weights": {"min": 0.0, "max": 1.0},
}


def resolve_space(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """`DEFAULT_SPACE` with `overrides` (option name -> range, list or None) applied and checked."""
    space = copy.deepcopy(DEFAULT_SPACE)
    for key, value in (overrides or {}).items():
        name = str(key).replace("-", "_")
        if name not in DEFAULT_SPACE:
            raise ConfigError(f"cannot search '{key}'; searchable: {', '.join(DEFAULT_SPACE)}")
        space[name] = value
    for name, value in space.items():
        _check(name, value)
    return {k: v for k, v in space.items() if v is not None}


def _check(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"search space '{name}': an empty list of choices")
        return
    if not isinstance(value, dict) or not {"min", "max"} <= set(value) or set(value) - {"min", "max", "log", "step"}:
        raise ConfigError(f"search space '{name}': expected {{min, max[, log, step]}}, a list or null, got {value!r}")
    if not value["min"] < value["max"]:
        raise ConfigError(f"search space '{name}': min {value['min']} must be below max {value['max']}")
    if value.get("log") and value["min"] <= 0:
        raise ConfigError(f"search space '{name}': a log range needs min > 0")


def fit_value(config: FitConfig, name: str):
    """The `fit` option's value that is a trial's starting point (trial 0 of a search)."""
    return getattr(config, name)


def _hp_names(config: FitConfig, name: str) -> list[str]:
    """Hyper-parameter names of one space entry: one per kept cluster for ``cluster_weights``."""
    if name != "cluster_weights":
        return [name]
    if not config.clusters:
        return []
    return [f"cluster_weight_{k}" for k in range(config.clusters) if k not in set(config.drop_clusters)]


def _default(config: FitConfig, name: str, hp_name: str):
    if name == "cluster_weights":
        weights = config.cluster_weights
        k = int(hp_name.rsplit("_", 1)[1])
        return float(weights[k]) if weights else 1.0
    return fit_value(config, name)


def declare(hp, space: Mapping[str, Any], config: FitConfig) -> None:
    """Declare the space on a `keras_tuner.HyperParameters`, each default being `config`'s value."""
    for name, value in space.items():
        for hp_name in _hp_names(config, name):
            default = _default(config, name, hp_name)
            if isinstance(value, list):
                if default not in value:
                    log.warning("%s = %s is not among the choices %s; trial 0 starts from %s",
                                name, default, value, value[0])
                    default = value[0]
                hp.Choice(hp_name, value, default=default)
                continue
            low, high = value["min"], value["max"]
            if default is None or not low <= default <= high:
                clamped = min(max(default if default is not None else low, low), high)
                log.warning("%s = %s is outside the searched range [%s, %s]; trial 0 starts from %s",
                            name, default, low, high, clamped)
                default = clamped
            sampling = "log" if value.get("log") else "linear"
            if isinstance(low, int) and isinstance(high, int):
                hp.Int(hp_name, low, high, step=value.get("step", 1) if sampling == "linear" else None,
                       sampling=sampling, default=int(default))
            else:
                hp.Float(hp_name, float(low), float(high), step=value.get("step"), sampling=sampling,
                         default=float(default))


def apply_values(config: FitConfig, values: Mapping[str, Any], **also) -> FitConfig:
    """`config` with a trial's hyper-parameter values (and the options in `also`) set."""
    fields = {f.name for f in dataclasses.fields(FitConfig)}
    weights = list(config.cluster_weights) if config.cluster_weights else [1.0] * config.clusters
    changes = {}
    for name, value in values.items():
        value = value.item() if hasattr(value, "item") else value  # numpy scalars from keras-tuner
        if name.startswith("cluster_weight_"):
            weights[int(name.rsplit("_", 1)[1])] = float(value)
        elif name in fields:
            changes[name] = value
        else:
            raise ConfigError(f"a trial sets '{name}', which is not a fit option")
    if any(n.startswith("cluster_weight_") for n in values):
        changes["cluster_weights"] = tuple(weights)
    return config.replace(**changes, **also)
