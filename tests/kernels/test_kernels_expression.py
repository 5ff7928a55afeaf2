"""The user-math compiler: escapes refused, limits enforced, values right (real Landsat too)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravitas.kernels.expression import (
    FUNCTIONS,
    ExpressionError,
    Limits,
    compile_expression,
)

BANDS = {"red", "nir", "t2m"}

# Known sandbox-escape and denial-of-service payloads (Python eval escapes, numexpr's
# CVE-2023-39631 family, asteval advisories), plus the syntax the allow-list excludes.
ESCAPES = [
    "__import__('os').system('id')",
    "().__class__.__bases__[0].__subclasses__()",
    "red.__class__",
    "red.values",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda: 1)()",
    "lambda x: x",
    "getattr(red, 'values')",
    "eval('1+1')",
    "exec('import os')",
    "open('/etc/passwd')",
    "globals()",
    "red[0]",
    "red[::2]",
    "'a' * 10**9",
    "'abc'",
    "b'abc'",
    "f'{red}'",
    "9 ** 9 ** 9",
    "2 ** 100000",
    "red ** nir",
    "red ** (1 + 1)",
    "(x := 1)",
    "*red",
    "where(red, nir)",
    "sqrt(red, nir)",
    "sqrt(x=red)",
    "abs",
    "red.__getattribute__('x')",
    "{}.get",
    "[1, 2]",
    "(1, 2)",
    "{1: 2}",
    "{1}",
    "await red",
    "1j",
    "None",
    "...",
    "red if nir",
    "import os",
    "red; nir",
    "red\x00",
    "unknown_band + 1",
    "1e400",
    "__builtins__",
    "(" * 500 + "red" + ")" * 500,
    "+".join(["red"] * 2000),
    "numpy.sqrt(red)",
    "np.ones(10**12)",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_every_escape_in_the_corpus_is_refused_with_a_clear_message(payload: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(payload, BANDS)
    message = str(info.value)
    assert message.startswith("expression") or "characters" in message or "band" in message
    assert "\n" not in message


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=120))
def test_random_text_compiles_or_is_refused_never_crashes(text: str) -> None:
    try:
        expr = compile_expression(text, BANDS)
    except ExpressionError:
        return
    assert expr.names <= BANDS


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("rednit2m()+-*/%<>=!., 0123456789_abcdefghijklmnopqrstuvwxyz[]{}'\"")
        ),
        max_size=80,
    )
)
def test_near_miss_syntax_is_refused_or_safe(text: str) -> None:
    try:
        expr = compile_expression(text, BANDS)
    except ExpressionError:
        return
    arrays = {b: np.linspace(-2.0, 3.0, 7) for b in expr.names}
    expr.evaluate(arrays)  # whatever it computes, it is arithmetic on these arrays


# ---- values: expression trees rendered as text, evaluated both ways -----------------

Tree = tuple  # ("num", v) | ("band", name) | (op, left, right) | ("neg", x) | ("fn", name, x)


def _render(t: Tree) -> str:
    kind = t[0]
    if kind == "num":
        return repr(t[1])
    if kind == "band":
        return str(t[1])
    if kind == "neg":
        return f"(-{_render(t[1])})"
    if kind == "fn":
        return f"{t[1]}({_render(t[2])})"
    return f"({_render(t[1])} {kind} {_render(t[2])})"


def _value(t: Tree, bands: dict[str, np.ndarray]) -> np.ndarray:
    kind = t[0]
    if kind == "num":
        return np.asarray(t[1], dtype=float)
    if kind == "band":
        return bands[t[1]]
    if kind == "neg":
        return -_value(t[1], bands)
    if kind == "fn":
        return {"abs": np.abs, "sqrt": np.sqrt, "exp": np.exp}[t[1]](_value(t[2], bands))
    a, b = _value(t[1], bands), _value(t[2], bands)
    return {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}[kind](a, b)


trees = st.recursive(
    st.one_of(
        st.tuples(st.just("num"), st.floats(-100, 100, allow_nan=False).map(lambda v: round(v, 3))),
        st.tuples(st.just("band"), st.sampled_from(sorted(BANDS))),
    ),
    lambda sub: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "/"]), sub, sub),
        st.tuples(st.just("neg"), sub),
        st.tuples(st.just("fn"), st.sampled_from(["abs", "sqrt", "exp"]), sub),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(trees)
def test_generated_expressions_equal_numpy(tree: Tree) -> None:
    rng = np.random.default_rng(7)
    bands = {b: rng.uniform(-5, 5, size=(4, 5)) for b in BANDS}
    expr = compile_expression(_render(tree), BANDS)
    with np.errstate(all="ignore"):
        expected = _value(tree, bands)
    got = expr.evaluate(bands)
    np.testing.assert_allclose(
        got, np.broadcast_to(expected, got.shape), rtol=1e-12, equal_nan=True
    )


def test_ndvi_on_real_landsat_equals_numpy(landsat_bands: tuple[np.ndarray, np.ndarray]) -> None:
    red, nir = landsat_bands
    expr = compile_expression("(nir - red) / (nir + red)", {"red", "nir"})
    got = expr.evaluate({"red": red, "nir": nir})
    with np.errstate(all="ignore"):
        expected = (nir - red) / (nir + red)
    np.testing.assert_array_equal(got, expected)
    assert expr.names == {"red", "nir"}


@pytest.fixture(scope="module")
def landsat_bands() -> tuple[np.ndarray, np.ndarray]:
    import rasterio

    from gravitas.storage.sampledata import fetch

    folder = Path(fetch("landsat7_series")) / "LE70350322008118EDC00"
    with rasterio.open(folder / "LE70350322008118EDC00_b3.tif") as r3:
        red = r3.read(1).astype(np.float64)
    with rasterio.open(folder / "LE70350322008118EDC00_b4.tif") as r4:
        nir = r4.read(1).astype(np.float64)
    return red, nir


def test_where_comparisons_and_conditionals_on_xarray_stay_lazy() -> None:
    import dask.array as da

    t = xr.DataArray(da.from_array(np.array([[290.0, 305.0], [303.0, 310.0]]), chunks=1))
    expr = compile_expression("where(t2m > 303, 1, 0)", {"t2m"})
    out = expr.evaluate({"t2m": t})
    assert isinstance(out.data, da.Array)  # nothing computed yet
    np.testing.assert_array_equal(out.values, [[0, 1], [0, 1]])
    ife = compile_expression("1 if 290 < t2m <= 305 else 0", {"t2m"}).evaluate({"t2m": t})
    np.testing.assert_array_equal(ife.values, [[0, 1], [1, 0]])
    both = compile_expression("(t2m > 300) and not (t2m > 306)", {"t2m"}).evaluate({"t2m": t})
    np.testing.assert_array_equal(both.values, [[False, True], [True, False]])


def test_limits_are_enforced_and_named() -> None:
    tight = Limits(max_chars=20, max_nodes=10, max_depth=4, max_exponent=3)
    with pytest.raises(ExpressionError, match="longer than the limit of 20"):
        compile_expression("red + " * 10 + "red", BANDS, tight)
    with pytest.raises(ExpressionError, match="syntax nodes"):
        compile_expression("red+red+red+red+red", BANDS, Limits(max_nodes=10))
    with pytest.raises(ExpressionError, match="nesting deeper"):
        compile_expression("-(-(-(-(-red))))", BANDS, Limits(max_depth=4))
    with pytest.raises(ExpressionError, match="exponents are limited"):
        compile_expression("red ** 4", BANDS, tight)
    assert math.isclose(
        float(compile_expression("red ** -2", BANDS).evaluate({"red": np.array(2.0)})), 0.25
    )


def test_messages_name_the_fragment_and_the_missing_band() -> None:
    with pytest.raises(ExpressionError, match=r"column 1 \('red.__class__'\)"):
        compile_expression("red.__class__", BANDS)
    with pytest.raises(ExpressionError, match="unknown name 'swir'"):
        compile_expression("swir - red", BANDS)
    expr = compile_expression("nir - red", BANDS)
    with pytest.raises(ExpressionError, match=r"reads \['nir'\]"):
        expr.evaluate({"red": np.zeros(2)})


def test_every_function_is_callable_with_its_arity() -> None:
    x = np.array([0.25, 0.5])
    for name, (_, arity) in FUNCTIONS.items():
        args = ", ".join(["red"] * arity)
        out = compile_expression(f"{name}({args})", {"red"}).evaluate({"red": x})
        assert np.shape(out) == (2,), name


def test_memory_limit_counts_chunks_not_whole_lazy_arrays() -> None:
    import dask.array as da

    small = Limits(max_bytes=128 * 1024)
    expr = compile_expression("(nir - red) / (nir + red)", {"red", "nir"}, small)
    big = np.ones((100, 100))
    with pytest.raises(
        ExpressionError, match="MiB of intermediate arrays, over the limit of 128 KiB"
    ):
        expr.evaluate({"red": big, "nir": big})
    lazy = xr.DataArray(da.ones((100, 100), chunks=(25, 25)))
    assert expr.evaluate({"red": lazy, "nir": lazy}).shape == (100, 100)
