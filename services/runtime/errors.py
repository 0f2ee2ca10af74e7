"""Errors the service layers raise; the gRPC edge maps each kind to one status, once."""


class CanopyError(Exception):
    """Base of every expected, user-facing error."""


class NotFound(CanopyError):
    pass


class AlreadyExists(CanopyError):
    pass


class InvalidInput(CanopyError):
    pass


class PreconditionFailed(CanopyError):
    pass


class Forbidden(CanopyError):
    pass


class Unauthenticated(CanopyError):
    pass
