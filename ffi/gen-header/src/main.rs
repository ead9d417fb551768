//! `cargo run --manifest-path ffi/gen-header/Cargo.toml -- [OUT]`: generates the C header
//! from `ffi/` with `ffi/cbindgen.toml`, adding the version macros taken from the ffi
//! crate's Cargo version (so no version is ever kept in sync by hand). Without OUT it
//! writes `include/wasm_image.h`; `.ci` and `tests/c/run.sh` write to a temporary file
//! and diff it with the committed header.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn ffi_version(ffi_dir: &Path) -> Result<(u64, u64, u64, String), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(ffi_dir.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed bad JSON: {e}"))?;
    let version = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "wasm-image-ffi"))
        .and_then(|p| p["version"].as_str())
        .ok_or("cargo metadata does not list wasm-image-ffi")?
        .to_string();
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<u64> = core
        .split('.')
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .collect();
    match parts[..] {
        [major, minor, patch] if parts.iter().all(|&n| n != u64::MAX) => {
            Ok((major, minor, patch, version))
        }
        _ => Err(format!(
            "cannot read a MAJOR.MINOR.PATCH version from {version:?}"
        )),
    }
}

fn run() -> Result<(), String> {
    let ffi_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ffi_dir = ffi_dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", ffi_dir.display()))?;
    let out = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => ffi_dir.join("../include/wasm_image.h"),
    };
    let (major, minor, patch, version) = ffi_version(&ffi_dir)?;
    let mut config = cbindgen::Config::from_file(ffi_dir.join("cbindgen.toml"))
        .map_err(|e| format!("ffi/cbindgen.toml: {e}"))?;
    let versions = format!(
        "\n/* The version of the headers; wasm_image_version() gives the library's. */\n\
         #define WASM_IMAGE_VERSION_MAJOR {major}\n\
         #define WASM_IMAGE_VERSION_MINOR {minor}\n\
         #define WASM_IMAGE_VERSION_PATCH {patch}\n\
         #define WASM_IMAGE_VERSION_STRING \"{version}\"\n"
    );
    config.after_includes = Some(config.after_includes.take().unwrap_or_default() + &versions);
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi_dir.join("src/lib.rs"))
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    bindings.write_to_file(&out);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-header: {e}");
            ExitCode::FAILURE
        }
    }
}
