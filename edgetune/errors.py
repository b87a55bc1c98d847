"""One exception type for every user-facing failure.

The CLI turns an `EdgetuneError` into a one-line message and a non-zero exit, so raising it (with the
file, node or value at fault named in the message) is how any module reports bad input.
"""


class EdgetuneError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback."""

    exit_code = 2


class UnsupportedModelError(EdgetuneError):
    """The model uses an op, attribute or shape edgetune cannot run."""
