"""Build, push, pull, copy and inspect WebAssembly modules stored as OCI images.

    import wasm_image

    img = wasm_image.pull("127.0.0.1:5000/filters/add-header:v1")
    img.module            # the Wasm module, bytes
    img.manifest_digest   # "sha256:…"

Locations name registries (``HOST[:PORT]/REPO[:TAG][@sha256:…]``), OCI layout
directories (``oci:DIR[:TAG]``), ``oci-archive:FILE[:TAG]`` and ``docker-archive:FILE``.
Every error is a ``WasmImageError`` subclass carrying ``.kind``.

The work is done by the native core library; this package only gives it Python names.
"""

from __future__ import annotations

import logging as _logging

from wasm_image._errors import (
    CancelledError,
    DigestMismatchError,
    ForbiddenError,
    InternalError,
    SignatureInvalidError,
    InvalidArgumentError,
    InvalidFormatError,
    InvalidReferenceError,
    IoError,
    LimitExceededError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    RegistryError,
    TimeoutError,
    UnauthorizedError,
    WasmImageError,
)
from wasm_image._native import (
    Cache,
    CachedEntry,
    CacheStats,
    CancelToken,
    Client,
    ImageInfo,
    Limits,
    ModuleFacts,
    ProgressEvent,
    RuntimeConfig,
    SigningKey,
    Trust,
    WasmImage,
    __version__,
    build,
    copy,
    fetch,
    FetchEntry,
    GcReport,
    module_facts,
    pull,
    pull_to_file,
    push,
    resolve,
)

# Log records from the core go to the logger "wasm_image"; like any library, show them
# only when the application configures logging.
_logging.getLogger("wasm_image").addHandler(_logging.NullHandler())

__all__ = [
    "__version__",
    # operations (on a default client)
    "pull",
    "pull_to_file",
    "build",
    "push",
    "copy",
    "resolve",
    "module_facts",
    "fetch",
    # types
    "Client",
    "Limits",
    "CancelToken",
    "WasmImage",
    "ImageInfo",
    "RuntimeConfig",
    "SigningKey",
    "Trust",
    "ModuleFacts",
    "ProgressEvent",
    # control-plane fetch and cache
    "Cache",
    "FetchEntry",
    "CacheStats",
    "CachedEntry",
    "GcReport",
    # errors
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
