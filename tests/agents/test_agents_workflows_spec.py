"""Workflow specs are refused before anything runs, naming the path; module registry
records are signed, owner-only, and a refused record changes nothing stored."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gravitas.agents.modules.builtin import builtin_modules
from gravitas.agents.modules.errors import LifecycleError, ModuleError
from gravitas.agents.modules.model import Module, split_ref
from gravitas.agents.modules.registry import (
    ModuleCatalog,
    ModuleRegistry,
    change_lifecycle,
    record_for,
)
from gravitas.agents.signing import NodeIdentity, OwnerMismatchError, SignatureError
from gravitas.agents.workflows.errors import SpecError
from gravitas.agents.workflows.shipped import template_names, template_spec
from gravitas.agents.workflows.spec import validate
from gravitas.schemas.settings import load_settings

CATALOG = ModuleCatalog(builtin_modules())


def ensemble() -> dict[str, Any]:
    return {
        "name": "ens",
        "version": "1.0.0",
        "params": {"members": {"type": "array", "default": [0, 1]}},
        "steps": {
            "down": {
                "module": "downscale@1.0.0",
                "for_each": "${params.members}",
                "as": "m",
                "inputs": {"member": "${m}"},
            },
            "q": {"module": "quantiles@1.0.0", "inputs": {"values": "${steps.down.outputs.mean}"}},
        },
    }


def test_a_good_spec_is_ordered_by_its_data() -> None:
    plan = validate(ensemble(), CATALOG)
    assert plan.order == ["down", "q"]
    assert plan.deps == {"down": set(), "q": {"down"}}


@pytest.mark.parametrize(
    ("mutate", "path", "words"),
    [
        (lambda s: s.pop("version"), "(top)", "'version' is a required property"),
        (lambda s: s["steps"]["q"].update(bogus=1), "steps.q", "bogus"),
        (lambda s: s["steps"]["q"].update(module="quantiles"), "steps.q.module", "does not match"),
        (lambda s: s["steps"]["q"].update(module="nope@1.0.0"), "steps.q.module", "unknown module"),
        (
            lambda s: s["steps"]["q"].update(module="quantiles@9.0.0"),
            "steps.q.module",
            "no version '9.0.0'; known: 1.0.0",
        ),
        (
            lambda s: s["steps"]["down"]["inputs"].update(seed="${steps.q.outputs.count}"),
            "steps.down.inputs.seed",
            "cycle: down -> q -> down",
        ),
        (
            lambda s: s["steps"]["q"]["inputs"].update(values="${steps.q2.outputs.x}"),
            "steps.q.inputs.values",
            "unknown step 'q2'",
        ),
        (
            lambda s: s["steps"]["q"]["inputs"].update(values="${params.nope}"),
            "steps.q.inputs.values",
            "unknown parameter 'nope'",
        ),
        (
            lambda s: s["steps"]["q"]["inputs"].update(values="${steps.down.outputs.nope}"),
            "steps.q.inputs.values",
            "has no output 'nope'",
        ),
        (
            lambda s: s["steps"]["down"]["inputs"].update(seed="${steps.q.outputs.quantiles}"),
            "steps.down.inputs.seed",
            "is object but downscale@1.0.0 input 'seed' takes integer",
        ),
        (
            lambda s: s["steps"]["q"].update(
                repeat={"until": {"output": "count", "op": ">", "value": 3}}
            ),
            "steps.q.repeat",
            "'max' is a required property",
        ),
        (
            lambda s: s["steps"]["q"].update(
                repeat={"until": {"output": "count", "op": ">", "value": 3}, "max": 100000}
            ),
            "steps.q.repeat.max",
            "is greater than the maximum of 1000",
        ),
        (
            lambda s: s["steps"]["q"]["inputs"].update(values="${os.system}"),
            "steps.q.inputs.values",
            "names nothing",
        ),
        (lambda s: s["steps"]["q"]["inputs"].pop("values"), "steps.q.inputs", "needs ['values']"),
        (
            lambda s: s["steps"]["q"]["inputs"].update(extra=1),
            "steps.q.inputs.extra",
            "has no input 'extra'",
        ),
        (  # an agent module's step is checked against the agent's inputs
            lambda s: s["steps"]["q"].update(module="methane@1.0.0"),
            "steps.q.inputs.values",
            "methane@1.0.0 has no input 'values'",
        ),
    ],
)
def test_bad_specs_are_refused_naming_the_path(mutate: Any, path: str, words: str) -> None:
    spec = ensemble()
    mutate(spec)
    with pytest.raises(SpecError) as err:
        validate(spec, CATALOG)
    assert err.value.path == path, str(err.value)
    assert words in str(err.value)


def test_the_templates_validate() -> None:
    assert set(template_names()) == {
        "stageiv-exceedance",
        "era5-ensemble",
        "flood-screening",
        "methane-survey",
    }
    for name in template_names():
        validate(template_spec(name), CATALOG)


def test_module_versions_are_semantic() -> None:
    with pytest.raises(ModuleError, match="'latest' is not a semantic version"):
        split_ref("downscale@latest")
    with pytest.raises(ValueError, match="version"):
        Module.model_validate({**builtin_modules()[0].model_dump(), "version": "v-one"})


def _identity(tmp: Path, node: str) -> NodeIdentity:
    return NodeIdentity.load(load_settings(data_dir=tmp / node, node_id=node))


def test_registry_accepts_signed_owner_changes_and_refuses_forgeries(tmp_path: Path) -> None:
    a, b = _identity(tmp_path, "node-a"), _identity(tmp_path, "node-b")
    keys = {"node-a": a.public_key, "node-b": b.public_key}
    reg = ModuleRegistry(tmp_path / "modules.sqlite")
    mod = builtin_modules()[6]  # flood-screen
    rec = record_for(mod.model_copy(update={"lifecycle": "draft"}), a)
    assert reg.apply(rec, keys) is True
    assert reg.apply(rec, keys) is False  # a replay changes nothing
    before = [r.model_dump() for r in reg.records()]

    unsigned = rec.model_copy(update={"signature": None})
    with pytest.raises(SignatureError, match="unsigned"):
        reg.apply(unsigned, keys)
    altered = rec.model_copy(update={"module": {**rec.module, "target": "os:system"}})
    with pytest.raises(SignatureError, match="does not verify"):
        reg.apply(altered, keys)
    stolen = record_for(mod, b, revision=5)  # node-b signs a change of node-a's module
    with pytest.raises(OwnerMismatchError, match="owned by node 'node-a'"):
        reg.apply(stolen, keys)
    with pytest.raises(OwnerMismatchError):
        change_lifecycle(rec, "deprecated", b)
    assert [r.model_dump() for r in reg.records()] == before  # nothing stored changed

    published = change_lifecycle(rec, "published", a)
    deprecated = change_lifecycle(published, "deprecated", a)
    assert reg.apply(deprecated, keys) is True
    assert reg.apply(published, keys) is False  # an older revision never wins
    assert reg.modules()[0].lifecycle == "deprecated"
    with pytest.raises(LifecycleError, match="cannot go back to draft"):
        change_lifecycle(deprecated, "draft", a)
    reg.close()


def test_deprecated_module_validates_with_a_warning() -> None:
    mods = [
        m.model_copy(update={"lifecycle": "deprecated"}) if m.name == "quantiles" else m
        for m in builtin_modules()
    ]
    plan = validate(copy.deepcopy(ensemble()), ModuleCatalog(mods))
    assert plan.warnings == ["step q: module quantiles@1.0.0 is deprecated"]
