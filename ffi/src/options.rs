//! The client options builder: one setter per `wasm_image::ClientOptions` field.

use std::ffi::c_char;
use std::sync::Mutex;
use std::time::Duration;

use wasm_image::{ClientOptions, Credentials, Platform};

use crate::boundary::{arg_bytes, arg_handle, arg_str, ffi_boundary};
use crate::handle::{self, Handle};
use crate::wasm_image_error_t;

/// Options for `wasm_image_client_new`, built with setters. The client copies them, so
/// the options may be changed or freed afterwards without affecting it. Setters may be
/// called from any thread (they lock), though building on one thread is the usual way.
///
/// Defaults are the core's: each setter's comment names its default (a test checks them
/// against the library); otherwise no explicit credentials, TLS everywhere with the
/// system's CA certificates, no mirrors.
pub struct wasm_image_client_options_t {
    pub(crate) options: Mutex<ClientOptions>,
}

impl Handle for wasm_image_client_options_t {
    const NAME: &'static str = "wasm_image_client_options_t";
}

impl wasm_image_client_options_t {
    pub(crate) fn snapshot(&self) -> ClientOptions {
        self.options
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Makes options with the defaults. Never returns NULL. Free with
/// `wasm_image_client_options_free`.
#[no_mangle]
pub extern "C" fn wasm_image_client_options_new() -> *mut wasm_image_client_options_t {
    ffi_boundary!({
        handle::into_raw(wasm_image_client_options_t {
            options: Mutex::new(ClientOptions::default()),
        })
    })
}

/// Frees options. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_free(options: *mut wasm_image_client_options_t) {
    ffi_boundary!({
        unsafe { handle::free(options) };
    })
}

/// Runs `change` on the options behind a live handle.
fn edit(options: &wasm_image_client_options_t, change: impl FnOnce(&mut ClientOptions)) {
    change(&mut options.options.lock().unwrap_or_else(|p| p.into_inner()));
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Uses a user name and password (HTTP Basic, or exchanged for a bearer token when the
/// registry asks for one) for `registry` (`HOST[:PORT]`, Docker Hub as `docker.io`).
/// Explicit credentials win over every other source. The strings are copied.
/// Errors: `INVALID_ARGUMENT` for NULL or bad UTF-8.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_basic_auth(
    options: *const wasm_image_client_options_t,
    registry: *const c_char,
    username: *const c_char,
    password: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let registry = arg_str!(registry, "registry");
        let credentials = Credentials::Basic {
            username: arg_str!(username, "username").to_string(),
            password: arg_str!(password, "password").to_string(),
        };
        edit(options, |o| {
            o.credentials.insert(registry.to_string(), credentials);
        });
        Ok(())
    })
}

/// Uses a registry bearer token as is (no token exchange) for `registry`. The strings
/// are copied. Errors: `INVALID_ARGUMENT` for NULL or bad UTF-8.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_bearer_token(
    options: *const wasm_image_client_options_t,
    registry: *const c_char,
    token: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let registry = arg_str!(registry, "registry");
        let token = Credentials::Bearer(arg_str!(token, "token").to_string());
        edit(options, |o| {
            o.credentials.insert(registry.to_string(), token);
        });
        Ok(())
    })
}

/// Reads credentials from a docker config JSON given as bytes (a Kubernetes
/// `.dockerconfigjson` pull secret); it is consulted after explicit credentials and
/// before the config files. The bytes are copied; NULL with length 0 removes it. The
/// JSON is checked when the client is made (`INVALID_ARGUMENT` there if malformed).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_docker_config_json(
    options: *const wasm_image_client_options_t,
    json: *const u8,
    len: usize,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let data = if json.is_null() && len == 0 { None } else { Some(arg_bytes!(json, len, "json").to_vec()) };
        edit(options, |o| o.docker_config_json = data);
        Ok(())
    })
}

/// Whether to read `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`,
/// `$REGISTRY_AUTH_FILE` and podman's `auth.json` (with credential helpers) when no
/// explicit credentials match. Default: true.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_use_config_files(
    options: *const wasm_image_client_options_t,
    use_config_files: bool,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.use_config_files = use_config_files);
        Ok(())
    })
}

/// Allows plain HTTP to `registry` (`HOST[:PORT]`, exactly as in locations). Nothing
/// is ever downgraded automatically: every registry not added here uses TLS.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_add_insecure_registry(
    options: *const wasm_image_client_options_t,
    registry: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let registry = arg_str!(registry, "registry").to_string();
        edit(options, |o| o.insecure_registries.push(registry));
        Ok(())
    })
}

/// Trusts the CA certificates in `pem` (one or more PEM blocks) besides the system's.
/// The bytes are copied; they are checked when the client is made.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_add_ca_certificates_pem(
    options: *const wasm_image_client_options_t,
    pem: *const u8,
    len: usize,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let pem = arg_bytes!(pem, len, "pem").to_vec();
        edit(options, |o| o.ca_certificates_pem.push(pem));
        Ok(())
    })
}

