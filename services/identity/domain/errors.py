"""Identity's domain errors, each a kind the gRPC edge maps to one status."""

from services.runtime.errors import InvalidInput, NotFound, Unauthenticated

INVALID_CREDENTIALS = "invalid email or password"


class InvalidCredentials(Unauthenticated):
    """Unknown email or wrong password: one message, so neither is revealed."""

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class UserDeactivated(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("this user is deactivated")


class InvalidEmail(InvalidInput):
    pass


class InvalidDisplayName(InvalidInput):
    pass


class WeakPassword(InvalidInput):
    pass


class UnknownRole(InvalidInput):
    def __init__(self, name: str) -> None:
        super().__init__(f"no role named {name!r} in this account")


class UserNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("user not found in this account")
