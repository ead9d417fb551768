"""The release folder as a whole: exactly the expected artifacts, SBOMs that describe
what ships, and checksums that hold."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest


def test_release_holds_exactly_the_artifacts(release_dir: Path, version: str, wheel: Path) -> None:
    top = sorted(p.name for p in release_dir.iterdir())
    sdk = f"wasm-image-c-{version}-linux-x86_64.tar.gz"
    assert top == sorted([wheel.name, f"{wheel.name}.cdx.json", f"wasm_image-{version}.tar.gz", sdk,
                          f"{sdk}.cdx.json", f"wasm-image-{version}-linux-x86_64", "api", "SHA256SUMS"])


def test_checksums_hold(release_dir: Path) -> None:
    lines = (release_dir / "SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in lines:
        digest, name = line.split("  ", 1)
        listed[name] = digest
    files = {str(p.relative_to(release_dir)) for p in release_dir.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert set(listed) == files
    for name, digest in listed.items():
        assert hashlib.sha256((release_dir / name).read_bytes()).hexdigest() == digest, name


def load_sbom(path: Path) -> dict:
    sbom = json.loads(path.read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    return sbom


@pytest.mark.parametrize("artifact,crate", [("whl", "wasm-image-python"), ("sdk", "wasm-image-ffi")])
def test_sboms_describe_the_shipped_crates(release_dir: Path, wheel: Path, sdk_tarball: Path, version: str,
                                           artifact: str, crate: str) -> None:
    target = wheel if artifact == "whl" else sdk_tarball
    sbom = load_sbom(release_dir / f"{target.name}.cdx.json")
    assert sbom["metadata"]["component"]["name"] == crate
    assert sbom["metadata"]["component"]["version"] == version
    components = {c["name"]: c for c in sbom["components"]}
    for name in ("wasm-image", "tokio", "reqwest", "rustls", "serde_json"):
        assert name in components, f"{name} missing from the SBOM of {target.name}"
    assert ("pyo3" in components) == (artifact == "whl")
    registry = [c for c in sbom["components"] if c.get("purl", "").startswith("pkg:cargo/") and "download_url" not in c["purl"]]
    assert registry, "no crates.io component"
    for c in registry:
        assert c.get("licenses"), f"{c['name']} has no license in the SBOM"
        assert any(h["alg"] == "SHA-256" for h in c.get("hashes", [])), f"{c['name']} has no checksum"


def test_wheel_sbom_is_the_one_inside_the_wheel(release_dir: Path, wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        inside = [n for n in whl.namelist() if ".dist-info/sboms/" in n]
        assert len(inside) == 1
        assert whl.read(inside[0]) == (release_dir / f"{wheel.name}.cdx.json").read_bytes()
