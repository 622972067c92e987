"""Exceptions for bad input.

Library code raises these when a user gave something wrong (a missing file, an impossible
argument). The CLI turns them into one line on stderr and exit code 2; everything else is a bug
and keeps its traceback.
"""


class UserInputError(ValueError):
    """Something the user supplied is wrong; the message says what and what to do instead."""


class FormatError(UserInputError):
    """A file is not in the expected format, or is truncated or corrupt."""


class UnsafePickleError(FormatError):
    """A pickle references a global outside the allowed set; nothing from it was executed."""


class UnsupportedNetworkError(FormatError):
    """A snapshot holds a network class this package does not implement."""
