//! The `wasm-image` binary: the command line of `lib.rs`, with Ctrl-C watched.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The first Ctrl-C asks the running operation to stop and clean up (its partial files
/// removed); a second one ends the process at once.
extern "C" fn on_sigint(_: libc::c_int) {
    if INTERRUPTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(wasm_image_cli::EXIT_INTERRUPTED) };
    }
}

fn watch_ctrl_c() {
    // SAFETY: the handler only touches an atomic and calls _exit; the struct is zeroed
    // and then filled as sigaction(2) asks.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

fn main() {
    watch_ctrl_c();
    let status = wasm_image_cli::run_with(std::env::args_os().collect(), &mut || {
        INTERRUPTED.load(Ordering::SeqCst)
    });
    std::process::exit(status);
}
