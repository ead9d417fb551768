//! The global options → the core client's options. Unset options keep core's defaults.

use std::time::Duration;

use wasm_image::{Cache, Client, ClientOptions, Platform};

use crate::failure::Failure;
use crate::global_options::GlobalOptions;

/// Seconds as a `Duration`; a negative or non-finite number is `INVALID_ARGUMENT`, named
/// as the library's other faces name the option.
pub(crate) fn seconds(name: &str, value: f64) -> wasm_image::Result<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        wasm_image::Error::invalid_argument(format!(
            "{name} must be a non-negative number of seconds, got {value}"
        ))
    })
}

/// Builds the client every verb uses; `cache` is the cache a cache verb opened.
pub(crate) fn make(global: &GlobalOptions, cache: Option<Cache>) -> Result<Client, Failure> {
    let mut options = ClientOptions::default();
    if let Some(path) = &global.authfile {
        let config = std::fs::read(path).map_err(|e| {
            Failure::Usage(format!("--authfile {}: {}", path.display(), io_reason(&e)))
        })?;
        options.docker_config_json = Some(config);
    }
    if global.no_config_files {
        options.use_config_files = false;
    }
    options.insecure_registries = global.insecure.clone();
    for path in &global.ca_cert {
        let pem = wasm_image::files::read_input(path, "CA certificate")?;
        options.ca_certificates_pem.push(pem.to_vec());
    }
    if let Some(p) = &global.platform {
        options.platform = Some(p.parse::<Platform>()?);
    }
    if let Some(s) = global.connect_timeout {
        options.connect_timeout = seconds("connect_timeout", s)?;
    }
    if let Some(s) = global.read_timeout {
        options.read_timeout = seconds("read_timeout", s)?;
    }
    if let Some(s) = global.call_timeout {
        options.call_timeout = Some(seconds("call_timeout", s)?);
    }
    if let Some(n) = global.retries {
        options.max_retries = n;
    }
    options.cache = cache;
    Ok(Client::new(options)?)
}

/// An I/O error's reason without Rust's "(os error N)" suffix.
fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_image::ErrorKind;

    fn kind_of(global: GlobalOptions) -> ErrorKind {
        match make(&global, None) {
            Err(Failure::Library(e)) => e.kind(),
            Err(other) => panic!("not a library error: {other:?}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn bad_values_are_typed_library_errors() {
        let platform = GlobalOptions {
            platform: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(kind_of(platform), ErrorKind::InvalidArgument);
        let negative = GlobalOptions {
            read_timeout: Some(-1.0),
            ..Default::default()
        };
        assert_eq!(kind_of(negative), ErrorKind::InvalidArgument);
        let missing_ca = GlobalOptions {
            ca_cert: vec!["/nonexistent/ca.pem".into()],
            ..Default::default()
        };
        assert_eq!(kind_of(missing_ca), ErrorKind::NotFound);
    }

    #[test]
    fn a_missing_authfile_is_a_usage_error() {
        let global = GlobalOptions {
            authfile: Some("/nonexistent/auth.json".into()),
            ..Default::default()
        };
        match make(&global, None) {
            Err(Failure::Usage(m)) => {
                assert_eq!(
                    m,
                    "--authfile /nonexistent/auth.json: No such file or directory"
                )
            }
            _ => panic!("expected a usage error"),
        }
    }

    #[test]
    fn options_reach_the_client() {
        let global = GlobalOptions {
            insecure: vec!["127.0.0.1:5000".into()],
            no_config_files: true,
            call_timeout: Some(1.5),
            retries: Some(0),
            ..Default::default()
        };
        let client = make(&global, None).map_err(|_| ()).expect("a client");
        let o = client.options();
        assert_eq!(o.insecure_registries, ["127.0.0.1:5000"]);
        assert!(!o.use_config_files);
        assert_eq!(o.call_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(o.max_retries, 0);
        assert_eq!(o.read_timeout, ClientOptions::default().read_timeout);
    }
}
