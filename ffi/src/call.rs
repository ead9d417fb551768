//! What one call takes besides its arguments: platform, progress callback, cancellation.

use std::ffi::{c_char, c_void, CString};
use std::future::Future;
use std::sync::{Arc, Mutex};

use wasm_image::logging::deliver_on_caller;
use wasm_image::runtime::{block_on, Blocking};
use wasm_image::{CallOptions, CancellationToken, Platform, Progress, ProgressEvent, Result};

use crate::boundary::{arg_bytes, arg_handle, arg_str, ffi_boundary};
use crate::handle::{self, Handle};

/// A cancellation token: cancel it from any thread and every call that was given it
/// returns `WASM_IMAGE_ERROR_KIND_CANCELLED` promptly (calls started with it afterwards
/// return that at once). Thread-safe; free it with `wasm_image_cancel_token_free` once
/// no call uses it any more (a call keeps its own reference, so freeing it during a call
/// is safe, but the call can then no longer be cancelled through it).
pub struct wasm_image_cancel_token_t {
    token: CancellationToken,
}

impl Handle for wasm_image_cancel_token_t {
    const NAME: &'static str = "wasm_image_cancel_token_t";
}

/// Makes a token, not cancelled. Never returns NULL. Free with
/// `wasm_image_cancel_token_free`.
#[no_mangle]
pub extern "C" fn wasm_image_cancel_token_new() -> *mut wasm_image_cancel_token_t {
    ffi_boundary!({
        handle::into_raw(wasm_image_cancel_token_t {
            token: CancellationToken::new(),
        })
    })
}

/// Cancels the token: calls using it return `CANCELLED` promptly. Cancelling twice is
/// fine. Safe from any thread, including a signal-free watchdog thread or a progress
/// callback. Errors: `INVALID_ARGUMENT` for NULL or a freed token.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cancel_token_cancel(
    token: *const wasm_image_cancel_token_t,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        arg_handle!(token, "token").token.cancel();
        Ok(())
    })
}

/// Whether the token was cancelled (false for NULL). Any thread.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cancel_token_is_cancelled(
    token: *const wasm_image_cancel_token_t,
) -> bool {
    ffi_boundary!({ unsafe { handle::peek(token) }.is_some_and(|t| t.token.is_cancelled()) })
}

/// Frees a token. NULL and a second free are ignored.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_cancel_token_free(token: *mut wasm_image_cancel_token_t) {
    ffi_boundary!({
        unsafe { handle::free(token) };
    })
}

/// One progress report of a blob transfer. The strings are valid only during the
/// callback.
#[repr(C)]
pub struct wasm_image_progress_t {
    /// The blob's digest, `"sha256:…"`.
    pub digest: *const c_char,
    /// The blob's media type.
    pub media_type: *const c_char,
    /// Bytes moved so far for this blob.
    pub done: u64,
    /// The blob's size.
    pub total: u64,
}

/// Receives progress reports, on the thread that made the call, at most every 50 ms per
/// blob and always at its start and end. It must return normally (no `longjmp`, no C++
/// exception) and must not call blocking wasm-image functions (they would return
/// `INVALID_ARGUMENT`); it may cancel a token.
pub type wasm_image_progress_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const wasm_image_progress_t)>;

/// A C pointer the caller vouches for: it is only used on the calling thread (progress)
/// or as the caller documented (logs).
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: wasm-image never dereferences it; it is handed back to the caller's callback,
// whose thread rules the header documents.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// By method, so closures capture the whole `UserData` (which is Send + Sync), not
    /// the raw pointer field.
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

#[derive(Clone, Default)]
struct CallSettings {
    platform: Option<Platform>,
    progress: Option<(
        unsafe extern "C" fn(*mut c_void, *const wasm_image_progress_t),
        UserData,
    )>,
    cancel: Option<CancellationToken>,
    verify: Option<wasm_image::Requirement>,
    sign_with: Option<std::sync::Arc<wasm_image::SigningKey>>,
}

