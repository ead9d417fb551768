"""Typed use of the whole public API: checked with `mypy --strict` by test_typing.py
(never imported by pytest: the name does not start with test_)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Dict, List, Optional

import wasm_image
from wasm_image import (
    CancelToken,
    Client,
    ImageInfo,
    Limits,
    ModuleFacts,
    ProgressEvent,
    RuntimeConfig,
    WasmImage,
    WasmImageError,
)


def on_progress(event: ProgressEvent) -> None:
    fraction: float = event.done / max(event.total, 1)
    digest: str = event.digest
    media_type: str = event.media_type
    print(digest, media_type, fraction)


def describe(image: WasmImage) -> Dict[str, object]:
    module: bytes = image.module
    rc: Optional[RuntimeConfig] = image.runtime_config
    runtime_type: Optional[str] = rc.type if rc else None
    abi: List[str] = rc.abi_versions if rc else []
    roots: List[str] = rc.root_ids if rc else []
    raw: Dict[str, object] = dict(rc.raw) if rc else {}
    index: Optional[str] = image.index_digest
    annotations: Dict[str, str] = image.annotations
    facts: ModuleFacts = image.facts()
    return {
        "size": len(module),
        "module_size": image.module_size,
        "variant": image.variant,
        "module_digest": image.module_digest,
        "manifest_digest": image.manifest_digest,
        "manifest_media_type": image.manifest_media_type,
        "index": index,
        "type": runtime_type,
        "abi": abi,
        "roots": roots,
        "raw": raw,
        "annotations": annotations,
        "manifest": image.manifest,
        "config": image.config,
        "kind": facts.kind,
        "facts": (facts.size, facts.imports, facts.exports, facts.proxy_abi_versions),
    }


def blocking(store: Path, module_path: "os.PathLike[str]") -> str:
    image = wasm_image.build(
        module_path,
        variant="compat",
        runtime_type="envoy_proxy",
        abi_versions=["v0.2.1"],
        root_ids=["root"],
        annotations={"k": "v"},
        manifest_format="docker",
        source_date_epoch=0,
    )
    digest: str = wasm_image.push(image, f"oci:{store}:v1", progress=on_progress)
    again: WasmImage = wasm_image.pull(f"oci:{store}:v1", platform="wasip1/wasm", progress=on_progress)
    info: ImageInfo = wasm_image.pull_to_file(f"oci:{store}:v1", store / "m.wasm", cancel=CancelToken())
    print(describe(again), info.module_size, info.variant, info.runtime_config)
    copied: str = wasm_image.copy(f"oci:{store}:v1", f"oci-archive:{store}.tar:v1")
    resolved: str = wasm_image.resolve(f"oci:{store}:v1")
    facts: ModuleFacts = wasm_image.module_facts(again.module)
    print(facts, copied, resolved, wasm_image.__version__)
    return digest


def client() -> Client:
    token = CancelToken()
    token.cancel()
    cancelled: bool = token.cancelled
    print(cancelled)
    limits = Limits(max_module_bytes=1 << 20, max_index_depth=2)
    depth: int = limits.max_index_depth
    print(depth)
    return Client(
        credentials={"a.example": ("user", "pass"), "b.example": "token"},
        docker_config=b"{}",
        use_config_files=False,
        insecure=["127.0.0.1:5000"],
        ca_certs=[b"-----BEGIN CERTIFICATE-----", "/etc/ssl/ca.pem", Path("/etc/ssl/other.pem")],
        connect_timeout=1.0,
        read_timeout=2,
        retries=0,
        retry_base_delay=0.1,
        retry_max_delay=1.0,
        limits=limits,
        mirrors={"docker.io": ["mirror.example"]},
        platform="wasip1/wasm",
        user_agent="typed/1.0",
        progress=on_progress,
    )


async def concurrently(c: Client, location: str, path: Path) -> List[WasmImage]:
    images = await asyncio.gather(*(c.pull_async(location) for _ in range(3)))
    info: ImageInfo = await c.pull_to_file_async(location, path, progress=on_progress)
    digest: str = await c.push_async(images[0], location)
    copied: str = await c.copy_async(location, location)
    resolved: str = await c.resolve_async(location)
    print(info, digest, copied, resolved)
    return list(images)


def errors(c: Client) -> Optional[int]:
    try:
        c.pull("oci:./nowhere:v1", cancel=None)
    except wasm_image.NotFoundError as e:
        kind: str = e.kind
        message: str = e.message
        print(kind, message)
    except wasm_image.RegistryError as e:
        return e.status
    except (wasm_image.TimeoutError, wasm_image.NetworkError) as e:
        code: Optional[str] = e.code
        print(code)
    except WasmImageError as e:
        print(e)
    return None


def control_plane(path: Path) -> Optional[bytes]:
    cache = wasm_image.Cache(path, max_bytes=1 << 30, max_age=86400.0, tag_ttl=30.0, stale_on_error=True)
    c = Client(cache=cache, insecure=["127.0.0.1:5000"])
    with c.fetch("oci://127.0.0.1:5000/filters/x:v1", policy="always", expected_digest=None) as entry:
        module_path: Path = entry.path
        stale: bool = entry.stale
        manifest: Optional[str] = entry.manifest_digest
        print(module_path, stale, manifest, entry.variant, entry.runtime_config, entry.module_digest)
        data: bytes = entry.module
    stats: wasm_image.CacheStats = cache.stats()
    entries: List[wasm_image.CachedEntry] = cache.entries()
    report: wasm_image.GcReport = cache.gc(max_bytes=0)
    print(stats.hits, stats.misses, [e.leased for e in entries], report.removed, cache.verify_all())
    plain: wasm_image.FetchEntry = wasm_image.fetch("file:///srv/filter.wasm", policy="never")
    plain.release()
    return data


async def control_plane_async(c: Client) -> str:
    entry = await c.fetch_async("oci://127.0.0.1:5000/filters/x:v1")
    with entry:
        return entry.module_digest
