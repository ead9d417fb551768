//! What the command line accepts. To add an option: a field in the verb's `Args` struct
//! (in `verbs/VERB.rs`, beside the code that uses it), or in [`GlobalOptions`] (`global_options.rs`)
//! when every verb takes it (then read it in `client.rs`). The help text lives in the attributes.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

use crate::global_options::GlobalOptions;
use crate::verbs;

/// The location forms, shown under every help text.
macro_rules! locations {
    () => {
        "locations:
  HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]   a registry (docker:// prefix allowed)
  oci:DIR[:TAG]                            an OCI image layout directory
  oci-archive:FILE[:TAG]                   a tar of an OCI image layout
  docker-archive:FILE[:REF]                what `docker save` writes (read only)
  oci://HOST[:PORT]/REPO[:TAG][@DIGEST]    a registry, as control planes write it
  https://HOST/PATH                        a bare module (http:// only with --insecure HOST)
  file:///PATH                             a bare module file
"
    };
}

#[derive(Parser, Debug)]
#[command(
    name = "wasm-image",
    version,
    about = "Build, pull, copy and inspect WebAssembly modules stored as OCI images.",
    after_help = concat!(
        locations!(),
        "\nexample:\n  wasm-image inspect oci:./store:add-header\n",
        "\nCredentials come from the docker/podman config files unless --no-config-files."
    ),
    subcommand_value_name = "VERB",
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub verb: Verb,
}

/// The verbs; each one's arguments and code live in `verbs/`.
#[derive(Subcommand, Debug)]
pub enum Verb {
    #[command(
        about = "build an image from a Wasm module and store it at a location",
        after_help = concat!(
            "example:
  wasm-image build filter.wasm -t oci:./store:add-header --type envoy_proxy \\
      --abi v0.2.1 --root-id add_header_root_id
  wasm-image --insecure 127.0.0.1:5000 build filter.wasm -t 127.0.0.1:5000/filters/add-header:v1 --variant compat

",
            locations!()
        )
    )]
    Build(verbs::build::BuildArgs),
    #[command(
        about = "fetch and verify an image's module",
        after_help = concat!(
            "example:
  wasm-image pull oci:./store:add-header -o filter.wasm
  wasm-image pull ghcr.io/example/filter:v1 > filter.wasm

Without -o the module goes to stdout (never to a terminal). With -o the file appears
only once the module is complete and verified.

",
            locations!()
        )
    )]
    Pull(verbs::pull::PullArgs),
    #[command(
        about = "copy an image (or index) between any two locations, digests unchanged",
        after_help = concat!(
            "example:
  wasm-image --insecure 127.0.0.1:5000 copy oci:./store:add-header 127.0.0.1:5000/filters/add-header:v1
  wasm-image copy ghcr.io/example/filter:v1 oci-archive:./filter.tar:v1

",
            locations!()
        )
    )]
    Copy(verbs::copy::CopyArgs),
    #[command(
        about = "copy an image to a destination and, with --sign, sign it there as cosign does",
        after_help = concat!(
            "example:
  wasm-image build filter.wasm -t oci:./store:add-header
  wasm-image push oci:./store:add-header ghcr.io/example/filter:v1 --sign cosign.key

An encrypted cosign.key's password is read from COSIGN_PASSWORD unless
--sign-password-env names another variable. The signature is stored beside the image
(tag sha256-<hex>.sig), where `cosign verify --key cosign.pub` finds it.

",
            locations!()
        )
    )]
    Push(verbs::push::PushArgs),
    #[command(
        about = "show variant, digests, runtime config and module facts",
        after_help = concat!(
            "example:
  wasm-image inspect oci:./store:add-header
  wasm-image inspect --json 127.0.0.1:5000/filters/add-header:v1

",
            locations!()
        )
    )]
    Inspect(verbs::inspect::InspectArgs),
    #[command(
        about = "print the manifest digest a location names, without fetching the module",
        after_help = concat!(
            "example:
  wasm-image resolve ghcr.io/example/filter:v1

",
            locations!()
        )
    )]
    Resolve(verbs::resolve::ResolveArgs),
    #[command(
        about = "fetch a module into the shared cache and print its path",
        after_help = concat!(
            "example:
  wasm-image fetch oci://ghcr.io/example/filter:v1
  wasm-image fetch --policy always --sha256 5e82b945… oci://ghcr.io/example/filter:v1
  wasm-image fetch https://example.com/filters/add-header.wasm --sha256 sha256:…

Prints the path of the cached, read-only module file. Policies: if-not-present (the
default: a digest-pinned location is answered from the cache with no request, a tag is
re-resolved at most every --tag-ttl seconds), always (resolve the tag on every call),
never (the cache only). The cache is --cache-dir, else $XDG_CACHE_HOME/wasm-image.

",
            locations!()
        )
    )]
    Fetch(verbs::fetch::FetchArgs),
    #[command(
        about = "list, collect or verify the module cache",
        after_help = concat!(
            "example:
  wasm-image cache list
  wasm-image cache gc --max-bytes 1073741824 --max-age 86400
  wasm-image cache verify

gc never removes a module some process is still using (holds a lease on).

",
            locations!()
        )
    )]
    Cache(verbs::cache::CacheArgs),
}

