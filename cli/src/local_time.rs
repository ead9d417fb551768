//! A time as the local clock shows it, `YYYY-MM-DD HH:MM:SS` (the `cache list` column).

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn format(time: SystemTime) -> String {
    let seconds = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as libc::time_t,
        Err(_) => 0,
    };
    // SAFETY: localtime_r only writes the `tm` it is given; an all-zero `tm` is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let converted = unsafe { libc::localtime_r(&seconds, &mut tm) };
    if converted.is_null() {
        return "????-??-?? ??:??:??".to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_as_the_local_clock_does() {
        let text = format(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(text.len(), 19, "{text}");
        // Any timezone is within a day of UTC's 2023-11-14 22:13:20.
        assert!(text.starts_with("2023-11-1"), "{text}");
        assert!(text.ends_with(":20"), "{text}");
    }
}
