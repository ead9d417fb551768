//! The client and the operations: pull, pull to a file, push, copy, resolve.

use std::ffi::c_char;
use std::path::Path;

use wasm_image::{Client, ClientOptions, Error};

use crate::boundary::{
    arg_handle, arg_optional_handle, arg_optional_out, arg_out, arg_str, ffi_boundary,
};
use crate::call::{blocking, wasm_image_call_options_t};
use crate::handle::{self, Handle};
use crate::image::wasm_image_image_t;
use crate::options::wasm_image_client_options_t;
use crate::wasm_image_error_t;

/// A client: options plus connection state (connection pools, tokens). Thread-safe:
/// one client may serve any number of concurrent calls from any threads, which share
/// its connections. Make one per configuration and keep it; free it with
/// `wasm_image_client_free` once no call uses it.
pub struct wasm_image_client_t {
    client: Client,
}

impl Handle for wasm_image_client_t {
    const NAME: &'static str = "wasm_image_client_t";
}

impl wasm_image_client_t {
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

/// Makes a client. `options` may be NULL for the defaults; they are copied, so they may
/// be freed right after. On success `*client_out` receives the client; on failure NULL.
///
/// Errors: `INVALID_ARGUMENT` for a malformed CA certificate or docker config JSON, or
/// other options that cannot work.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_new(
    options: *const wasm_image_client_options_t,
    client_out: *mut *mut wasm_image_client_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(client_out, "client_out", std::ptr::null_mut());
        let options = match arg_optional_handle!(options, "options") {
            Some(o) => o.snapshot(),
            None => ClientOptions::default(),
        };
        let client = Client::new(options)?;
        *out = handle::into_raw(wasm_image_client_t { client });
        Ok(())
    })
}

/// Frees a client. NULL and a second free are ignored. Not while a call on another
/// thread still uses it: cancel those calls and let them return first.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_client_free(client: *mut wasm_image_client_t) {
    ffi_boundary!({
        unsafe { handle::free(client) };
    })
}

/// Fetches the image at `location`, verifies every digest and size, and extracts the
/// module into memory. `location` is any location form (`HOST[:PORT]/REPO[:TAG][@DIGEST]`,
/// `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:FILE[:REF]`). `call` may be
/// NULL. On success `*image_out` receives the image (free with `wasm_image_image_free`);
/// on failure NULL.
///
/// Blocks the calling thread until done; progress callbacks run on it. Errors:
/// `INVALID_REFERENCE`, `NOT_FOUND`, `UNAUTHORIZED`, `FORBIDDEN`, `RATE_LIMITED`,
/// `INVALID_FORMAT`, `DIGEST_MISMATCH`, `LIMIT_EXCEEDED`, `NETWORK`, `TIMEOUT`,
/// `CANCELLED`, `IO`, `REGISTRY`; `INVALID_ARGUMENT` for bad parameters or when called
/// from inside a wasm-image callback.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_pull(
    client: *const wasm_image_client_t,
    location: *const c_char,
    call: *const wasm_image_call_options_t,
    image_out: *mut *mut wasm_image_image_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_out!(image_out, "image_out", std::ptr::null_mut());
        let client = &arg_handle!(client, "client").client;
        let location = arg_str!(location, "location");
        let call = arg_optional_handle!(call, "call");
        let image = blocking(call, |options| async move { client.pull(location, &options).await })?;
        *out = wasm_image_image_t::from_image(image);
        Ok(())
    })
}

/// Like `wasm_image_pull`, but streams the module into the file at `path` instead of
/// memory; the file appears only once everything was verified (never half written).
/// `image_out` may be NULL; otherwise it receives an image whose module accessor gives
/// NULL (the module is in the file) and which cannot be pushed; every other accessor
/// works.
///
/// Errors: as `wasm_image_pull`, plus `INVALID_ARGUMENT` when `path` is a directory and
/// `IO` when the file cannot be written.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_pull_to_file(
    client: *const wasm_image_client_t,
    location: *const c_char,
    path: *const c_char,
    call: *const wasm_image_call_options_t,
    image_out: *mut *mut wasm_image_image_t,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_optional_out!(image_out, std::ptr::null_mut());
        let client = &arg_handle!(client, "client").client;
        let location = arg_str!(location, "location");
        let path = Path::new(arg_str!(path, "path"));
        let call = arg_optional_handle!(call, "call");
        let info = blocking(call, |options| async move { client.pull_to_file(location, path, &options).await })?;
        if let Some(out) = out {
            *out = wasm_image_image_t::from_info(info);
        }
        Ok(())
    })
}

