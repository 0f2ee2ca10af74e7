"""Domain errors, each a kind the gRPC edge maps to one status."""

from services.runtime.errors import InvalidInput, PreconditionFailed


class InvalidSlug(InvalidInput):
    pass


class InvalidTier(InvalidInput):
    pass


class InvalidTransition(PreconditionFailed):
    """The account's status does not allow the change asked for."""