/// Trusts the CA certificates in the PEM file at `path`, read now.
/// Errors: `INVALID_ARGUMENT` for NULL or bad UTF-8; `NOT_FOUND` or `IO` when the file
/// cannot be read.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_add_ca_certificates_file(
    options: *const wasm_image_client_options_t,
    path: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let path = arg_str!(path, "path");
        let pem = wasm_image::files::read_input(std::path::Path::new(path), "CA certificates")?;
        edit(options, |o| o.ca_certificates_pem.push(pem.to_vec()));
        Ok(())
    })
}

/// The longest wait for a connection to open, in milliseconds. Default 10,000.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_connect_timeout_ms(
    options: *const wasm_image_client_options_t,
    milliseconds: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.connect_timeout = millis(milliseconds));
        Ok(())
    })
}

/// The longest wait for the next bytes of a response, in milliseconds (a slow but moving
/// download is fine). Default 30,000.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_read_timeout_ms(
    options: *const wasm_image_client_options_t,
    milliseconds: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.read_timeout = millis(milliseconds));
        Ok(())
    })
}

/// Retries after the first try, on 429, 5xx and broken connections. Default 3; 0
/// disables retries.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_retries(
    options: *const wasm_image_client_options_t,
    retries: u32,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.max_retries = retries);
        Ok(())
    })
}

/// The first backoff wait, in milliseconds; it doubles at each retry. Default 200.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_retry_base_delay_ms(
    options: *const wasm_image_client_options_t,
    milliseconds: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.retry_base_delay = millis(milliseconds));
        Ok(())
    })
}

/// The cap for one backoff wait and for a `Retry-After` the registry asks for, in
/// milliseconds. Default 30,000.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_retry_max_delay_ms(
    options: *const wasm_image_client_options_t,
    milliseconds: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.retry_max_delay = millis(milliseconds));
        Ok(())
    })
}

/// The longest one call (pull, push, copy, resolve) may take in all, retries included, in
/// milliseconds; it then fails with `TIMEOUT`. The read timeout bounds each wait for
/// bytes, which a server trickling a byte at a time never exceeds; this bounds the whole.
/// 0 means no bound. Default 0.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_call_timeout_ms(
    options: *const wasm_image_client_options_t,
    milliseconds: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| {
            o.call_timeout = (milliseconds > 0).then(|| millis(milliseconds))
        });
        Ok(())
    })
}

/// The largest module accepted, in bytes. Default 256 MiB. Exceeding it fails a call with `LIMIT_EXCEEDED`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_module_bytes(
    options: *const wasm_image_client_options_t,
    value: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.limits.max_module_bytes = value);
        Ok(())
    })
}

/// The largest manifest, index or config read into memory, in bytes. Default 4 MiB. Exceeding it fails a call with `LIMIT_EXCEEDED`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_metadata_bytes(
    options: *const wasm_image_client_options_t,
    value: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.limits.max_metadata_bytes = value);
        Ok(())
    })
}

/// The most bytes decompressed from one layer while looking for the module. Default 1 GiB. Exceeding it fails a call with `LIMIT_EXCEEDED`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_decompressed_bytes(
    options: *const wasm_image_client_options_t,
    value: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.limits.max_decompressed_bytes = value);
        Ok(())
    })
}

/// The most tar entries looked at in one layer. Default 10,000. Exceeding it fails a call with `LIMIT_EXCEEDED`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_tar_entries(
    options: *const wasm_image_client_options_t,
    value: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.limits.max_tar_entries = value);
        Ok(())
    })
}

/// How many indexes may point at further indexes. Default 4. Exceeding it fails a call with `LIMIT_EXCEEDED`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_index_depth(
    options: *const wasm_image_client_options_t,
    value: u32,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.limits.max_index_depth = value);
        Ok(())
    })
}

/// The most entries in one index. Default 1,000. Exceeding it fails a call with `LIMIT_EXCEEDED`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_max_index_entries(
    options: *const wasm_image_client_options_t,
    value: u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        edit(arg_handle!(options, "options"), |o| o.limits.max_index_entries = value);
        Ok(())
    })
}

/// Adds `mirror` (`HOST[:PORT]`) to the mirrors tried, in the order added, before
/// `registry` when reading (`registries.conf` style); writes always go to `registry`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_add_mirror(
    options: *const wasm_image_client_options_t,
    registry: *const c_char,
    mirror: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let registry = arg_str!(registry, "registry").to_string();
        let mirror = arg_str!(mirror, "mirror").to_string();
        edit(options, |o| o.mirrors.entry(registry).or_default().push(mirror));
        Ok(())
    })
}

