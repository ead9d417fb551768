"""The command line's signing options: ``--verify-key`` on the verbs that read a module,
``--sign`` on the verb that stores one. Only translation: the library decides."""

from __future__ import annotations

import argparse

from wasm_image import SigningKey, Trust

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Optional

DEFAULT_PASSWORD_ENV = "COSIGN_PASSWORD"


def add_verify_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verify-key", action="append", metavar="FILE",
                   help="require a cosign signature by this public key (PEM, e.g. cosign.pub); "
                   "repeatable: any one of them will do")
    p.add_argument("--verify-repository", metavar="HOST/NAME",
                   help="with --verify-key: the signed payload must name this repository")


def verify_arg(args: argparse.Namespace) -> Optional[Trust]:
    """The per-call trust the options ask for; None keeps the client's (empty) policy."""
    keys = getattr(args, "verify_key", None)
    if not keys:
        if getattr(args, "verify_repository", None):
            from wasm_image.cli import UsageError

            raise UsageError("--verify-repository needs --verify-key")
        return None
    return Trust(keys, repository=args.verify_repository)


def add_sign_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sign", metavar="KEY",
                   help="sign the stored image the way `cosign sign` does, with this private key "
                   "(PKCS#8 PEM, or cosign's encrypted cosign.key)")
    p.add_argument("--sign-password-env", metavar="VAR",
                   help=f"environment variable holding an encrypted key's password "
                   f"(default: {DEFAULT_PASSWORD_ENV} when the key is encrypted)")


def signing_key(args: argparse.Namespace) -> Optional[SigningKey]:
    if not args.sign:
        if args.sign_password_env:
            from wasm_image.cli import UsageError

            raise UsageError("--sign-password-env needs --sign")
        return None
    env = args.sign_password_env
    if env is None:
        with open(args.sign, "rb") as f:
            encrypted = b"ENCRYPTED" in f.read(4096)
        env = DEFAULT_PASSWORD_ENV if encrypted else None
    return SigningKey(args.sign, password_env=env)
