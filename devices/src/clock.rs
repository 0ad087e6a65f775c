//! Virtual time (DESIGN.md §5): derived from retired guest instructions, never from the host
//! clock, so two runs of the same guest see the same times.
//!
//! Each hart keeps a [`HartClock`] that maps its own instruction count to virtual nanoseconds;
//! the machine-wide [`VirtualTime`] is the value devices (CLINT `mtime`, RTC) read. A hart
//! publishes its time into it before any device access and whenever the run loop regains
//! control, so a device never sees time go backwards.

use std::sync::atomic::{AtomicU64, Ordering};

/// Virtual nanoseconds per retired guest instruction (a nominal 1 GIPS guest).
pub const NS_PER_INSN: u64 = 1;
/// Frequency of RISC-V `mtime` / the `time` CSR, as QEMU's `virt` and `spike` boards use
/// (timebase-frequency = 10 MHz): 100 ns per tick.
pub const MTIME_HZ: u64 = 10_000_000;
pub const NS_PER_MTIME_TICK: u64 = 1_000_000_000 / MTIME_HZ;

/// The machine's current virtual time in nanoseconds.
#[derive(Debug, Default)]
pub struct VirtualTime {
    ns: AtomicU64,
}

impl VirtualTime {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn now_ns(&self) -> u64 {
        self.ns.load(Ordering::Acquire)
    }

    /// Move time forward to `ns` (never backwards).
    pub fn advance_to(&self, ns: u64) {
        // Harts publish at every run-loop turn and device access, often a time already
        // published: skip the locked read-modify-write then.
        if ns > self.ns.load(Ordering::Acquire) {
            self.ns.fetch_max(ns, Ordering::AcqRel);
        }
    }

    /// `mtime` at the current virtual time.
    pub fn mtime(&self) -> u64 {
        self.now_ns() / NS_PER_MTIME_TICK
    }
}

/// Maps one hart's retired-instruction count to virtual time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HartClock {
    /// Virtual time at `base_insns`.
    pub base_ns: u64,
    pub base_insns: u64,
}

impl HartClock {
    /// Virtual time when the hart has retired `insn_count` instructions.
    pub fn now_ns(&self, insn_count: u64) -> u64 {
        self.base_ns.saturating_add(
            insn_count
                .saturating_sub(self.base_insns)
                .saturating_mul(NS_PER_INSN),
        )
    }

    /// Instruction count at which the hart reaches virtual time `ns` (for budgets).
    pub fn insns_until(&self, insn_count: u64, ns: u64) -> u64 {
        let now = self.now_ns(insn_count);
        ns.saturating_sub(now).div_ceil(NS_PER_INSN)
    }

    /// The hart sleeps (WFI) until `ns`: time jumps without instructions retiring.
    pub fn skip_to(&mut self, insn_count: u64, ns: u64) {
        let now = self.now_ns(insn_count);
        self.base_ns = now.max(ns);
        self.base_insns = insn_count;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hart_clock_follows_instructions_and_skips() {
        let mut c = HartClock::default();
        assert_eq!(c.now_ns(1000), 1000 * NS_PER_INSN);
        c.skip_to(1000, 50_000);
        assert_eq!(c.now_ns(1000), 50_000);
        assert_eq!(c.now_ns(1010), 50_000 + 10 * NS_PER_INSN);
        assert_eq!(c.insns_until(1010, 50_000), 0);
        let t = VirtualTime::new();
        t.advance_to(500);
        t.advance_to(100);
        assert_eq!(t.now_ns(), 500);
        assert_eq!(t.mtime(), 5);
    }
}