/// Writes `image` (built, or pulled from anywhere) to `location`: a registry, `oci:DIR:TAG`
/// (made if missing) or `oci-archive:FILE:TAG`. Blobs already there are not sent again.
/// `digest_out` may be NULL; otherwise it receives the manifest digest, `"sha256:…"`, a
/// new string to free with `wasm_image_string_free` (NULL on failure).
///
/// Blocks like `wasm_image_pull`. Errors: as `wasm_image_pull`; `INVALID_ARGUMENT` for
/// an image from `wasm_image_pull_to_file` or a location pinning another digest.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_push(
    client: *const wasm_image_client_t,
    image: *const wasm_image_image_t,
    location: *const c_char,
    call: *const wasm_image_call_options_t,
    digest_out: *mut *mut c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_optional_out!(digest_out, std::ptr::null_mut());
        let client = &arg_handle!(client, "client").client;
        let image = arg_handle!(image, "image").image().ok_or_else(|| {
            Error::invalid_argument("image came from wasm_image_pull_to_file and holds no module; pull it into memory to push it")
        })?;
        let location = arg_str!(location, "location");
        let call = arg_optional_handle!(call, "call");
        let digest = blocking(call, |options| async move { client.push(image, location, &options).await })?;
        if let Some(out) = out {
            *out = handle::string_into_raw(&digest.to_string());
        }
        Ok(())
    })
}

/// Copies the image, or a whole index with every manifest it lists, from `source` to
/// `destination` (any two locations); digests are preserved: bytes are moved, never
/// re-encoded. `digest_out` as for `wasm_image_push` (the top manifest's or index's
/// digest).
///
/// Blocks like `wasm_image_pull`. Errors: as `wasm_image_pull`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_copy(
    client: *const wasm_image_client_t,
    source: *const c_char,
    destination: *const c_char,
    call: *const wasm_image_call_options_t,
    digest_out: *mut *mut c_char,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let out = arg_optional_out!(digest_out, std::ptr::null_mut());
        let client = &arg_handle!(client, "client").client;
        let source = arg_str!(source, "source");
        let destination = arg_str!(destination, "destination");
        let call = arg_optional_handle!(call, "call");
        let digest = blocking(call, |options| async move { client.copy(source, destination, &options).await })?;
        if let Some(out) = out {
            *out = handle::string_into_raw(&digest.to_string());
        }
        Ok(())
    })
}

/// Resolves `location` to the digest of the manifest or index it names, without
/// downloading the module (one request to a registry). `digest_out` (required) receives a
/// new string to free with `wasm_image_string_free`; `media_type_out` (may be NULL) the
/// media type, likewise; `size_out` (may be NULL) its size in bytes. On failure the
/// outputs are NULL and 0.
///
/// Blocks like `wasm_image_pull`. Errors: as `wasm_image_pull`.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_resolve(
    client: *const wasm_image_client_t,
    location: *const c_char,
    call: *const wasm_image_call_options_t,
    digest_out: *mut *mut c_char,
    media_type_out: *mut *mut c_char,
    size_out: *mut u64,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let digest_out = arg_out!(digest_out, "digest_out", std::ptr::null_mut());
        let media_type_out = arg_optional_out!(media_type_out, std::ptr::null_mut());
        let size_out = arg_optional_out!(size_out, 0);
        let client = &arg_handle!(client, "client").client;
        let location = arg_str!(location, "location");
        let call = arg_optional_handle!(call, "call");
        let resolved = blocking(call, |options| async move { client.resolve(location, &options).await })?;
        *digest_out = handle::string_into_raw(&resolved.digest.to_string());
        if let Some(out) = media_type_out {
            *out = handle::string_into_raw(&resolved.media_type);
        }
        if let Some(out) = size_out {
            *out = resolved.size;
        }
        Ok(())
    })
}

/// Frees a string returned by wasm-image (`digest_out` and `media_type_out` above).
/// NULL and a second free are ignored. Strings borrowed from handles are not freed this
/// way.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_string_free(string: *mut c_char) {
    ffi_boundary!({
        unsafe { handle::free_string(string) };
    })
}
