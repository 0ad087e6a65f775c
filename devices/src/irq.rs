//! Interrupt lines (DESIGN.md §5, §6): how a device signals an interrupt controller.
//!
//! Lines are level-triggered, as every wired interrupt on RISC-V `virt` is (PLIC spec 1.0.0 §5:
//! "interrupt gateways" for level-sensitive sources). A device holds an [`IrqLine`] and sets its
//! level whenever its interrupt condition changes; the controller behind the line (the PLIC, or a
//! test's recorder) implements [`IrqSink`]. A device never knows which controller or source
//! number it is wired to.

use std::fmt;
use std::sync::Arc;

/// Something that receives interrupt levels: an interrupt controller's inputs.
///
/// `set_level` may be called with an unchanged level; sinks must treat that as a no-op. A sink
/// must accept any `source` value (out-of-range sources are ignored, never a panic).
pub trait IrqSink: Send + Sync {
    /// Input `source` of this controller is now at `level` (true = asserted).
    fn set_level(&self, source: u32, level: bool);
}

/// One wire from a device to input `source` of an interrupt controller.
#[derive(Clone)]
pub struct IrqLine {
    sink: Arc<dyn IrqSink>,
    source: u32,
}

impl IrqLine {
    pub fn new(sink: Arc<dyn IrqSink>, source: u32) -> Self {
        IrqLine { sink, source }
    }

    /// A line connected to nothing (a device whose interrupt is not wired).
    pub fn disconnected() -> Self {
        IrqLine::new(Arc::new(NoSink), 0)
    }

    /// The controller input this line drives.
    pub fn source(&self) -> u32 {
        self.source
    }

    /// Drive the line to `level`.
    pub fn set(&self, level: bool) {
        self.sink.set_level(self.source, level);
    }

    pub fn raise(&self) {
        self.set(true);
    }

    pub fn lower(&self) {
        self.set(false);
    }
}

impl fmt::Debug for IrqLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqLine")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

struct NoSink;

impl IrqSink for NoSink {
    fn set_level(&self, _source: u32, _level: bool) {}
}

/// An [`IrqSink`] that remembers the level of each source: for tests and for boards that poll.
#[derive(Debug, Default)]
pub struct IrqLevels {
    levels: parking_lot::Mutex<Vec<bool>>,
}

impl IrqLevels {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current level of `source` (false if it was never driven).
    pub fn level(&self, source: u32) -> bool {
        self.levels
            .lock()
            .get(source as usize)
            .copied()
            .unwrap_or(false)
    }
}

/// Sources above this are ignored by [`IrqLevels`] (it is a test helper, not a controller).
const IRQ_LEVELS_MAX_SOURCES: usize = 1024;

impl IrqSink for IrqLevels {
    fn set_level(&self, source: u32, level: bool) {
        let idx = source as usize;
        if idx >= IRQ_LEVELS_MAX_SOURCES {
            return;
        }
        let mut levels = self.levels.lock();
        if levels.len() <= idx {
            levels.resize(idx + 1, false);
        }
        if let Some(l) = levels.get_mut(idx) {
            *l = level;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_drives_its_source_level() {
        let sink = Arc::new(IrqLevels::new());
        let line = IrqLine::new(sink.clone(), 10);
        assert_eq!(line.source(), 10);
        assert!(!sink.level(10));
        line.raise();
        assert!(sink.level(10));
        assert!(!sink.level(9));
        line.set(true); // unchanged level is a no-op
        assert!(sink.level(10));
        line.lower();
        assert!(!sink.level(10));
        IrqLine::new(sink.clone(), u32::MAX).raise();
        assert!(!sink.level(u32::MAX));
        IrqLine::disconnected().raise();
    }
}

/// Helpers shared by the device tests.
#[cfg(test)]
pub(crate) mod test_util {
    use crate::bus::BusDevice;

    /// Drive `dev` with `n` pseudo-random reads and writes of 1, 2, 4 and 8 bytes at offsets
    /// mostly inside `[0, window)` (biased to the first 256 bytes and to register-aligned
    /// offsets), sometimes far outside it. Deterministic for a given `seed`. The device must
    /// neither panic nor hang; the caller checks its invariants afterwards.
    pub(crate) fn random_accesses(dev: &mut dyn BusDevice, window: u64, seed: u64, n: usize) {
        let mut x = seed | 1;
        let mut next = move || {
            // xorshift64 (Marsaglia 2003)
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..n {
            let r = next();
            let size = [1usize, 2, 4, 8][(r & 3) as usize];
            let offset = match (r >> 2) & 7 {
                0 => next() % 256,
                1 => (next() % window) & !3,
                2 => (next() % window) & !7,
                3 => u64::MAX - (next() % 16),
                4 => window.wrapping_sub(next() % 16),
                _ => next() % window.max(1),
            };
            let mut buf = next().to_le_bytes();
            let data = &mut buf[..size];
            if (r >> 5) & 1 == 0 {
                dev.read(offset, data);
            } else {
                dev.write(offset, data);
            }
        }
    }
}
