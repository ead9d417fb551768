pub mod cosign_key;
pub mod keyless;
#[cfg(any(test, feature = "testkit"))]
pub mod keyless_testkit;
pub(crate) mod pem;
