"""Hashing methods, registered by name. Importing this package registers all of them, then the
methods other packages declare under the entry-point group ``cmhash.methods`` (:func:`load_plugins`)."""
from cmhash.methods import (
           baseline,  # noqa: F401  (registers)
           dcgmh,  # noqa: F401
           dchuc,  # noqa: F401
           dcmh,  # noqa: F401
           dgcpn,  # noqa: F401
           djsrh,  # noqa: F401
           nrch,  # noqa: F401
           rshnl,  # noqa: F401
           scbch,  # noqa: F401
           ucch,  # noqa: F401
)
from cmhash.methods.base import (
           CROSSMODAL,
           FUSED,
           Batch,
           CellNeeds,
           HashingMethod,
           PaperSelection,
           Selection,
           TrainView,
)
from cmhash.methods.hparams import HParam
from cmhash.methods.registry import (
           ENTRY_POINT_GROUP,
           METHODS,
           PLUGIN_ERRORS,
           PLUGINS,
           get_method,
           load_plugins,
           register,
           resolve_hparams,
)

__all__ = [
           "CROSSMODAL",
           "ENTRY_POINT_GROUP",
           "FUSED",
           "METHODS",
           "PLUGINS",
           "PLUGIN_ERRORS",
           "Batch",
           "CellNeeds",
           "HParam",
           "HashingMethod",
           "PaperSelection",
           "Selection",
           "TrainView",
           "get_method",
           "load_plugins",
           "register",
           "resolve_hparams",
]

load_plugins()  # after the built-ins: a plugin module may import from this package
