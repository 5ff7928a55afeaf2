"""The model families of federated training, as flat lists of numpy arrays.

This module is imported by the node (to build and save the final model) AND by the Flower
processes, which run in Flower's own interpreter: it may import only numpy and
scikit-learn.

- ``linear``: ``SGDClassifier(loss="log_loss")`` (multinomial logistic regression by SGD);
  parameters ``[coef_, intercept_]``.
- ``mlp``: ``MLPClassifier`` with one or two hidden layers (a small neural network);
  parameters ``coefs_ + intercepts_``.

Local training runs ``local_epochs`` passes of ``partial_fit`` in mini-batches of 16
(regions hold a few hundred labelled pixels: larger batches leave the network a handful
of steps per round). The learning rate of round ``r`` is ``learning_rate / (1 + decay *
(r - 1))`` (``decay`` 0, a constant rate, unless the request sets it: at a constant rate
the averaged linear model can keep oscillating around the optimum on non-IID regions,
bench/federated.py uses 0.5 for it). With FedProx
(``proximal_mu > 0``) each pass is followed by a step toward the global parameters,
``w -= lr * mu * (w - w_global)``: the proximal term of FedProx, applied once per pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

FAMILIES = ("linear", "mlp")
Arrays = list[NDArray[Any]]


def make_model(family: str, hyper: dict[str, float], seed: int) -> Any:
    """A fresh estimator of ``family`` with the request's hyperparameters."""
    if family == "linear":
        return SGDClassifier(
            loss="log_loss",
            alpha=float(hyper.get("alpha", 1e-4)),
            learning_rate="constant",
            eta0=float(hyper.get("learning_rate", 0.05)),
            random_state=seed,
        )
    if family == "mlp":
        hidden = int(hyper.get("hidden", 16))
        layers = (hidden,) if int(hyper.get("layers", 1)) == 1 else (hidden, hidden)
        return MLPClassifier(
            hidden_layer_sizes=layers,
            solver="sgd",
            learning_rate_init=float(hyper.get("learning_rate", 0.05)),
            momentum=0.9,
            batch_size=16,
            alpha=float(hyper.get("alpha", 1e-4)),
            random_state=seed,
        )
    raise ValueError(f"unknown model family {family!r}; one of {FAMILIES}")


def round_learning_rate(hyper: dict[str, float], server_round: int) -> float:
    """The learning rate of round ``server_round`` (1-based): an inverse-time decay."""
    base = float(hyper.get("learning_rate", 0.05))
    decay = float(hyper.get("decay", 0.0))
    return base / (1.0 + decay * max(server_round - 1, 0))


def initialise(model: Any, n_features: int, classes: NDArray[np.int64]) -> Any:
    """Give ``model`` its shapes (one seeded ``partial_fit`` on a dummy row per class)."""
    x = np.zeros((classes.size, n_features), np.float64)
    model.partial_fit(x, classes, classes=classes)
    return model


def get_params(model: Any) -> Arrays:
    """The model's parameters as a list of arrays (the order ``set_params`` expects)."""
    if isinstance(model, SGDClassifier):
        return [model.coef_.copy(), model.intercept_.copy()]
    return [w.copy() for w in model.coefs_] + [b.copy() for b in model.intercepts_]


def set_params(model: Any, params: Arrays) -> Any:
    """Load ``params`` into an initialised ``model`` (shapes must match)."""
    if isinstance(model, SGDClassifier):
        model.coef_, model.intercept_ = params[0].copy(), params[1].copy()
        return model
    n = len(model.coefs_)
    model.coefs_ = [p.copy() for p in params[:n]]
    model.intercepts_ = [p.copy() for p in params[n:]]
    if hasattr(model, "_optimizer"):  # a fresh local optimizer (momentum) per round
        del model._optimizer
    return model


def shapes(family: str, n_features: int, classes: NDArray[np.int64]) -> list[tuple[int, ...]]:
    """The parameter shapes of ``family`` for these features and classes."""
    model = initialise(make_model(family, {}, 0), n_features, classes)
    return [p.shape for p in get_params(model)]


def check_update(params: Arrays, expected: list[tuple[int, ...]]) -> str | None:
    """Why a participant's update must be excluded, or None when it is usable."""
    if len(params) != len(expected):
        return f"{len(params)} arrays, expected {len(expected)}"
    for i, (p, want) in enumerate(zip(params, expected, strict=True)):
        if tuple(p.shape) != tuple(want):
            return f"array {i} has shape {tuple(p.shape)}, expected {tuple(want)}"
        if not np.all(np.isfinite(p)):
            return f"array {i} holds {int(np.size(p) - np.isfinite(p).sum())} non-finite values"
    return None


def train_local(
    model: Any,
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    classes: NDArray[np.int64],
    epochs: int,
    seed: int,
    proximal_mu: float = 0.0,
    learning_rate: float = 0.05,
    batch: int = 16,
) -> Any:
    """``epochs`` passes of mini-batch ``partial_fit`` over ``(x, y)`` at ``learning_rate``,
    FedProx-aware."""
    if isinstance(model, SGDClassifier):
        model.eta0 = learning_rate
    else:
        model.learning_rate_init = learning_rate
    rng = np.random.default_rng(seed)
    anchor = get_params(model)
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch):
            sel = order[start : start + batch]
            model.partial_fit(x[sel], y[sel], classes=classes)
        if proximal_mu > 0:
            now = get_params(model)
            pulled = [
                w - learning_rate * proximal_mu * (w - g) for w, g in zip(now, anchor, strict=True)
            ]
            set_params(model, pulled)
    return model


def accuracy(model: Any, x: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    """Fraction of ``y`` predicted right (0 for an empty split)."""
    return float(np.mean(model.predict(x) == y)) if len(y) else 0.0


def log_loss(model: Any, x: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    """Mean cross-entropy of the predicted class probabilities."""
    if not len(y):
        return 0.0
    proba = np.clip(model.predict_proba(x), 1e-12, 1.0)
    index = np.searchsorted(model.classes_, y)
    return float(-np.mean(np.log(proba[np.arange(len(y)), index])))
