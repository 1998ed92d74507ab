"""Exceptions raised on bad input; each message names the file or key at fault."""


class CmhashError(Exception):
    """Base class of every error cmhash raises deliberately."""


class ConfigError(CmhashError, ValueError):
    """A configuration key is missing, unknown or out of range."""


class DataError(CmhashError, ValueError):
    """An input file is missing, truncated, malformed or holds invalid values."""
