"""The ``wasm-image`` command line (also ``python -m wasm_image``).

Exit status: 0 on success, 2 for a usage error, 130 after Ctrl-C, and for a failure of
the library ``10 +`` the error kind's number (the same numbers as the C enum)::

    11 INVALID_ARGUMENT   15 FORBIDDEN        19 LIMIT_EXCEEDED   23 IO
    12 INVALID_REFERENCE  16 RATE_LIMITED     20 NETWORK          24 REGISTRY
    13 NOT_FOUND          17 INVALID_FORMAT   21 TIMEOUT          25 INTERNAL
    14 UNAUTHORIZED       18 DIGEST_MISMATCH  22 CANCELLED        26 SIGNATURE_INVALID

On failure one line ``error: KIND: message`` goes to stderr (and with ``--json`` an
``{"error": {...}}`` object to stdout).
"""

from __future__ import annotations

# Start-up matters here: every command pays it, and an in-process pull of 50 MiB takes
# only about twice as long as starting Python. So nothing is imported at module level that
# a plain `pull -o FILE` does not use: json only for --json, typing only for type checkers
# (annotations stay strings).
import argparse
import os
import sys

import wasm_image
from wasm_image import _cli_cache, _cli_signing
from wasm_image._cli_output import Output
from wasm_image import Client, ImageInfo, WasmImage, WasmImageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import IO, Any, Dict, List, NoReturn, Optional, Sequence

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

KIND_NUMBERS: Dict[str, int] = {
    "INVALID_ARGUMENT": 1,
    "INVALID_REFERENCE": 2,
    "NOT_FOUND": 3,
    "UNAUTHORIZED": 4,
    "FORBIDDEN": 5,
    "RATE_LIMITED": 6,
    "INVALID_FORMAT": 7,
    "DIGEST_MISMATCH": 8,
    "LIMIT_EXCEEDED": 9,
    "NETWORK": 10,
    "TIMEOUT": 11,
    "CANCELLED": 12,
    "IO": 13,
    "REGISTRY": 14,
    "INTERNAL": 15,
    "SIGNATURE_INVALID": 16,
}


def exit_status(kind: str) -> int:
    """The exit status for an error kind (``10 + `` its number)."""
    return 10 + KIND_NUMBERS.get(kind, KIND_NUMBERS["INTERNAL"])


class UsageError(Exception):
    """A command-line mistake the library never saw (exit status 2)."""


# ---- output ----------------------------------------------------------------------------


def _runtime_config(image: WasmImage | ImageInfo) -> Optional[Dict[str, Any]]:
    rc = image.runtime_config
    if rc is None:
        return None
    return {"type": rc.type, "abi_versions": rc.abi_versions, "root_ids": rc.root_ids, "raw": rc.raw}


def _image_summary(image: WasmImage | ImageInfo) -> Dict[str, Any]:
    return {
        "variant": image.variant,
        "manifest_digest": image.manifest_digest,
        "manifest_media_type": image.manifest_media_type,
        "index_digest": image.index_digest,
        "module_digest": image.module_digest,
        "module_size": image.module_size,
        "runtime_config": _runtime_config(image),
        "annotations": image.annotations,
    }


def _parse_annotations(items: Sequence[str]) -> Dict[str, str]:
    annotations: Dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--annotation {item!r} must be KEY=VALUE")
        annotations[key] = value
    return annotations


def cmd_build(args: argparse.Namespace, client: Client, out: Output) -> None:
    image = wasm_image.build(
        args.module,
        variant=args.variant,
        runtime_type=args.type,
        abi_versions=args.abi or None,
        root_ids=args.root_id or None,
        annotations=_parse_annotations(args.annotation or []),
        manifest_format=args.format,
    )
    digest = client.push(image, args.tag, progress=out.progress(), sign_with=_cli_signing.signing_key(args))
    data = {"location": args.tag, **_image_summary(image)}
    data["manifest_digest"] = digest
    out.result(data, [f"built {image.variant} image {digest}", f"stored at {args.tag}"])


def cmd_pull(args: argparse.Namespace, client: Client, out: Output) -> None:
    target: Optional[str] = args.output
    if target is None or target == "-":
        if out.as_json:
            raise UsageError("--json prints a summary on stdout: give the module a file with -o FILE")
        if target is None and out.stdout.isatty():
            raise UsageError("refusing to write a binary module to a terminal: give -o FILE (or -o - to force)")
        image = client.pull(args.location, progress=out.progress(), verify=_cli_signing.verify_arg(args))
        out.stdout.flush()
        sys.stdout.buffer.write(image.module)
        sys.stdout.buffer.flush()
        return
    info = client.pull_to_file(args.location, target, progress=out.progress(), verify=_cli_signing.verify_arg(args))
    data = {"location": args.location, "output": os.path.abspath(target), **_image_summary(info)}
    out.result(data, [f"wrote {target} ({info.module_size} bytes, {info.module_digest})"])


