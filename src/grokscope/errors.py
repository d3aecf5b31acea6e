"""Errors that the CLI turns into one readable line and exit status 2."""


class GrokscopeError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(GrokscopeError):
    """An invalid run, sweep or reproduction config."""


class RunFolderError(GrokscopeError):
    """A run folder that is missing, locked by another writer, or not resumable."""
