"""Declared hyper-parameters (issue 16): one declaration per method, read by the resolution, the
config check, the method itself, the README tables and ``validate-config --show``."""
import json
from pathlib import Path

import pytest

from cmhash.families import FAMILIES
from cmhash.methods import get_method, resolve_hparams

SNAPSHOT = Path(__file__).parent / "data" / "hparams_snapshot.json"
BUILTIN = ("baseline", "dcgmh", "dcmh", "dgcpn", "djsrh", "nrch", "scbch", "ucch")


def test_resolved_values_bit_identical_to_the_snapshot_before_the_declarations():
    """Every method x family resolves to exactly the values (type and repr) and provenance it
    resolved to before the declarative rewrite (tests/data/hparams_snapshot.json)."""
    snapshot = json.loads(SNAPSHOT.read_text())
    now = {}
    for method in BUILTIN:
        for family in (None, *FAMILIES):
            hp, src = resolve_hparams(method, family)
            now[f"{method}/{family}"] = {k: [repr(v), src[k]] for k, v in hp.items()}
    assert now == snapshot


@pytest.mark.parametrize("method", BUILTIN)
def test_every_builtin_hyper_parameter_is_declared_with_a_source(method):
    cls = get_method(method)
    assert [p.name for p in cls.hyperparameters] == list(cls.defaults)
    for p in cls.hyperparameters:
        assert p.kind != "any" and p.source, (method, p.name)
        assert not p.per_family or p.family_source or p.source
