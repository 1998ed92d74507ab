"""cmhash: reproducible noisy-label cross-modal hashing (NRCH, SCBCH, DCGMH and baselines)."""

__version__ = "0.1.0"
