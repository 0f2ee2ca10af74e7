"""How much a drop zone may hold and how big one file may be, by the account's tier."""

from dataclasses import dataclass, replace
from enum import StrEnum

from services.runtime.errors import InvalidInput, PreconditionFailed


class Tier(StrEnum):
    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


def parse_tier(tier: str) -> Tier:
    try:
        return Tier(tier)
    except ValueError:
        raise InvalidInput(f"unknown tier {tier!r}") from None


class LimitExceeded(PreconditionFailed):
    """An upload would go past a quota or the tier's file size; the message names the limit."""


@dataclass(frozen=True)
class Quota:
    """At most `max_bytes` bytes and `max_files` files in a drop zone; None means no limit."""

    max_bytes: int | None = None
    max_files: int | None = None

    def __post_init__(self) -> None:
        for value, what in ((self.max_bytes, "quota_bytes"), (self.max_files, "quota_files")):
            if value is not None and value <= 0:
                raise InvalidInput(f"{what} must be positive (or 0 for no limit)")


@dataclass(frozen=True)
class Usage:
    """What a drop zone holds now."""

    files: int
    bytes: int


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may still grow to: the tier's file size and the zone's quota left."""

    tier: Tier
    max_file_bytes: int
    quota: Quota
    usage: Usage

    def check_new_file(self) -> None:
        """Opening another upload: refused when the zone already holds its quota of files."""
        if self.quota.max_files is not None and self.usage.files >= self.quota.max_files:
            raise LimitExceeded(
                f"the drop zone's file quota of {self.quota.max_files} files is reached"
            )

    def check_size(self, size_bytes: int) -> None:
        """An upload of `size_bytes`: refused past the tier's file size or the byte quota."""
        if size_bytes > self.max_file_bytes:
            raise LimitExceeded(
                f"the {self.tier.value} tier's maximum file size of"
                f" {self.max_file_bytes} bytes is exceeded"
            )
        limit = self.quota.max_bytes
        if limit is not None and self.usage.bytes + size_bytes > limit:
            raise LimitExceeded(
                f"the drop zone's byte quota of {self.quota.max_bytes} bytes would be exceeded"
            )

    def check_upload(self, size_bytes: int) -> None:
        self.check_new_file()
        self.check_size(size_bytes)

    def after(self, size_bytes: int) -> "UploadLimits":
        """The limits once a file of `size_bytes` was added to the zone."""
        usage = Usage(files=self.usage.files + 1, bytes=self.usage.bytes + size_bytes)
        return replace(self, usage=usage)
