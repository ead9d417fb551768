//! How fast the SHA-256 code that verifies every pulled byte runs on this machine: the
//! `sha2` crate as the library uses it (SHA-NI when the CPU has it, chosen at run time),
//! over 1 MiB pieces of 256 MiB, best of five passes, timed in this thread's CPU time (as
//! `openssl speed` times itself, so other processes on the machine do not count).
//! Compare with `openssl speed -evp sha256 -bytes 1048576`.
//!
//!     cargo run --release -p wasm-image --example sha256_speed

use sha2::{Digest, Sha256};

/// Seconds of CPU this thread has used.
#[cfg(unix)]
fn thread_cpu() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// Elsewhere, wall time since the first call: right only on an idle machine.
#[cfg(not(unix))]
fn thread_cpu() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}

fn main() {
    const PIECE: usize = 1 << 20;
    const TOTAL: usize = 256 << 20;
    let piece: Vec<u8> = (0..PIECE).map(|i| (i * 31 + i / 977) as u8).collect();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = thread_cpu();
        let mut hasher = Sha256::new();
        for _ in 0..TOTAL / PIECE {
            hasher.update(&piece);
        }
        std::hint::black_box(hasher.finalize());
        best = best.min(thread_cpu() - started);
    }
    println!(
        "sha2 SHA-256: {:.2} GB/s ({:.1} ms per 50 MiB; SHA-NI {})",
        TOTAL as f64 / best / 1e9,
        best * 1e3 * 50.0 / 256.0,
        sha_ni()
    );
}

#[cfg(target_arch = "x86_64")]
fn sha_ni() -> &'static str {
    if std::arch::is_x86_feature_detected!("sha") {
        "present"
    } else {
        "absent"
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn sha_ni() -> &'static str {
    "not an x86-64 CPU"
}
