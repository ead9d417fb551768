//! Python argument values converted to core's types, with the error a Python caller
//! expects for a bad one.

use std::time::Duration;

use pyo3::prelude::*;

use crate::errors::invalid_argument;

/// Seconds as a `Duration`; a negative or non-finite number is `INVALID_ARGUMENT`.
pub(crate) fn seconds(py: Python<'_>, name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid_argument(
            py,
            format!("{name} must be a non-negative number of seconds, got {value}"),
        )
    })
}