/// A trust from PEM public keys and an optional repository (NULL: any).
///
/// # Safety
/// `repository` is NULL or a NUL-terminated string that outlives the call.
pub(crate) unsafe fn trust_from(
    public_keys_pem: &[u8],
    repository: *const c_char,
) -> Result<wasm_image::Trust> {
    let keys = wasm_image::PublicKey::all_from_pem(public_keys_pem)?;
    let trust = wasm_image::Trust::keys(keys)?;
    if repository.is_null() {
        return Ok(trust);
    }
    let repository = unsafe { crate::boundary::str_arg(repository, "repository") }?;
    Ok(trust.with_repository(repository))
}

/// A trust in keyless signatures: Fulcio roots (PEM `CERTIFICATE` blocks) and Rekor keys
/// (PEM `PUBLIC KEY` blocks), the certificate identity (each side exact, or a regular
/// expression over the whole value when its flag is set) and an optional repository
/// (NULL: any). Core decides what is valid; this only reads the arguments.
///
/// # Safety
/// The strings are NULL or NUL-terminated and outlive the call.
pub(crate) unsafe fn keyless_trust_from(
    fulcio_roots_pem: &[u8],
    rekor_keys_pem: &[u8],
    issuer: *const c_char,
    issuer_is_regex: bool,
    subject: *const c_char,
    subject_is_regex: bool,
    repository: *const c_char,
) -> Result<wasm_image::Trust> {
    use wasm_image::signature::keyless::{CertificateIdentity, IdentityMatch, KeylessTrust};
    let issuer = unsafe { crate::boundary::str_arg(issuer, "issuer") }?;
    let subject = unsafe { crate::boundary::str_arg(subject, "subject") }?;
    let identity = CertificateIdentity {
        issuer: IdentityMatch::new(issuer, issuer_is_regex)?,
        subject: IdentityMatch::new(subject, subject_is_regex)?,
    };
    let keyless = KeylessTrust::from_pem(fulcio_roots_pem, rekor_keys_pem, identity)?;
    let trust = wasm_image::Trust::keyless(vec![keyless])?;
    if repository.is_null() {
        return Ok(trust);
    }
    let repository = unsafe { crate::boundary::str_arg(repository, "repository") }?;
    Ok(trust.with_repository(repository))
}

/// Options of one call (pull, push, copy, resolve): platform, progress callback,
/// cancellation token. Passing NULL instead means no callback, no token and the
/// client's platform. The setters may be used from any thread (each call takes a
/// snapshot); one options object may serve many calls, also concurrently.
pub struct wasm_image_call_options_t {
    settings: Mutex<CallSettings>,
}

impl Handle for wasm_image_call_options_t {
    const NAME: &'static str = "wasm_image_call_options_t";
}

impl wasm_image_call_options_t {
    fn edit<T>(&self, change: impl FnOnce(&mut CallSettings) -> T) -> T {
        change(&mut self.settings.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds `trust` to what these options require (see [`Requirement::adding`]).
    fn require(&self, trust: wasm_image::Trust) -> wasm_image::Result<()> {
        self.edit(|s| {
            let earlier = s.verify.as_ref().unwrap_or(&wasm_image::Requirement::None);
            s.verify = Some(earlier.adding(trust)?);
            Ok(())
        })
    }
}

/// Makes call options with nothing set. Never returns NULL. Free with
/// `wasm_image_call_options_free`.
#[no_mangle]
pub extern "C" fn wasm_image_call_options_new() -> *mut wasm_image_call_options_t {
    ffi_boundary!({
        handle::into_raw(wasm_image_call_options_t {
            settings: Mutex::new(CallSettings::default()),
        })
    })
}

/// Frees call options. NULL and a second free are ignored. Calls already running keep
/// their snapshot.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_free(options: *mut wasm_image_call_options_t) {
    ffi_boundary!({
        unsafe { handle::free(options) };
    })
}

/// The platform to choose from an index that offers several non-Wasm manifests,
/// `"OS/ARCH[/VARIANT]"` (e.g. `"wasip1/wasm"`, `"linux/amd64"`); overrides the client's.
/// NULL clears it. Errors: `INVALID_ARGUMENT` for a malformed platform or bad UTF-8.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_set_platform(
    options: *const wasm_image_call_options_t,
    platform: *const c_char,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let platform = if platform.is_null() {
            None
        } else {
            Some(arg_str!(platform, "platform").parse::<Platform>()?)
        };
        options.edit(|s| s.platform = platform);
        Ok(())
    })
}

