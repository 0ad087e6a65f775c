//! A small stderr logger for the `log` facade: emulator gaps and guest nonsense that devices
//! report (DESIGN.md §9: logged once, with the PC and encoding) reach the user as
//! `emu: warning: ...` lines. Rate-limited, because a guest controls how often a device
//! complains.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Messages printed before the logger goes quiet.
pub const MAX_MESSAGES: u64 = 200;

struct StderrLogger {
    printed: AtomicU64,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let n = self.printed.fetch_add(1, Ordering::Relaxed);
        let mut err = std::io::stderr().lock();
        if n < MAX_MESSAGES {
            let level = match record.level() {
                Level::Error => "error",
                Level::Warn => "warning",
                Level::Info => "info",
                Level::Debug => "debug",
                Level::Trace => "trace",
            };
            let _ = writeln!(err, "emu: {level}: {}", record.args());
        } else if n == MAX_MESSAGES {
            let _ = writeln!(err, "emu: warning: further log messages suppressed");
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

static LOGGER: StderrLogger = StderrLogger {
    printed: AtomicU64::new(0),
};

/// Parse a `--log` level name.
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    match s {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// Install the logger at `level` (once per process; later calls only change the level).
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        assert_eq!(parse_level("warn"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("off"), Some(LevelFilter::Off));
        assert_eq!(parse_level("loud"), None);
    }
}
