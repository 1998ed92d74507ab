"""Hashing methods, registered by name. Importing this package registers all of them."""
from cmhash.methods import baseline  # noqa: F401  (registers)
from cmhash.methods import nrch  # noqa: F401
from cmhash.methods import dcgmh  # noqa: F401
from cmhash.methods import scbch  # noqa: F401
from cmhash.methods.base import CROSSMODAL, FUSED, Batch, HashingMethod, Selection, TrainView
from cmhash.methods.registry import METHODS, get_method, register, resolve_hparams

__all__ = ["CROSSMODAL", "FUSED", "Batch", "HashingMethod", "Selection", "TrainView", "METHODS",
           "get_method", "register", "resolve_hparams"]
