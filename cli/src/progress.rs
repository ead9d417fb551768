//! Progress bars on a terminal: one line per blob, redrawn in place with carriage
//! returns (no other terminal codes), at most ten times a second.

use std::collections::HashSet;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasm_image::{Progress, ProgressEvent};

const WIDTH: usize = 30;
const REDRAW_EVERY: Duration = Duration::from_millis(100);

#[derive(Default)]
pub(crate) struct Bars {
    current: Option<String>,
    finished: HashSet<String>,
    last_draw: Option<Instant>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars::default()
    }

    /// The callback core calls (on the thread that made the call).
    pub fn into_progress(self) -> Progress {
        let bars = Mutex::new(self);
        Arc::new(move |event: &ProgressEvent| {
            let mut bars = bars.lock().unwrap_or_else(|p| p.into_inner());
            let mut stderr = io::stderr().lock();
            // A terminal that went away is no reason to stop a transfer.
            let _ = bars.draw(event, Instant::now(), &mut stderr);
        })
    }

    fn draw(&mut self, event: &ProgressEvent, now: Instant, w: &mut impl Write) -> io::Result<()> {
        let digest = event.digest.to_string();
        if self.finished.contains(&digest) {
            return Ok(());
        }
        if self.current.as_ref().is_some_and(|c| *c != digest) {
            w.write_all(b"\n")?;
        }
        self.current = Some(digest.clone());
        let done = event.done >= event.total;
        if !done && self.last_draw.is_some_and(|last| now - last < REDRAW_EVERY) {
            return Ok(());
        }
        self.last_draw = Some(now);
        let fraction = if event.total == 0 {
            1.0
        } else {
            (event.done as f64 / event.total as f64).min(1.0)
        };
        let filled = (fraction * WIDTH as f64) as usize;
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
        let short: String = event.digest.hex().chars().take(12).collect();
        write!(
            w,
            "\r{short} [{bar}] {} / {}",
            size(event.done),
            size(event.total)
        )?;
        if done {
            w.write_all(b"\n")?;
            self.finished.insert(digest);
            self.current = None;
        }
        w.flush()
    }
}

/// `512 B`, `1.5 KiB`, `3.0 MiB`, `2.1 GiB`.
fn size(bytes: u64) -> String {
    let mut n = bytes as f64;
    for unit in ["B", "KiB", "MiB"] {
        if n < 1024.0 {
            return if unit == "B" {
                format!("{n:.0} {unit}")
            } else {
                format!("{n:.1} {unit}")
            };
        }
        n /= 1024.0;
    }
    format!("{n:.1} GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_image::Digest;

    fn event(digest: &Digest, done: u64, total: u64) -> ProgressEvent {
        ProgressEvent {
            digest: digest.clone(),
            media_type: "application/vnd.wasm.content.layer.v1+wasm".into(),
            done,
            total,
        }
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(size(3 << 40), "3072.0 GiB");
    }

    #[test]
    fn a_blob_is_redrawn_in_place_and_finished_once() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let mut bars = Bars::new();
        let mut out = Vec::new();
        let t0 = Instant::now();
        bars.draw(&event(&a, 0, 2 << 20), t0, &mut out).unwrap();
        // Too soon after the last draw: skipped.
        bars.draw(&event(&a, 1 << 20, 2 << 20), t0, &mut out)
            .unwrap();
        bars.draw(&event(&a, 1 << 20, 2 << 20), t0 + REDRAW_EVERY, &mut out)
            .unwrap();
        // The end is always drawn, and later events of that blob are ignored.
        bars.draw(&event(&a, 2 << 20, 2 << 20), t0 + REDRAW_EVERY, &mut out)
            .unwrap();
        bars.draw(
            &event(&a, 2 << 20, 2 << 20),
            t0 + REDRAW_EVERY * 9,
            &mut out,
        )
        .unwrap();
        bars.draw(&event(&b, 0, 0), t0 + REDRAW_EVERY * 9, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let short_a = &a.hex()[..12];
        let short_b = &b.hex()[..12];
        assert_eq!(
            text,
            format!(
                "\r{short_a} [..............................] 0 B / 2.0 MiB\
                 \r{short_a} [###############...............] 1.0 MiB / 2.0 MiB\
                 \r{short_a} [##############################] 2.0 MiB / 2.0 MiB\n\
                 \r{short_b} [##############################] 0 B / 0 B\n"
            )
        );
    }
}
