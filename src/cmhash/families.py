"""The published benchmarks, by one name everywhere: methods' per-dataset hyper-parameters, the
data sources (each declares which benchmark it is) and the report's comparison with published
tables all use these names.

The names are those of NRCH's published table (``../shared/paper_results.csv``:
``mirflickr25k``, ``nuswide21``, ``mscoco``, ``iaprtc12``) plus ``nuswide10`` (NUS-WIDE TC-10,
used by UCCH and DJSRH) and ``wikipedia``. A dataset's family comes from its source, never from
the name a user gives it in the config, so ``datasets: {coco: {source: mscoco2014}}`` and
``datasets: {x: {source: mscoco_ucch}}`` both take the published MS-COCO values. A source that is
none of them (the generated ``embedded`` set) has family ``None`` and borrows the
:data:`FALLBACK_FAMILY` values, logged as borrowed.
"""
from __future__ import annotations

FAMILIES: tuple[str, ...] = ("mirflickr25k", "nuswide21", "nuswide10", "mscoco", "iaprtc12", "wikipedia")
#: Whose published values a dataset of no published family (or one a method does not publish) borrows.
FALLBACK_FAMILY = "mirflickr25k"


def check_family(family: str | None, where: str) -> str | None:
    """``family`` itself if it is ``None`` or one of :data:`FAMILIES`; ValueError naming ``where``."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"{where}: benchmark family {family!r} is not one of {FAMILIES}")
    return family


__all__ = ["FALLBACK_FAMILY", "FAMILIES", "check_family"]
