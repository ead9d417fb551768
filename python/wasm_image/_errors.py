"""Exceptions raised by wasm_image: one class per error kind of the core library.

The native module looks classes up in ``_BY_KIND`` by the kind's contract name
(``NOT_FOUND``, …) and raises them with the core's message; nothing here decides
anything about an error, it only gives each kind a Python name.
"""

from __future__ import annotations

import builtins
from typing import ClassVar, Dict, Optional, Type

__all__ = [
    "WasmImageError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "NotFoundError",
    "UnauthorizedError",
    "ForbiddenError",
    "RateLimitedError",
    "InvalidFormatError",
    "DigestMismatchError",
    "LimitExceededError",
    "NetworkError",
    "TimeoutError",
    "CancelledError",
    "IoError",
    "RegistryError",
    "InternalError",
    "SignatureInvalidError",
]


class WasmImageError(Exception):
    """Base class of every error wasm_image raises.

    ``kind`` is the error kind's contract name (``"NOT_FOUND"``, …), the same in the C
    and Go bindings. When a registry answered, ``status`` is its HTTP status and
    ``code`` the distribution error code it sent (``"MANIFEST_UNKNOWN"``, …), if any.
    """

    kind: ClassVar[str] = ""
    message: str
    status: Optional[int]
    code: Optional[str]

    def __init__(self, message: str, status: Optional[int] = None, code: Optional[str] = None) -> None:
        # args holds only the message: OSError subclasses below give meaning to more args.
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> "tuple[type, tuple[str, Optional[int], Optional[str]]]":
        return (type(self), (self.message, self.status, self.code))


class InvalidArgumentError(WasmImageError, ValueError):
    """An argument was wrong (an unknown variant, a bad option value, …)."""

    kind = "INVALID_ARGUMENT"


class InvalidReferenceError(WasmImageError, ValueError):
    """A location string does not parse."""

    kind = "INVALID_REFERENCE"


class NotFoundError(WasmImageError):
    """No image, tag, blob or file where the location points."""

    kind = "NOT_FOUND"


class UnauthorizedError(WasmImageError):
    """The registry wants credentials (HTTP 401): none were found, or they were rejected."""

    kind = "UNAUTHORIZED"


class ForbiddenError(WasmImageError):
    """The credentials are valid but not allowed to do this (HTTP 403)."""

    kind = "FORBIDDEN"


class RateLimitedError(WasmImageError):
    """The registry kept answering 429 Too Many Requests."""

    kind = "RATE_LIMITED"


class InvalidFormatError(WasmImageError):
    """Not a Wasm image: malformed manifest or config, no module found, not Wasm bytes."""

    kind = "INVALID_FORMAT"


class DigestMismatchError(WasmImageError):
    """Content does not match the digest or size that names it."""

    kind = "DIGEST_MISMATCH"


class LimitExceededError(WasmImageError):
    """Something is larger than a configured limit (see ``wasm_image.Limits``)."""

    kind = "LIMIT_EXCEEDED"


class NetworkError(WasmImageError, builtins.ConnectionError):
    """The connection failed (refused, reset, DNS, TLS)."""

    kind = "NETWORK"


class TimeoutError(WasmImageError, builtins.TimeoutError):  # noqa: A001 - named after the kind
    """Connecting or waiting for data took longer than the configured timeout.

    Also a ``builtins.TimeoutError``, so ``except TimeoutError`` code keeps working.
    """

    kind = "TIMEOUT"


class CancelledError(WasmImageError):
    """The operation was cancelled."""

    kind = "CANCELLED"


class IoError(WasmImageError, builtins.OSError):
    """A local file or directory could not be read or written."""

    kind = "IO"


class RegistryError(WasmImageError):
    """Any other error a registry answered with; see ``status`` and ``code``."""

    kind = "REGISTRY"


class InternalError(WasmImageError):
    """A bug in wasm_image (for example a caught panic); please report it."""

    kind = "INTERNAL"


class SignatureInvalidError(WasmImageError):
    """A verification policy applies and no signature satisfied it.

    No signature was found, or none verified with the trusted keys or certificate
    identity, or the signed payload names another digest or repository. Nothing was
    returned, written or cached.
    """

    kind = "SIGNATURE_INVALID"


_BY_KIND: Dict[str, Type[WasmImageError]] = {
    cls.kind: cls
    for cls in (
        InvalidArgumentError,
        InvalidReferenceError,
        NotFoundError,
        UnauthorizedError,
        ForbiddenError,
        RateLimitedError,
        InvalidFormatError,
        DigestMismatchError,
        LimitExceededError,
        NetworkError,
        TimeoutError,
        CancelledError,
        IoError,
        RegistryError,
        InternalError,
        SignatureInvalidError,
    )
}
