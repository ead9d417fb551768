//! Exit statuses: the one table the command line's callers (scripts, CI) rely on.

use wasm_image::ErrorKind;

/// A command-line mistake the library never saw.
pub const EXIT_USAGE: i32 = 2;
/// The user pressed Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: i32 = 130;
/// The reader of stdout went away (`wasm-image pull X | head`): not our failure.
pub(crate) const EXIT_BROKEN_PIPE: i32 = 1;

/// The exit status of a library failure: 10 + the kind's code, the C enum's number.
pub fn exit_status(kind: ErrorKind) -> i32 {
    10 + kind.code() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers follow the committed C header, which scripts in other languages read.
    #[test]
    fn exit_statuses_are_ten_plus_the_c_enum() {
        let header = include_str!("../../include/wasm_image.h");
        let mut seen = 0;
        for kind in ErrorKind::ALL {
            let needle = format!("WASM_IMAGE_ERROR_KIND_{} = ", kind.name());
            let start = header
                .find(&needle)
                .unwrap_or_else(|| panic!("{} is not in the C header", kind.name()))
                + needle.len();
            let number: i32 = header[start..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .expect("a number after the enum name");
            assert_eq!(exit_status(kind), 10 + number, "{}", kind.name());
            seen += 1;
        }
        assert!(seen >= 15);
        assert_eq!(exit_status(ErrorKind::NotFound), 13);
        assert_eq!(exit_status(ErrorKind::Internal), 25);
    }
}
