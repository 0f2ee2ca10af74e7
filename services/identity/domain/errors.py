"""Identity's domain errors, each a kind the gRPC edge maps to one status."""

from services.runtime.errors import (
    AlreadyExists,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unauthenticated,
)

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


class PrincipalNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no user or service account with this id in this account")


class UnknownPermissions(InvalidInput):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"unknown permissions: {', '.join(sorted(names))}")


class ServiceOnlyPermissions(InvalidInput):
    def __init__(self, names: list[str]) -> None:
        super().__init__(
            f"service-only permissions cannot be in a role: {', '.join(sorted(names))}"
        )


class RoleNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("role not found in this account")


class RoleExists(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(f"a role named {name!r} already exists in this account")


class PresetRoleReadOnly(PreconditionFailed):
    def __init__(self) -> None:
        super().__init__("preset roles cannot be changed or deleted; clone one instead")


class RoleInUse(PreconditionFailed):
    def __init__(self, grants: int, rules: int) -> None:
        super().__init__(
            f"the role is still granted ({grants} grants, {rules} domain rules); revoke them first"
        )


class GrantNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("role grant not found in this account")


class LastAdmin(PreconditionFailed):
    def __init__(self) -> None:
        super().__init__("this is the last admin of the account; make someone else admin first")


class LoginLocked(Unauthenticated):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            f"too many failed sign-ins for this email; try again in {retry_after_seconds} s"
        )
        self.retry_after_seconds = retry_after_seconds


class InvalidRefreshToken(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("the refresh token is invalid, expired or revoked")


class InvalidApiKey(Unauthenticated):
    def __init__(self) -> None:
        super().__init__("the API key is invalid, expired or revoked")


class NotAMember(Forbidden):
    def __init__(self) -> None:
        super().__init__("not an active member of that account")


class EmailTaken(AlreadyExists):
    def __init__(self) -> None:
        super().__init__("another user already has this email")


class SharedProfile(PreconditionFailed):
    def __init__(self) -> None:
        super().__init__(
            "the user also belongs to other accounts; its email and name are its own to change"
        )


class ServiceAccountNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("service account not found in this account")


class ApiKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("API key not found")


class PermissionsNotHeld(InvalidInput):
    def __init__(self, names: list[str]) -> None:
        super().__init__(
            "an API key can only hold its owner's permissions; not held: "
            + ", ".join(sorted(names))
        )


class InvalidDomain(InvalidInput):
    pass


class DomainNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("domain not found in this account")


class DomainRuleNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("domain rule not found in this account")
