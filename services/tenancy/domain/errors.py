"""Domain errors, each a kind the gRPC edge maps to one status."""

from services.runtime.errors import InvalidInput, PreconditionFailed


class InvalidSlug(InvalidInput):
    pass


class InvalidTier(InvalidInput):
    pass


class InvalidTransition(PreconditionFailed):
    """The account's status does not allow the change asked for."""


class InvalidGroupType(InvalidInput):
    pass


class CycleRefused(InvalidInput):
    """A group cannot move under itself or one of its own descendants."""


class DepthLimitExceeded(PreconditionFailed):
    """The tree would grow deeper than the account allows."""


class GroupNotEmpty(PreconditionFailed):
    """A group still holding child groups or tenants is deleted only when asked recursively."""
