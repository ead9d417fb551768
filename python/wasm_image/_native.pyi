# Type stubs for the native module. Checked against it by `python -m mypy.stubtest`.
import os
import pathlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Optional, Union, final

__version__: str
__all__ = [
    "__version__",
    "Cache",
    "CacheStats",
    "CachedEntry",
    "CancelToken",
    "Client",
    "FetchEntry",
    "GcReport",
    "ImageInfo",
    "Limits",
    "ModuleFacts",
    "ProgressEvent",
    "RuntimeConfig",
    "SigningKey",
    "Trust",
    "WasmImage",
    "build",
    "copy",
    "fetch",
    "module_facts",
    "pull",
    "pull_to_file",
    "push",
    "resolve",
    "run_cli",
]

_Path = Union[str, os.PathLike[str]]
_Policy = Union[Literal["if-not-present", "always", "never", "IfNotPresent", "Always", "Never"], str]
_Progress = Callable[[ProgressEvent], object]
_Verify = Union[Trust, Literal[False]]

@final
class Trust:
    """Whose cosign signatures to accept: public keys (PEM bytes or paths; ECDSA P-256
    as ``cosign generate-key-pair`` writes ``cosign.pub``, or Ed25519), and/or keyless
    signatures checked offline against ``fulcio_roots`` (PEM certificates) and
    ``rekor_keys`` (PEM public keys) for a certificate identity (``issuer`` or
    ``issuer_regex``, ``subject`` or ``subject_regex``, matched against the whole
    value); optionally the repository (``HOST/NAME``) the signed payload must name."""

    def __new__(
        cls,
        keys: Sequence[Union[bytes, _Path]] = ...,
        *,
        repository: Optional[str] = None,
        fulcio_roots: Optional[Union[bytes, _Path]] = None,
        rekor_keys: Optional[Union[bytes, _Path]] = None,
        issuer: Optional[str] = None,
        subject: Optional[str] = None,
        issuer_regex: Optional[str] = None,
        subject_regex: Optional[str] = None,
    ) -> Trust: ...
    @property
    def fingerprints(self) -> list[str]:
        """The keys' fingerprints: the first 16 hex digits of each SPKI's SHA-256."""
    @property
    def repository(self) -> Optional[str]:
        """The repository (``HOST/NAME``) the signed payload must name, or None for any."""

@final
class SigningKey:
    """A private key that signs pushed images the way ``cosign sign`` does: PEM bytes or
    a path, unencrypted PKCS#8 (ECDSA P-256 or Ed25519) or cosign's encrypted
    ``cosign.key``, opened with ``password``, else the environment variable
    ``password_env`` names, else ``COSIGN_PASSWORD`` as cosign does. Never printed."""

    def __new__(
        cls, key: Union[bytes, _Path], *, password: Optional[bytes] = None, password_env: Optional[str] = None
    ) -> SigningKey: ...
    @property
    def fingerprint(self) -> str:
        """The fingerprint of the matching public key."""

@final
class CancelToken:
    def __new__(cls) -> CancelToken: ...
    def cancel(self) -> None: ...
    @property
    def cancelled(self) -> bool: ...