/// Parses a process's arguments (program name first). Help and `--version` are printed
/// here; `Err` carries the exit status (0 after help, 2 after a usage error).
pub fn parse(args: Vec<OsString>) -> Result<Cli, i32> {
    Cli::try_parse_from(args).map_err(|err| {
        // A closed stdout while printing help is no reason to fail differently.
        let _ = err.print();
        err.exit_code()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Cli {
        let mut argv = vec![OsString::from("wasm-image")];
        argv.extend(args.iter().map(OsString::from));
        Cli::try_parse_from(argv).expect("parses")
    }

    fn usage_error(args: &[&str]) -> clap::Error {
        let mut argv = vec![OsString::from("wasm-image")];
        argv.extend(args.iter().map(OsString::from));
        Cli::try_parse_from(argv).expect_err("a usage error")
    }

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_are_taken_before_and_after_the_verb() {
        let before = parse_ok(&["--json", "--insecure", "a:5000", "inspect", "x"]);
        let after = parse_ok(&["inspect", "x", "--json", "--insecure", "a:5000"]);
        for cli in [before, after] {
            assert!(cli.global.json);
            assert_eq!(cli.global.insecure, ["a:5000"]);
            assert!(matches!(cli.verb, Verb::Inspect(ref a) if a.location == "x"));
        }
        let both = parse_ok(&["--insecure", "a:1", "pull", "--insecure", "b:2", "x"]);
        assert!(both.global.insecure.contains(&"b:2".to_string()));
    }

    #[test]
    fn repeatable_options_keep_their_order() {
        let cli = parse_ok(&[
            "build",
            "m.wasm",
            "-t",
            "oci:s:v1",
            "--root-id",
            "r1",
            "--root-id",
            "r2",
            "--abi",
            "v0.2.1",
        ]);
        let Verb::Build(b) = cli.verb else {
            panic!("not build")
        };
        assert_eq!(b.root_id, ["r1", "r2"]);
        assert_eq!(b.abi, ["v0.2.1"]);
        assert_eq!(b.variant, "oci");
        assert_eq!(b.format, "oci");
    }

    #[test]
    fn mistakes_are_usage_errors_with_status_2() {
        for args in [
            &["frobnicate"][..],
            &["build", "m.wasm"],
            &["build", "m.wasm", "-t", "x", "--variant", "nope"],
            &["fetch", "x", "--policy", "sometimes"],
            &["cache", "shrink"],
            &["--retries", "-1", "inspect", "x"],
            &["cache", "gc", "--max-bytes", "-5"],
            &["--read-timeout", "soon", "inspect", "x"],
        ] {
            assert_eq!(usage_error(args).exit_code(), 2, "{args:?}");
        }
        assert_eq!(usage_error(&[]).exit_code(), 2);
    }

    #[test]
    fn negative_seconds_reach_the_library_which_rejects_them() {
        let cli = parse_ok(&["--read-timeout", "-1", "inspect", "x"]);
        assert_eq!(cli.global.read_timeout, Some(-1.0));
        let cli = parse_ok(&["fetch", "x", "--tag-ttl", "-2"]);
        let Verb::Fetch(f) = cli.verb else {
            panic!("not fetch")
        };
        assert_eq!(f.tag_ttl, Some(-2.0));
    }

    #[test]
    fn help_and_version_exit_0() {
        assert_eq!(usage_error(&["--version"]).exit_code(), 0);
        let help = usage_error(&["pull", "--help"]);
        assert_eq!(help.exit_code(), 0);
        let text = help.render().to_string();
        assert!(
            text.contains("example:") && text.contains("wasm-image pull"),
            "{text}"
        );
        assert!(text.contains("locations:"));
    }
}
