//! The real cosign CLI, run strictly offline (`keyless_testkit::cosign_offline`: its home,
//! docker config and TUF root in a temporary folder), the key password in the environment,
//! no transparency log. Found on PATH (`.ci/install` builds it into
//! `$WASM_IMAGE_GO_TOOLS/bin`); missing, the test says so and skips, except under CI
//! where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSWORD: &str = "test-password";

pub struct Cosign {
    bin: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Cosign {
    pub fn find() -> Option<Cosign> {
        let bin = wasm_image::store::conformance::tool("cosign")?;
        let dir = tempfile::tempdir().unwrap();
        // An empty trusted root: without it `verify` first downloads Sigstore's.
        std::fs::write(
            dir.path().join("EMPTY.json"),
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}"#,
        )
        .unwrap();
        Some(Cosign { bin, dir })
    }

    pub fn command(&self) -> Command {
        let home = self.dir.path();
        let mut cmd = wasm_image::signature::keyless_testkit::cosign_offline(&self.bin, home);
        cmd.current_dir(home).env("COSIGN_PASSWORD", PASSWORD);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("cosign runs")
    }

    /// `cosign generate-key-pair` in the folder: (cosign.key, cosign.pub), the private
    /// key in cosign's encrypted format under [`PASSWORD`].
    pub fn generate_key_pair(&self) -> (PathBuf, PathBuf) {
        let out = self.run(&["generate-key-pair"]);
        assert!(
            out.status.success(),
            "cosign generate-key-pair: {}",
            text(&out)
        );
        (
            self.dir.path().join("cosign.key"),
            self.dir.path().join("cosign.pub"),
        )
    }

    /// Signs `reference` (with `@sha256:…`) with `key`, no transparency log.
    pub fn sign(&self, key: &Path, reference: &str) {
        let out = self.run(&[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--allow-insecure-registry",
            "--tlog-upload=false",
            "-y",
            reference,
        ]);
        assert!(
            out.status.success(),
            "cosign sign {reference}: {}",
            text(&out)
        );
    }

    /// `cosign verify --key` of `reference`, offline; the whole output.
    pub fn verify(&self, public_key: &Path, reference: &str) -> Output {
        self.run(&[
            "verify",
            "--key",
            public_key.to_str().unwrap(),
            "--allow-insecure-registry",
            "--insecure-ignore-tlog",
            "--trusted-root",
            self.dir.path().join("EMPTY.json").to_str().unwrap(),
            reference,
        ])
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
