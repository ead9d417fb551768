//! Log events of the library, forwarded to one C callback.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use wasm_image::logging::{clear_sink, set_sink, LogLevel, LogRecord};
use wasm_image::Error;

use crate::boundary::{ffi_boundary, in_entry_point};
use crate::call::UserData;
use crate::wasm_image_error_t;

/// Severity of a log event; a callback set for a level receives that level and the
/// more severe ones.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wasm_image_log_level_t {
    WASM_IMAGE_LOG_LEVEL_ERROR = 1,
    WASM_IMAGE_LOG_LEVEL_WARN = 2,
    WASM_IMAGE_LOG_LEVEL_INFO = 3,
    WASM_IMAGE_LOG_LEVEL_DEBUG = 4,
    WASM_IMAGE_LOG_LEVEL_TRACE = 5,
}

impl From<LogLevel> for wasm_image_log_level_t {
    fn from(level: LogLevel) -> Self {
        use wasm_image_log_level_t::*;
        match level {
            LogLevel::Error => WASM_IMAGE_LOG_LEVEL_ERROR,
            LogLevel::Warn => WASM_IMAGE_LOG_LEVEL_WARN,
            LogLevel::Info => WASM_IMAGE_LOG_LEVEL_INFO,
            LogLevel::Debug => WASM_IMAGE_LOG_LEVEL_DEBUG,
            LogLevel::Trace => WASM_IMAGE_LOG_LEVEL_TRACE,
        }
    }
}

fn level_from_c(level: u32) -> Option<LogLevel> {
    [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ]
    .into_iter()
    .find(|l| *l as u32 == level)
}

/// One log event. The strings are valid only during the callback.
#[repr(C)]
pub struct wasm_image_log_record_t {
    /// The event's severity.
    pub level: wasm_image_log_level_t,
    /// The part of the library that logged, e.g. `"wasm_image::client"`.
    pub target: *const c_char,
    /// The message, followed by its fields as `key=value`.
    pub message: *const c_char,
}

/// Receives log events. It must return normally (no `longjmp`, no C++ exception) and must
/// not call blocking wasm-image functions (they would return `INVALID_ARGUMENT`).
pub type wasm_image_log_callback_t =
    Option<unsafe extern "C" fn(user_data: *mut c_void, record: *const wasm_image_log_record_t)>;

/// Sends the library's log events at `max_level` and more severe to `callback`, replacing
/// any callback set before; a NULL `callback` stops logging. Process-wide.
///
/// The callback runs only on threads that are inside a wasm-image call, the threads that
/// made them: the events of a blocking call (pull, push, copy, resolve), including those
/// of the library threads working for it, are delivered on the calling thread while the
/// call runs. Events on library threads outside any call (a dependency's background
/// connection housekeeping) are not reported. Calls on several threads deliver their
/// events concurrently, each on its own thread, so a callback shared by threads that call
/// wasm-image at the same time must be thread-safe. When the host process already
/// installed a global Rust `tracing` subscriber, the events go to that subscriber instead.
///
/// Errors: `INVALID_ARGUMENT` when `max_level` is not a `wasm_image_log_level_t`.
/// Thread safety: any thread; calls in flight switch to the new callback.
#[no_mangle]
pub unsafe extern "C" fn wasm_image_set_log_callback(
    max_level: u32,
    callback: wasm_image_log_callback_t,
    user_data: *mut c_void,
) -> *mut wasm_image_error_t {
    ffi_boundary!(fallible {
        let level = level_from_c(max_level).ok_or_else(|| {
            Error::invalid_argument(format!("max_level {max_level} is not a wasm_image_log_level_t (1 to 5)"))
        })?;
        let Some(callback) = callback else {
            clear_sink();
            return Ok(());
        };
        let user_data = UserData(user_data);
        set_sink(
            Arc::new(move |record: &LogRecord| {
                if !in_entry_point() {
                    // A library thread outside any call (a dependency's background
                    // connection housekeeping): C only hears from its own threads.
                    return;
                }
                let target = CString::new(record.target.as_str()).unwrap_or_default();
                let message = CString::new(record.message.replace('\0', " ")).unwrap_or_default();
                let c_record = wasm_image_log_record_t {
                    level: record.level.into(),
                    target: target.as_ptr(),
                    message: message.as_ptr(),
                };
                // SAFETY: the caller's callback with its own user data; the record lives
                // until it returns.
                unsafe { callback(user_data.get(), &c_record) };
            }),
            level,
        );
        Ok(())
    })
}