/// Sets the progress callback (NULL removes it). `user_data` is passed back untouched;
/// the callback runs on the thread that made the call, so it needs no locking of its own
/// for data only that thread uses.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_set_progress(
    options: *const wasm_image_call_options_t,
    callback: wasm_image_progress_callback_t,
    user_data: *mut c_void,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let progress = callback.map(|cb| (cb, UserData(user_data)));
        options.edit(|s| s.progress = progress);
        Ok(())
    })
}

/// Makes calls with these options cancellable through `token` (NULL removes it). The
/// options keep their own reference: the token may be freed before them.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_set_cancel_token(
    options: *const wasm_image_call_options_t,
    token: *const wasm_image_cancel_token_t,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let token = if token.is_null() {
            None
        } else {
            Some(arg_handle!(token, "token").token.clone())
        };
        options.edit(|s| s.cancel = token);
        Ok(())
    })
}

fn progress_to_c(
    callback: unsafe extern "C" fn(*mut c_void, *const wasm_image_progress_t),
    user_data: UserData,
) -> Progress {
    Arc::new(move |event: &ProgressEvent| {
        let digest = CString::new(event.digest.to_string()).unwrap_or_default();
        let media_type = CString::new(event.media_type.as_str()).unwrap_or_default();
        let report = wasm_image_progress_t {
            digest: digest.as_ptr(),
            media_type: media_type.as_ptr(),
            done: event.done,
            total: event.total,
        };
        // SAFETY: a C function pointer given by the caller, called with its own user data
        // and a report that lives until it returns.
        unsafe { callback(user_data.get(), &report) };
    })
}

/// Runs one operation to completion on the calling thread's behalf: progress reports and
/// log events arrive on this thread, the token cancels it.
pub(crate) fn blocking<T, F, Fut>(
    options: Option<&wasm_image_call_options_t>,
    operation: F,
) -> Result<T>
where
    F: FnOnce(CallOptions) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let settings = options
        .map(|o| o.settings.lock().unwrap_or_else(|p| p.into_inner()).clone())
        .unwrap_or_default();
    let progress = settings.progress.map(|(cb, data)| progress_to_c(cb, data));
    let platform = settings.platform.clone();
    block_on(
        Blocking {
            cancel: settings.cancel.as_ref(),
            interrupted: None,
            progress,
        },
        move |progress| {
            // CallOptions may gain fields; the binding sets only these.
            #[allow(clippy::needless_update)]
            let call = CallOptions {
                platform,
                progress,
                verify: settings.verify,
                sign_with: settings.sign_with,
                ..Default::default()
            };
            // Log events of this call reach the callback on this thread.
            deliver_on_caller(operation(call))
        },
    )
}

/// Requires, for calls with these options (pull, pull to file, fetch), a cosign
/// signature by one of the keys in `public_keys_pem` (one or more PEM `PUBLIC KEY`
/// blocks), made for `repository` when not NULL; this replaces the client's policy for
/// the call. A keyless requirement set on the same options adds to this one: a signature
/// either accepts will do (their repositories must agree).
/// Failures are `SIGNATURE_INVALID`, with nothing returned or written.
/// Errors: `INVALID_ARGUMENT` for NULL, bad UTF-8, unreadable keys, or a repository
/// other than an earlier requirement's on the same options.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_require_signature(
    options: *const wasm_image_call_options_t,
    public_keys_pem: *const u8,
    len: usize,
    repository: *const c_char,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let keys = arg_bytes!(public_keys_pem, len, "public_keys_pem");
        let trust = unsafe { trust_from(keys, repository) }?;
        options.require(trust)
    })
}