def cmd_copy(args: argparse.Namespace, client: Client, out: Output) -> None:
    digest = client.copy(args.source, args.destination, progress=out.progress())
    out.result(
        {"source": args.source, "destination": args.destination, "digest": digest},
        [f"copied {args.source} to {args.destination} ({digest})"],
    )


def cmd_resolve(args: argparse.Namespace, client: Client, out: Output) -> None:
    digest = client.resolve(args.location)
    out.result({"location": args.location, "digest": digest}, [digest])


def cmd_inspect(args: argparse.Namespace, client: Client, out: Output) -> None:
    image = client.pull(args.location, progress=out.progress(), verify=_cli_signing.verify_arg(args))
    facts = image.facts()
    data: Dict[str, Any] = {"location": args.location, **_image_summary(image)}
    data["module"] = {
        "kind": facts.kind,
        "size": facts.size,
        "imports": facts.imports,
        "exports": facts.exports,
        "proxy_abi_versions": facts.proxy_abi_versions,
    }
    lines = [
        f"location:         {args.location}",
        f"variant:          {image.variant}",
        f"manifest:         {image.manifest_digest} ({image.manifest_media_type})",
    ]
    if image.index_digest:
        lines.append(f"index:            {image.index_digest}")
    lines.append(f"module:           {image.module_digest} ({image.module_size} bytes, {facts.kind})")
    rc = image.runtime_config
    if rc is not None:
        lines.append(f"runtime type:     {rc.type or '-'}")
        lines.append(f"abi versions:     {', '.join(rc.abi_versions) or '-'}")
        lines.append(f"root ids:         {', '.join(rc.root_ids) or '-'}")
    else:
        lines.append("runtime config:   none")
    lines.append(f"proxy-wasm abi:   {', '.join(facts.proxy_abi_versions) or '-'}")
    lines.append(f"imports/exports:  {len(facts.imports)} / {len(facts.exports)}")
    for key, value in image.annotations.items():
        lines.append(f"annotation:       {key}={value}")
    out.result(data, lines)


# ---- argument parsing ------------------------------------------------------------------

LOCATIONS = """\
locations:
  HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]   a registry (docker:// prefix allowed)
  oci:DIR[:TAG]                            an OCI image layout directory
  oci-archive:FILE[:TAG]                   a tar of an OCI image layout
  docker-archive:FILE[:REF]                what `docker save` writes (read only)
  oci://HOST[:PORT]/REPO[:TAG][@DIGEST]    a registry, as control planes write it
  https://HOST/PATH                        a bare module (http:// only with --insecure HOST)
  file:///PATH                             a bare module file
"""

EPILOGS = {
    "build": """\
example:
  wasm-image build filter.wasm -t oci:./store:add-header --type envoy_proxy \\
      --abi v0.2.1 --root-id add_header_root_id
  wasm-image --insecure 127.0.0.1:5000 build filter.wasm -t 127.0.0.1:5000/filters/add-header:v1 --variant compat
""",
    "pull": """\
example:
  wasm-image pull oci:./store:add-header -o filter.wasm
  wasm-image pull ghcr.io/example/filter:v1 > filter.wasm

Without -o the module goes to stdout (never to a terminal). With -o the file appears
only once the module is complete and verified.
""",
    "copy": """\
example:
  wasm-image --insecure 127.0.0.1:5000 copy oci:./store:add-header 127.0.0.1:5000/filters/add-header:v1
  wasm-image copy ghcr.io/example/filter:v1 oci-archive:./filter.tar:v1
""",
    "inspect": """\
example:
  wasm-image inspect oci:./store:add-header
  wasm-image inspect --json 127.0.0.1:5000/filters/add-header:v1
""",
    "resolve": """\
example:
  wasm-image resolve ghcr.io/example/filter:v1
""",
}