@final
class ProgressEvent:
    @property
    def digest(self) -> str: ...
    @property
    def media_type(self) -> str: ...
    @property
    def done(self) -> int: ...
    @property
    def total(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class RuntimeConfig:
    @property
    def type(self) -> Optional[str]: ...
    @property
    def abi_versions(self) -> list[str]: ...
    @property
    def root_ids(self) -> list[str]: ...
    @property
    def raw(self) -> dict[str, Any]: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class ModuleFacts:
    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def imports(self) -> list[str]: ...
    @property
    def exports(self) -> list[str]: ...
    @property
    def proxy_abi_versions(self) -> list[str]: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class ImageInfo:
    @property
    def variant(self) -> str: ...
    @property
    def module_digest(self) -> str: ...
    @property
    def module_size(self) -> int: ...
    @property
    def manifest_digest(self) -> str: ...
    @property
    def manifest_media_type(self) -> str: ...
    @property
    def index_digest(self) -> Optional[str]: ...
    @property
    def runtime_config(self) -> Optional[RuntimeConfig]: ...
    @property
    def annotations(self) -> dict[str, str]: ...
    @property
    def manifest(self) -> bytes: ...
    @property
    def config(self) -> bytes: ...

@final
class WasmImage:
    @property
    def module(self) -> bytes: ...
    @property
    def variant(self) -> str: ...
    @property
    def module_digest(self) -> str: ...
    @property
    def module_size(self) -> int: ...
    @property
    def manifest_digest(self) -> str: ...
    @property
    def manifest_media_type(self) -> str: ...
    @property
    def index_digest(self) -> Optional[str]: ...
    @property
    def runtime_config(self) -> Optional[RuntimeConfig]: ...
    @property
    def annotations(self) -> dict[str, str]: ...
    @property
    def manifest(self) -> bytes: ...
    @property
    def config(self) -> bytes: ...
    def facts(self) -> ModuleFacts: ...

@final
class Limits:
    def __new__(
        cls,
        *,
        max_module_bytes: Optional[int] = None,
        max_metadata_bytes: Optional[int] = None,
        max_decompressed_bytes: Optional[int] = None,
        max_tar_entries: Optional[int] = None,
        max_index_depth: Optional[int] = None,
        max_index_entries: Optional[int] = None,
    ) -> Limits:
        """Bounds on what an image may make a client read; an argument left out keeps
        the library's default. Exceeding one fails a call with ``LIMIT_EXCEEDED``.

        max_module_bytes: the largest module (default 268435456, 256 MiB).
        max_metadata_bytes: the largest manifest, index or config (default 4194304, 4 MiB).
        max_decompressed_bytes: bytes decompressed from one layer (default 1073741824, 1 GiB).
        max_tar_entries: tar entries looked at in one layer (default 10000).
        max_index_depth: indexes pointing at further indexes (default 4).
        max_index_entries: entries in one index (default 1000).
        """
    @property
    def max_module_bytes(self) -> int: ...
    @property
    def max_metadata_bytes(self) -> int: ...
    @property
    def max_decompressed_bytes(self) -> int: ...
    @property
    def max_tar_entries(self) -> int: ...
    @property
    def max_index_depth(self) -> int: ...
    @property
    def max_index_entries(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...

@final
class Client:
    def __new__(
        cls,
        *,
        credentials: Optional[Mapping[str, Union[tuple[str, str], str]]] = None,
        docker_config: Optional[bytes] = None,
        use_config_files: Optional[bool] = None,
        insecure: Optional[Sequence[str]] = None,
        ca_certs: Optional[Sequence[Union[bytes, _Path]]] = None,
        connect_timeout: Optional[float] = None,
        read_timeout: Optional[float] = None,
        retries: Optional[int] = None,
        retry_base_delay: Optional[float] = None,
        retry_max_delay: Optional[float] = None,
        call_timeout: Optional[float] = None,
        limits: Optional[Limits] = None,
        mirrors: Optional[Mapping[str, Sequence[str]]] = None,
        platform: Optional[str] = None,
        user_agent: Optional[str] = None,
        progress: Optional[_Progress] = None,
        cache: Optional[Cache] = None,
        verify: Optional[Mapping[str, Optional[Trust]]] = None,
    ) -> Client:
        """A client: options shared by its calls, and its connections and caches. An
        argument left out keeps the library's default.

        use_config_files: read docker/podman credential files (default True).
        connect_timeout: seconds to wait for a connection (default 10).
        read_timeout: seconds to wait for the next bytes of a response (default 30).
        retries: retries after a failed request: 429, 5xx, broken connections (default 3).
        retry_base_delay: seconds of the first back-off wait, doubled each retry (default 0.2).
        retry_max_delay: cap in seconds of one back-off wait or Retry-After (default 30).
        call_timeout: seconds one call may take in all, retries included, before it fails
        with TimeoutError (read_timeout bounds each wait for bytes; this bounds the whole);
        no bound unless given.
        verify: the verification policy: location patterns (``"ghcr.io/acme/*"``,
        ``"oci:*"``; ``*`` matches anything) to the :class:`Trust` a cosign signature must
        satisfy before pull or fetch returns or caches a module, or to None to exempt
        them. The most specific matching pattern decides; unmatched locations need no
        signature. A failure raises SignatureInvalidError and writes nothing.
        """
    @property
    def limits(self) -> Limits: ...
    @property
    def cache(self) -> Cache: ...
    def fetch(
        self,
        location: str,
        *,
        policy: Optional[_Policy] = None,
        expected_digest: Optional[str] = None,
        stale_on_error: Optional[bool] = None,
        platform: Optional[str] = None,
        progress: Optional[_Progress] = None,
        cancel: Optional[CancelToken] = None,
        verify: Optional[_Verify] = None,
    ) -> FetchEntry: ...
    def fetch_async(
        self,
        location: str,
        *,
        policy: Optional[_Policy] = None,
        expected_digest: Optional[str] = None,
        stale_on_error: Optional[bool] = None,
        platform: Optional[str] = None,
        progress: Optional[_Progress] = None,
        verify: Optional[_Verify] = None,
    ) -> Awaitable[FetchEntry]: ...
    def pull(
        self,
        location: str,
        *,
        platform: Optional[str] = None,
        progress: Optional[_Progress] = None,
        cancel: Optional[CancelToken] = None,
        verify: Optional[_Verify] = None,
    ) -> WasmImage: ...
    def pull_async(
        self,
        location: str,
        *,
        platform: Optional[str] = None,
        progress: Optional[_Progress] = None,
        verify: Optional[_Verify] = None,
    ) -> Awaitable[WasmImage]: ...
    def pull_to_file(
        self,
        location: str,
        path: _Path,
        *,
        platform: Optional[str] = None,
        progress: Optional[_Progress] = None,
        cancel: Optional[CancelToken] = None,
        verify: Optional[_Verify] = None,
    ) -> ImageInfo: ...
    def pull_to_file_async(
        self,
        location: str,
        path: _Path,
        *,
        platform: Optional[str] = None,
        progress: Optional[_Progress] = None,
        verify: Optional[_Verify] = None,
    ) -> Awaitable[ImageInfo]: ...
    def push(
        self,
        image: WasmImage,
        location: str,
        *,
        progress: Optional[_Progress] = None,
        cancel: Optional[CancelToken] = None,
        sign_with: Optional[SigningKey] = None,
    ) -> str: ...
    def push_async(
        self,
        image: WasmImage,
        location: str,
        *,
        progress: Optional[_Progress] = None,
        sign_with: Optional[SigningKey] = None,
    ) -> Awaitable[str]: ...
    def copy(
        self,
        source: str,
        destination: str,
        *,
        progress: Optional[_Progress] = None,
        cancel: Optional[CancelToken] = None,
    ) -> str: ...
    def copy_async(
        self, source: str, destination: str, *, progress: Optional[_Progress] = None
    ) -> Awaitable[str]: ...
    def resolve(self, location: str, *, cancel: Optional[CancelToken] = None) -> str: ...
    def resolve_async(self, location: str) -> Awaitable[str]: ...

def pull(
    location: str,
    *,
    platform: Optional[str] = None,
    progress: Optional[_Progress] = None,
    cancel: Optional[CancelToken] = None,
    verify: Optional[_Verify] = None,
) -> WasmImage: ...
def pull_to_file(
    location: str,
    path: _Path,
    *,
    platform: Optional[str] = None,
    progress: Optional[_Progress] = None,
    cancel: Optional[CancelToken] = None,
    verify: Optional[_Verify] = None,
) -> ImageInfo: ...
def push(
    image: WasmImage,
    location: str,
    *,
    progress: Optional[_Progress] = None,
    cancel: Optional[CancelToken] = None,
    sign_with: Optional[SigningKey] = None,
) -> str: ...
def copy(
    source: str, destination: str, *, progress: Optional[_Progress] = None, cancel: Optional[CancelToken] = None
) -> str: ...
def resolve(location: str, *, cancel: Optional[CancelToken] = None) -> str: ...
def fetch(
    location: str,
    *,
    policy: Optional[_Policy] = None,
    expected_digest: Optional[str] = None,
    stale_on_error: Optional[bool] = None,
    platform: Optional[str] = None,
    progress: Optional[_Progress] = None,
    cancel: Optional[CancelToken] = None,
    verify: Optional[_Verify] = None,
) -> FetchEntry: ...
def run_cli(argv: list[str]) -> int:
    """Runs the ``wasm-image`` command line with ``argv`` (the program name first)."""
    ...
def build(
    module: Union[bytes, bytearray, _Path],
    *,
    variant: str = "oci",
    runtime_type: Optional[str] = None,
    abi_versions: Optional[Sequence[str]] = None,
    root_ids: Optional[Sequence[str]] = None,
    annotations: Optional[Mapping[str, str]] = None,
    manifest_format: str = "oci",
    source_date_epoch: Optional[int] = None,
) -> WasmImage: ...
def module_facts(module: Union[bytes, bytearray, _Path]) -> ModuleFacts: ...

@final
class Cache:
    def __new__(
        cls,
        dir: Optional[_Path] = None,
        max_bytes: Optional[int] = None,
        max_age: Optional[float] = None,
        tag_ttl: Optional[float] = None,
        *,
        stale_on_error: Optional[bool] = None,
        verify: Optional[bool] = None,
    ) -> Cache:
        """A module cache directory shared by threads and processes. An argument left
        out keeps the library's default.

        dir: the directory (default under $XDG_CACHE_HOME/wasm-image).
        tag_ttl: seconds a resolved tag is trusted under if-not-present (default 60).
        stale_on_error: serve the last known module when the registry is down (default False).
        verify: re-hash a module file on every hit (default False).
        """
    @property
    def dir(self) -> pathlib.Path: ...
    @property
    def max_bytes(self) -> Optional[int]: ...
    @property
    def max_age(self) -> Optional[float]: ...
    @property
    def tag_ttl(self) -> float: ...
    @property
    def stale_on_error(self) -> bool: ...
    @property
    def verify(self) -> bool: ...
    def stats(self) -> CacheStats: ...
    def entries(self) -> list[CachedEntry]: ...
    def gc(self, *, max_bytes: Optional[int] = None, max_age: Optional[float] = None) -> GcReport: ...
    def verify_all(self) -> list[str]: ...

@final
class CacheStats:
    @property
    def hits(self) -> int: ...
    @property
    def stale_hits(self) -> int: ...
    @property
    def misses(self) -> int: ...
    @property
    def bytes_downloaded(self) -> int: ...
    @property
    def evictions(self) -> int: ...

@final
class CachedEntry:
    @property
    def module_digest(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def last_used(self) -> float: ...
    @property
    def manifest_digests(self) -> list[str]: ...
    @property
    def leased(self) -> bool: ...

@final
class GcReport:
    @property
    def removed(self) -> list[str]: ...
    @property
    def freed_bytes(self) -> int: ...
    @property
    def kept_leased(self) -> int: ...
    @property
    def leftovers_removed(self) -> int: ...

@final
class FetchEntry:
    @property
    def path(self) -> pathlib.Path: ...
    @property
    def module(self) -> bytes: ...
    @property
    def module_digest(self) -> str: ...
    @property
    def manifest_digest(self) -> Optional[str]: ...
    @property
    def index_digest(self) -> Optional[str]: ...
    @property
    def variant(self) -> Optional[str]: ...
    @property
    def runtime_config(self) -> Optional[RuntimeConfig]: ...
    @property
    def annotations(self) -> dict[str, str]: ...
    @property
    def stale(self) -> bool: ...
    @property
    def size(self) -> int: ...
    @property
    def location(self) -> str: ...
    @property
    def released(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> FetchEntry: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
        /,
    ) -> Literal[False]: ...
