"""The ``fetch`` and ``cache`` verbs of the command line: the control-plane module cache."""

from __future__ import annotations

import argparse
import time

from wasm_image import Cache, Client, _cli_signing

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Dict, Optional

    from wasm_image._cli_output import Output

EPILOGS = {
    "fetch": """\
example:
  wasm-image fetch oci://ghcr.io/example/filter:v1
  wasm-image fetch --policy always --sha256 5e82b945… oci://ghcr.io/example/filter:v1
  wasm-image fetch https://example.com/filters/add-header.wasm --sha256 sha256:…

Prints the path of the cached, read-only module file. Policies: if-not-present (the
default: a digest-pinned location is answered from the cache with no request, a tag is
re-resolved at most every --tag-ttl seconds), always (resolve the tag on every call),
never (the cache only). The cache is --cache-dir, else $XDG_CACHE_HOME/wasm-image.
""",
    "cache": """\
example:
  wasm-image cache list
  wasm-image cache gc --max-bytes 1073741824 --max-age 86400
  wasm-image cache verify

gc never removes a module some process is still using (holds a lease on).
""",
}


def add_cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", metavar="DIR", help="the cache directory (default: $XDG_CACHE_HOME/wasm-image)")


def open_cache(args: argparse.Namespace) -> Optional[Cache]:
    """The cache the verb names, or None for verbs that use none."""
    if not hasattr(args, "cache_dir"):
        return None
    tag_ttl = getattr(args, "tag_ttl", None)
    return Cache(
        dir=args.cache_dir,
        tag_ttl=60.0 if tag_ttl is None else tag_ttl,
        stale_on_error=getattr(args, "stale_on_error", False),
    )


def cmd_fetch(args: argparse.Namespace, client: Client, out: Output) -> None:
    with client.fetch(
        args.location,
        policy=args.policy,
        expected_digest=args.sha256,
        progress=out.progress(),
        verify=_cli_signing.verify_arg(args),
    ) as entry:
        rc = entry.runtime_config
        data: Dict[str, Any] = {
            "location": args.location,
            "path": str(entry.path),
            "module_digest": entry.module_digest,
            "size": entry.size,
            "manifest_digest": entry.manifest_digest,
            "index_digest": entry.index_digest,
            "variant": entry.variant,
            "runtime_config": None if rc is None else {
                "type": rc.type, "abi_versions": rc.abi_versions, "root_ids": rc.root_ids, "raw": rc.raw,
            },
            "stale": entry.stale,
        }
        if entry.stale and not out.as_json:
            out.stderr.write(f"warning: {args.location} could not be re-resolved; served the cached module (stale)\n")
        out.result(data, [str(entry.path)])


def _entry_dict(e: Any) -> Dict[str, Any]:
    return {
        "module_digest": e.module_digest,
        "size": e.size,
        "path": str(e.path),
        "last_used": e.last_used,
        "manifest_digests": e.manifest_digests,
        "leased": e.leased,
    }


def cmd_cache(args: argparse.Namespace, client: Client, out: Output) -> None:
    cache = client.cache
    if args.action == "list":
        entries = cache.entries()
        lines = []
        for e in entries:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.last_used))
            lease = "  (in use)" if e.leased else ""
            lines.append(f"{e.module_digest}  {e.size:>12}  {when}{lease}")
        total = sum(e.size for e in entries)
        lines.append(f"{len(entries)} modules, {total} bytes in {cache.dir}")
        out.result({"dir": str(cache.dir), "entries": [_entry_dict(e) for e in entries]}, lines)
    elif args.action == "gc":
        report = cache.gc(max_bytes=args.max_bytes, max_age=args.max_age)
        lines = [f"removed {d}" for d in report.removed]
        lines.append(
            f"removed {len(report.removed)} modules ({report.freed_bytes} bytes), "
            f"kept {report.kept_leased} in use, cleaned {report.leftovers_removed} leftovers"
        )
        out.result(
            {
                "removed": report.removed,
                "freed_bytes": report.freed_bytes,
                "kept_leased": report.kept_leased,
                "leftovers_removed": report.leftovers_removed,
            },
            lines,
        )
    else:
        dropped = cache.verify_all()
        checked = len(cache.entries()) + len(dropped)
        lines = [f"dropped damaged {d}" for d in dropped]
        lines.append(f"checked {checked} modules, dropped {len(dropped)}")
        out.result({"checked": checked, "dropped": dropped}, lines)


def add_verbs(verb: Callable[[str, str], argparse.ArgumentParser]) -> None:
    p = verb("fetch", "fetch a module into the shared cache and print its path")
    p.add_argument("location", metavar="LOCATION")
    p.add_argument("--policy", default="if-not-present", choices=["if-not-present", "always", "never"],
                   help="pull policy (default: if-not-present)")
    p.add_argument("--sha256", metavar="DIGEST",
                   help="expected module or manifest digest, with or without the sha256: prefix")
    p.add_argument("--tag-ttl", type=float, metavar="SECONDS",
                   help="how long a tag's resolution is trusted (default: 60)")
    p.add_argument("--stale-on-error", action="store_true",
                   help="serve the last cached module when the registry cannot be reached")
    add_cache_options(p)
    _cli_signing.add_verify_options(p)
    p.set_defaults(run=cmd_fetch)

    p = verb("cache", "list, collect or verify the module cache")
    p.add_argument("action", choices=["list", "gc", "verify"])
    p.add_argument("--max-bytes", type=int, metavar="N", help="gc: evict least recently used modules down to N bytes")
    p.add_argument("--max-age", type=float, metavar="SECONDS", help="gc: evict modules unused for longer")
    add_cache_options(p)
    p.set_defaults(run=cmd_cache)
