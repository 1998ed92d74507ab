"""Hashing methods, registered by name. Importing this package registers all of them."""
from cmhash.methods import (
           baseline,  # noqa: F401  (registers)
           dcgmh,  # noqa: F401
           dcmh,  # noqa: F401
           dgcpn,  # noqa: F401
           djsrh,  # noqa: F401
           nrch,  # noqa: F401
           scbch,  # noqa: F401
           ucch,  # noqa: F401
)
from cmhash.methods.base import (
           CROSSMODAL,
           FUSED,
           Batch,
           CellNeeds,
           HashingMethod,
           Selection,
           TrainView,
)
from cmhash.methods.registry import METHODS, get_method, register, resolve_hparams

__all__ = [
           "CROSSMODAL",
           "FUSED",
           "METHODS",
           "Batch",
           "CellNeeds",
           "HashingMethod",
           "Selection",
           "TrainView",
           "get_method",
           "register",
           "resolve_hparams",
]