EPILOGS.update(_cli_cache.EPILOGS)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: usage: {message}\n")


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options accepted before and after the verb (after it, they win)."""
    d: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--json", action="store_true", default=d if suppress else False,
                        help="print results (and errors) as JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", default=d if suppress else False,
                        help="print nothing on success, and no progress")
    parser.add_argument("--insecure", action="append", metavar="REGISTRY", default=d,
                        help="reach this registry (HOST[:PORT]) over plain HTTP; repeatable")
    parser.add_argument("--ca-cert", action="append", metavar="FILE", default=d,
                        help="also trust this PEM CA certificate; repeatable")
    parser.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", default=d,
                        help="platform to choose when an index offers several")
    parser.add_argument("--authfile", metavar="FILE", default=d,
                        help="docker config JSON with credentials (tried before the usual files)")
    parser.add_argument("--no-config-files", action="store_true", default=d if suppress else False,
                        help="do not read ~/.docker/config.json, $REGISTRY_AUTH_FILE or podman's auth.json")
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS", default=d)
    parser.add_argument("--read-timeout", type=float, metavar="SECONDS", default=d,
                        help="longest wait for the next bytes of a response")
    parser.add_argument("--call-timeout", type=float, metavar="SECONDS", default=d,
                        help="longest one command may take in all (no bound unless given)")
    parser.add_argument("--retries", type=int, metavar="N", default=d,
                        help="retries after a failed request (429, 5xx, broken connections)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wasm-image",
        description="Build, pull, copy and inspect WebAssembly modules stored as OCI images.",
        epilog=LOCATIONS + "\nexample:\n  wasm-image inspect oci:./store:add-header\n"
        "\nCredentials come from the docker/podman config files unless --no-config-files.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wasm-image {wasm_image.__version__}")
    _global_options(parser, suppress=False)
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = verbs.add_parser(name, help=help, description=help, epilog=EPILOGS[name] + "\n" + LOCATIONS,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        _global_options(p, suppress=True)
        return p

    p = verb("build", "build an image from a Wasm module and store it at a location")
    p.add_argument("module", metavar="MODULE.wasm", help="the Wasm module file")
    p.add_argument("-t", "--tag", required=True, metavar="LOCATION", help="where to store the image")
    p.add_argument("--variant", default="oci", choices=["oci", "compat"],
                   help="Wasm Image spec variant (default: oci)")
    p.add_argument("--format", default="oci", choices=["oci", "docker"],
                   help="manifest format; docker needs --variant compat (default: oci)")
    p.add_argument("--type", metavar="T", help="runtime type (default: envoy_proxy)")
    p.add_argument("--abi", action="append", metavar="V",
                   help="ABI version; repeatable (default: the module's proxy_abi_version_* exports)")
    p.add_argument("--root-id", action="append", metavar="R", help="root id; repeatable")
    p.add_argument("--annotation", action="append", metavar="K=V", help="manifest annotation; repeatable")
    _cli_signing.add_sign_options(p)
    p.set_defaults(run=cmd_build)

    p = verb("pull", "fetch and verify an image's module")
    p.add_argument("location", metavar="LOCATION")
    p.add_argument("-o", "--output", metavar="FILE", help="write the module here (- for stdout)")
    _cli_signing.add_verify_options(p)
    p.set_defaults(run=cmd_pull)

    p = verb("copy", "copy an image (or index) between any two locations, digests unchanged")
    p.add_argument("source", metavar="SRC")
    p.add_argument("destination", metavar="DST")
    p.set_defaults(run=cmd_copy)

    p = verb("inspect", "show variant, digests, runtime config and module facts")
    p.add_argument("location", metavar="LOCATION")
    _cli_signing.add_verify_options(p)
    p.set_defaults(run=cmd_inspect)

    p = verb("resolve", "print the manifest digest a location names, without fetching the module")
    p.add_argument("location", metavar="LOCATION")
    p.set_defaults(run=cmd_resolve)

    _cli_cache.add_verbs(verb)
    return parser


def make_client(args: argparse.Namespace) -> Client:
    docker_config: Optional[bytes] = None
    if args.authfile:
        try:
            with open(args.authfile, "rb") as f:
                docker_config = f.read()
        except OSError as e:
            raise UsageError(f"--authfile {args.authfile}: {e.strerror or e}") from e
    return Client(
        insecure=args.insecure,
        ca_certs=args.ca_cert,
        platform=args.platform,
        docker_config=docker_config,
        use_config_files=False if args.no_config_files else None,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        call_timeout=args.call_timeout,
        retries=args.retries,
        cache=_cli_cache.open_cache(args),
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Output(args.json, args.quiet, sys.stdout, sys.stderr)
    if not args.quiet and not args.json:
        # Library log lines (warnings such as a mirror falling back) on stderr.
        import logging

        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
    try:
        client = make_client(args)
        args.run(args, client, out)
    except WasmImageError as err:
        out.error(err)
        return exit_status(err.kind)
    except UsageError as err:
        sys.stderr.write(f"error: usage: {err}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `wasm-image pull X | head`: the reader left; not our failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
