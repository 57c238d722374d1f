"""The one exception type that reaches the user as a short message instead of a traceback."""


class EsslError(Exception):
    """Bad input or a state the user can fix: the CLI prints the message and exits with status 2."""