/// Requires, for calls with these options (pull, pull to file, fetch), a cosign
/// *keyless* signature, checked offline: its certificate chains to one of the Fulcio
/// roots in `fulcio_roots_pem` (PEM `CERTIFICATE` blocks), its Rekor bundle is signed by
/// one of the keys in `rekor_keys_pem` (PEM `PUBLIC KEY` blocks, ECDSA P-256 or P-384),
/// and its identity matches: the OIDC issuer `issuer` and the subject (email or URI)
/// `subject`, each compared exactly, or as a regular expression over the whole value
/// when its `..._is_regex` flag is true. When `repository` is not NULL the signed
/// payload must name it. This replaces the client's policy for the call, and adds to a
/// `wasm_image_call_options_require_signature` on the same options: a signature either
/// accepts will do. Failures are `SIGNATURE_INVALID`, with nothing returned or written.
/// Errors: `INVALID_ARGUMENT` for NULL, bad UTF-8, unreadable roots or keys, a
/// malformed regular expression, or a repository other than an earlier requirement's on
/// the same options.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn wasm_image_call_options_require_keyless_signature(
    options: *const wasm_image_call_options_t,
    fulcio_roots_pem: *const u8,
    fulcio_roots_len: usize,
    rekor_keys_pem: *const u8,
    rekor_keys_len: usize,
    issuer: *const c_char,
    issuer_is_regex: bool,
    subject: *const c_char,
    subject_is_regex: bool,
    repository: *const c_char,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let roots = arg_bytes!(fulcio_roots_pem, fulcio_roots_len, "fulcio_roots_pem");
        let rekor = arg_bytes!(rekor_keys_pem, rekor_keys_len, "rekor_keys_pem");
        let trust = unsafe {
            keyless_trust_from(
                roots,
                rekor,
                issuer,
                issuer_is_regex,
                subject,
                subject_is_regex,
                repository,
            )
        }?;
        options.require(trust)
    })
}

/// Checks no signature in calls with these options, whatever the client's policy says
/// (and undoes an earlier requirement on the same options; a later one applies again).
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_skip_signature(
    options: *const wasm_image_call_options_t,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        options.edit(|s| s.verify = Some(wasm_image::Requirement::None));
        Ok(())
    })
}

/// Makes `wasm_image_push` with these options sign the pushed manifest the way
/// `cosign sign` does, with the private key in `key_pem`: unencrypted PKCS#8, or
/// cosign's encrypted `cosign.key` whose password is in the environment variable
/// `password_env` (e.g. `"COSIGN_PASSWORD"`; NULL for an unencrypted key).
/// Errors: `INVALID_ARGUMENT` for NULL, bad UTF-8, an unreadable key, a wrong password
/// or an unset variable.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_call_options_set_signing_key(
    options: *const wasm_image_call_options_t,
    key_pem: *const u8,
    len: usize,
    password_env: *const c_char,
) -> *mut crate::wasm_image_error_t {
    ffi_boundary!(fallible {
        let options = arg_handle!(options, "options");
        let pem = arg_bytes!(key_pem, len, "key_pem");
        let env = if password_env.is_null() {
            None
        } else {
            Some(arg_str!(password_env, "password_env").to_string())
        };
        let password = wasm_image::signature::keys::password(None, env.as_deref())?;
        let key = wasm_image::SigningKey::from_pem(pem, password.as_deref().map(|p| p.as_slice()))?;
        options.edit(|s| s.sign_with = Some(std::sync::Arc::new(key)));
        Ok(())
    })
}