/// The platform to prefer when an index offers several non-Wasm manifests,
/// `"OS/ARCH[/VARIANT]"`; NULL clears it. Errors: `INVALID_ARGUMENT` when malformed.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_platform(
    options: *const wasm_image_client_options_t,
    platform: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let platform = if platform.is_null() {
            None
        } else {
            Some(arg_str!(platform, "platform").parse::<Platform>()?)
        };
        edit(options, |o| o.platform = platform);
        Ok(())
    })
}

/// The `User-Agent` sent to registries. Default `wasm-image/VERSION`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_set_user_agent(
    options: *const wasm_image_client_options_t,
    user_agent: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let user_agent = arg_str!(user_agent, "user_agent").to_string();
        edit(options, |o| o.user_agent = user_agent);
        Ok(())
    })
}

/// Requires a cosign signature before a module from a location matching `pattern` is
/// returned or cached: made by one of the keys in `public_keys_pem` (one or more PEM
/// `PUBLIC KEY` blocks: ECDSA P-256 as `cosign generate-key-pair` writes, or Ed25519),
/// and, when `repository` is not NULL, for that repository (`HOST/NAME`). Patterns name
/// registries as `HOST[:PORT]/NAME` and stores as `oci:DIR`, `oci-archive:FILE`; `*`
/// matches anything. The most specific matching pattern decides. Without any, nothing
/// is verified (the default). Requirements for the same pattern add up: keys given here
/// and a keyless trust given to `wasm_image_client_options_require_keyless_signature`
/// for that pattern, and a signature either accepts will do. Failures are
/// `SIGNATURE_INVALID`.
/// Errors: `INVALID_ARGUMENT` for NULL, bad UTF-8, an empty pattern, unreadable keys, or
/// a repository other than an earlier requirement's for the same pattern.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_require_signature(
    options: *const wasm_image_client_options_t,
    pattern: *const c_char,
    public_keys_pem: *const u8,
    len: usize,
    repository: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let pattern = arg_str!(pattern, "pattern").to_string();
        let keys = arg_bytes!(public_keys_pem, len, "public_keys_pem");
        let trust = unsafe { crate::call::trust_from(keys, repository) }?;
        let mut result = Ok(());
        edit(options, |o| result = o.verification.require(&pattern, trust));
        result
    })
}

/// Requires a cosign *keyless* signature, checked offline, before a module from a
/// location matching `pattern` is returned or cached: its certificate chains to one of
/// the Fulcio roots in `fulcio_roots_pem` (PEM `CERTIFICATE` blocks), its Rekor bundle is
/// signed by one of the keys in `rekor_keys_pem` (PEM `PUBLIC KEY` blocks, ECDSA P-256 or
/// P-384), and its identity matches: the OIDC issuer `issuer` and the subject (email or
/// URI) `subject`, each compared exactly, or as a regular expression over the whole value
/// when its `..._is_regex` flag is true. When `repository` is not NULL the signed payload
/// must name it. Patterns are as in `wasm_image_client_options_require_signature`, and
/// requirements for the same pattern add up: a signature any of them accepts will do.
/// Failures are `SIGNATURE_INVALID`.
/// Errors: `INVALID_ARGUMENT` for NULL, bad UTF-8, an empty pattern, unreadable roots or
/// keys, a malformed regular expression, or a repository other than an earlier
/// requirement's for the same pattern.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wasm_image_client_options_require_keyless_signature(
    options: *const wasm_image_client_options_t,
    pattern: *const c_char,
    fulcio_roots_pem: *const u8,
    fulcio_roots_len: usize,
    rekor_keys_pem: *const u8,
    rekor_keys_len: usize,
    issuer: *const c_char,
    issuer_is_regex: bool,
    subject: *const c_char,
    subject_is_regex: bool,
    repository: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let pattern = arg_str!(pattern, "pattern").to_string();
        let roots = arg_bytes!(fulcio_roots_pem, fulcio_roots_len, "fulcio_roots_pem");
        let rekor = arg_bytes!(rekor_keys_pem, rekor_keys_len, "rekor_keys_pem");
        let trust = unsafe {
            crate::call::keyless_trust_from(
                roots,
                rekor,
                issuer,
                issuer_is_regex,
                subject,
                subject_is_regex,
                repository,
            )
        }?;
        let mut result = Ok(());
        edit(options, |o| result = o.verification.require(&pattern, trust));
        result
    })
}

/// Exempts locations matching `pattern` (say `oci:*`) from a broader
/// `wasm_image_client_options_require_signature` rule. For a pattern that already has a
/// requirement, the later of the two stands.
/// Errors: `INVALID_ARGUMENT` for NULL, bad UTF-8 or an empty pattern.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_options_exempt_from_signature(
    options: *const wasm_image_client_options_t,
    pattern: *const c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let pattern = arg_str!(pattern, "pattern").to_string();
        let mut result = Ok(());
        edit(options, |o| result = o.verification.exempt(&pattern));
        result
    })
}
