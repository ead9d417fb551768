//! Gives the shared library its soname (`libwasmimage.so.MAJOR`), derived from the Cargo
//! version so nothing is kept in sync by hand. The static library needs nothing.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let major =
        std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    if os == "linux" || os == "freebsd" || os == "netbsd" || os == "openbsd" || os == "dragonfly" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libwasmimage.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
