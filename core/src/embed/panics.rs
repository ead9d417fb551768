//! The panic boundary of the bindings that have no `catch_unwind` of their own: a panic
//! anywhere in an operation becomes an `INTERNAL` error, so a caller handling the
//! library's errors handles it too (Python's `PanicException` is a `BaseException` that
//! `except Exception` would not catch).

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use futures_util::FutureExt as _;

use crate::error::{Error, Result};

/// What a panic said, when it said it with a string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

fn internal(payload: &(dyn std::any::Any + Send)) -> Error {
    Error::internal(format!(
        "wasm-image panicked (a bug; please report it): {}",
        panic_message(payload)
    ))
}

/// Runs `work`, turning a panic into an `INTERNAL` error.
pub fn catch_panic<T>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| Err(internal(&*payload)))
}

/// Awaits `future`, turning a panic while polling it into an `INTERNAL` error.
pub async fn catch_panic_async<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .unwrap_or_else(|payload| Err(internal(&*payload)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn panics_become_internal_errors() {
        let err = catch_panic(|| -> Result<()> { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains("boom 7"), "{err}");
        assert_eq!(catch_panic(|| Ok(5)).unwrap(), 5);
    }

    #[tokio::test]
    async fn panics_in_futures_become_internal_errors() {
        let err = catch_panic_async(async {
            if true {
                panic!("async boom");
            }
            Ok::<(), Error>(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert!(err.message().contains("async boom"), "{err}");
    }
}
