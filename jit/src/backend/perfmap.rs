//! Linux `perf` map of the generated code (`/tmp/perf-PID.map`), the format perf reads for JIT
//! code without debug information (tools/perf/Documentation/jit-interface.txt): one line per
//! code range, `START SIZE name`, START and SIZE in hex without `0x`. QEMU writes the same file
//! with `-perfmap`.
//!
//! Off unless [`enable`] is called (emu's `--perf-map`): writing a line per compiled block
//! costs a formatted write per compilation, nothing on the hot path.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static ENABLED: AtomicBool = AtomicBool::new(false);
static FILE: Mutex<Option<File>> = Mutex::new(None);

/// The map's path for this process.
pub fn path() -> String {
    format!("/tmp/perf-{}.map", std::process::id())
}

/// Start writing the perf map (truncating an old file of the same PID). Returns the path.
pub fn enable() -> std::io::Result<String> {
    let p = path();
    let f = File::create(&p)?;
    if let Ok(mut g) = FILE.lock() {
        *g = Some(f);
    }
    ENABLED.store(true, Ordering::Release);
    Ok(p)
}

/// Whether [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Record `size` bytes of code at `start` named `name`. A write error turns the map off (logged
/// once): profiling must not stop the emulator.
pub fn record(start: usize, size: usize, name: &dyn std::fmt::Display) {
    if !enabled() {
        return;
    }
    let Ok(mut g) = FILE.lock() else { return };
    if let Some(f) = g.as_mut() {
        if let Err(e) = writeln!(f, "{start:x} {size:x} {name}") {
            log::warn!("perf map: {e}; no more entries are written");
            *g = None;
            ENABLED.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_hex_start_size_name() {
        let p = enable().expect("perf map in /tmp");
        record(0x7f00_1234_0000, 0x1a0, &"guest_0x80200000");
        record(0x10, 0x20, &format_args!("emu_{}", 7));
        let text = std::fs::read_to_string(&p).expect("read back");
        let _ = std::fs::remove_file(&p);
        assert!(
            text.contains("7f0012340000 1a0 guest_0x80200000\n"),
            "{text}"
        );
        assert!(text.contains("10 20 emu_7\n"), "{text}");
    }
}
