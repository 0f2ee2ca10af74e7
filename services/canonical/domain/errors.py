"""Errors of the canonical domain, each a kind the gRPC edge maps to one status."""

from services.runtime.errors import InvalidInput, NotFound, PreconditionFailed


class UnknownCanonicalSchema(NotFound):
    """No canonical schema has this name."""


class InvalidSourceSchema(InvalidInput):
    """A source schema definition breaks one or more rules; the message lists every problem."""


class FileFormatError(InvalidInput):
    """A file cannot be read as the source schema says (encoding, quoting, header)."""


class InvalidDedupeKeyPart(InvalidInput):
    """A part of a dedupe key is empty."""


class UndecryptableValue(PreconditionFailed):
    """A stored value does not decrypt with the key and binding given."""
