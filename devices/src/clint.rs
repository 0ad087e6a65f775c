//! SiFive CLINT (Core-Local Interruptor), as on QEMU's `virt` and `spike` boards and in the
//! SiFive FU540 manual §9 (ACLINT spec: MSWI + MTIMER devices):
//!
//! ```text
//! base + 0x0000 + 4*hart   msip      (bit 0 drives the hart's MSIP, mip bit 3)
//! base + 0x4000 + 8*hart   mtimecmp  (MTIP, mip bit 7, while mtime >= mtimecmp)
//! base + 0xbff8            mtime     (read from virtual time, 10 MHz)
//! ```
//!
//! `mtime` is derived from [`VirtualTime`]; a guest write to it is kept as an offset. The CLINT
//! owns no timer: the run loop asks [`Clint::next_deadline_ns`] when the next compare fires and
//! calls [`Clint::update`] whenever time has moved.

use crate::bus::BusDevice;
use crate::clock::{VirtualTime, NS_PER_MTIME_TICK};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default base address (QEMU `virt`/`spike`: `VIRT_CLINT`).
pub const CLINT_BASE: u64 = 0x0200_0000;
/// Size of the CLINT window.
pub const CLINT_SIZE: u64 = 0x1_0000;

pub const CLINT_MSIP: u64 = 0x0000;
pub const CLINT_MTIMECMP: u64 = 0x4000;
pub const CLINT_MTIME: u64 = 0xbff8;

/// mip bit positions (Privileged ISA §3.1.9).
pub const MIP_MSIP: u64 = 1 << 3;
pub const MIP_MTIP: u64 = 1 << 7;

/// Most harts one CLINT serves (mtimecmp array 0x4000..0xbff8).
pub const CLINT_MAX_HARTS: usize = 4095;

struct ClintHart {
    irq_lines: Arc<AtomicU64>,
    msip: bool,
    mtimecmp: u64,
}

/// The CLINT state machine.
pub struct Clint {
    time: Arc<VirtualTime>,
    /// Added to the virtual-time `mtime` (guest writes to `mtime`).
    mtime_offset: u64,
    harts: Vec<ClintHart>,
}

impl Clint {
    /// A CLINT for harts whose interrupt lines are `irq_lines` (index = hart id). At reset
    /// mtimecmp is all ones, so no timer interrupt is pending.
    pub fn new(time: Arc<VirtualTime>, irq_lines: Vec<Arc<AtomicU64>>) -> Self {
        let harts = irq_lines
            .into_iter()
            .take(CLINT_MAX_HARTS)
            .map(|irq_lines| ClintHart {
                irq_lines,
                msip: false,
                mtimecmp: u64::MAX,
            })
            .collect();
        let mut clint = Clint {
            time,
            mtime_offset: 0,
            harts,
        };
        clint.update();
        clint
    }

    /// The current `mtime` value.
    pub fn mtime(&self) -> u64 {
        self.time.mtime().wrapping_add(self.mtime_offset)
    }

    /// Recompute every hart's MSIP and MTIP lines from the registers and the current time.
    pub fn update(&mut self) {
        let now = self.mtime();
        for h in &self.harts {
            set_line(&h.irq_lines, MIP_MSIP, h.msip);
            set_line(&h.irq_lines, MIP_MTIP, now >= h.mtimecmp);
        }
    }

    /// Virtual time (ns) at which the earliest not-yet-due timer compare fires, if any.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        let now = self.mtime();
        self.harts
            .iter()
            .filter(|h| h.mtimecmp != u64::MAX && h.mtimecmp > now)
            .map(|h| {
                // The virtual-time tick at which mtime reaches mtimecmp.
                let tick = h.mtimecmp.wrapping_sub(self.mtime_offset);
                tick.saturating_mul(NS_PER_MTIME_TICK)
                    .max(self.time.now_ns())
            })
            .min()
    }

    fn read_u64_reg(&self, reg: u64) -> Option<u64> {
        match reg {
            CLINT_MTIME => Some(self.mtime()),
            r if (CLINT_MTIMECMP..CLINT_MTIME).contains(&r) => self
                .harts
                .get(((r - CLINT_MTIMECMP) / 8) as usize)
                .map(|h| h.mtimecmp),
            r if r < CLINT_MTIMECMP => self.harts.get((r / 4) as usize).map(|h| u64::from(h.msip)),
            _ => None,
        }
    }
}

fn set_line(lines: &AtomicU64, bit: u64, on: bool) {
    if on {
        lines.fetch_or(bit, Ordering::AcqRel);
    } else {
        lines.fetch_and(!bit, Ordering::AcqRel);
    }
}

/// Base offset and width of the register holding `offset`.
fn reg_of(offset: u64) -> (u64, u64) {
    if offset < CLINT_MTIMECMP {
        (offset & !3, 4)
    } else {
        (offset & !7, 8)
    }
}

impl BusDevice for Clint {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let (reg, width) = reg_of(offset);
        let value = self.read_u64_reg(reg).unwrap_or(0).to_le_bytes();
        let start = (offset - reg) as usize;
        match start
            .checked_add(data.len())
            .filter(|&end| end as u64 <= width)
            .and_then(|end| value.get(start..end))
        {
            Some(src) => data.copy_from_slice(src),
            None => data.fill(0),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let (reg, width) = reg_of(offset);
        let Some(old) = self.read_u64_reg(reg) else {
            log::warn!("CLINT: write to unmapped offset {offset:#x}");
            return;
        };
        let mut bytes = old.to_le_bytes();
        let start = (offset - reg) as usize;
        let Some(dst) = start
            .checked_add(data.len())
            .filter(|&end| end as u64 <= width)
            .and_then(|end| bytes.get_mut(start..end))
        else {
            log::warn!(
                "CLINT: {}-byte write at {offset:#x} crosses a register",
                data.len()
            );
            return;
        };
        dst.copy_from_slice(data);
        let value = u64::from_le_bytes(bytes);
        match reg {
            CLINT_MTIME => self.mtime_offset = value.wrapping_sub(self.time.mtime()),
            r if r >= CLINT_MTIMECMP => {
                if let Some(h) = self.harts.get_mut(((r - CLINT_MTIMECMP) / 8) as usize) {
                    h.mtimecmp = value;
                }
            }
            r => {
                if let Some(h) = self.harts.get_mut((r / 4) as usize) {
                    h.msip = value & 1 != 0;
                }
            }
        }
        self.update();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Arc<VirtualTime>, Arc<AtomicU64>, Clint) {
        let time = Arc::new(VirtualTime::new());
        let lines = Arc::new(AtomicU64::new(0));
        let clint = Clint::new(time.clone(), vec![lines.clone()]);
        (time, lines, clint)
    }

    fn rd(c: &mut Clint, off: u64, n: usize) -> u64 {
        let mut b = [0u8; 8];
        c.read(off, &mut b[..n]);
        u64::from_le_bytes(b)
    }

    #[test]
    fn msip_drives_the_line() {
        let (_, lines, mut c) = setup();
        c.write(CLINT_MSIP, &1u32.to_le_bytes());
        assert_eq!(lines.load(Ordering::Relaxed), MIP_MSIP);
        assert_eq!(rd(&mut c, CLINT_MSIP, 4), 1);
        c.write(CLINT_MSIP, &0u32.to_le_bytes());
        assert_eq!(lines.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn mtime_follows_virtual_time_and_mtimecmp_fires() {
        let (time, lines, mut c) = setup();
        assert_eq!(rd(&mut c, CLINT_MTIMECMP, 8), u64::MAX);
        assert_eq!(c.next_deadline_ns(), None);
        time.advance_to(1000);
        assert_eq!(rd(&mut c, CLINT_MTIME, 8), 1000 / NS_PER_MTIME_TICK);
        c.write(CLINT_MTIMECMP, &50u64.to_le_bytes());
        assert_eq!(c.next_deadline_ns(), Some(50 * NS_PER_MTIME_TICK));
        assert_eq!(lines.load(Ordering::Relaxed) & MIP_MTIP, 0);
        time.advance_to(50 * NS_PER_MTIME_TICK);
        c.update();
        assert_eq!(lines.load(Ordering::Relaxed) & MIP_MTIP, MIP_MTIP);
        assert_eq!(c.next_deadline_ns(), None);
        // Writing mtimecmp into the future clears MTIP (Privileged ISA §3.2.1).
        c.write(CLINT_MTIMECMP + 4, &1u32.to_le_bytes());
        assert_eq!(rd(&mut c, CLINT_MTIMECMP, 8), (1 << 32) | 50);
        assert_eq!(lines.load(Ordering::Relaxed) & MIP_MTIP, 0);
    }

    #[test]
    fn mtime_write_is_an_offset() {
        let (time, _, mut c) = setup();
        time.advance_to(100 * NS_PER_MTIME_TICK);
        c.write(CLINT_MTIME, &1000u64.to_le_bytes());
        assert_eq!(c.mtime(), 1000);
        time.advance_to(110 * NS_PER_MTIME_TICK);
        assert_eq!(rd(&mut c, CLINT_MTIME, 8), 1010);
        assert_eq!(rd(&mut c, CLINT_MTIME + 4, 4), 0);
    }

    #[test]
    fn unmapped_and_crossing_accesses_are_harmless() {
        let (_, lines, mut c) = setup();
        c.write(CLINT_MSIP + 4, &1u32.to_le_bytes()); // hart 1 does not exist
        c.write(CLINT_MSIP + 2, &1u32.to_le_bytes()); // crosses msip registers
        c.write(0xfff0, &[1; 8]);
        assert_eq!(rd(&mut c, 0xfff0, 8), 0);
        assert_eq!(lines.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn per_hart_msip_and_mtimecmp_aclint_layout() {
        let time = Arc::new(VirtualTime::new());
        let lines: Vec<_> = (0..4).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let mut c = Clint::new(time.clone(), lines.clone());
        let mip = |h: usize| lines[h].load(Ordering::Relaxed);
        // msip[hart] at +4*hart.
        c.write(CLINT_MSIP + 4 * 2, &1u32.to_le_bytes());
        assert_eq!([mip(0), mip(1), mip(2), mip(3)], [0, 0, MIP_MSIP, 0]);
        assert_eq!(rd(&mut c, CLINT_MSIP + 8, 4), 1);
        // mtimecmp[hart] at +0x4000 + 8*hart.
        c.write(CLINT_MTIMECMP + 8 * 3, &20u64.to_le_bytes());
        c.write(CLINT_MTIMECMP + 8, &10u64.to_le_bytes());
        assert_eq!(rd(&mut c, CLINT_MTIMECMP + 8 * 3, 8), 20);
        assert_eq!(c.next_deadline_ns(), Some(10 * NS_PER_MTIME_TICK));
        time.advance_to(10 * NS_PER_MTIME_TICK);
        c.update();
        assert_eq!(mip(1), MIP_MTIP);
        assert_eq!(mip(3), 0);
        assert_eq!(c.next_deadline_ns(), Some(20 * NS_PER_MTIME_TICK));
        time.advance_to(20 * NS_PER_MTIME_TICK);
        c.update();
        assert_eq!(
            [mip(0), mip(1), mip(2), mip(3)],
            [0, MIP_MTIP, MIP_MSIP, MIP_MTIP]
        );
        // Hart 4 does not exist: its registers read 0 and ignore writes.
        c.write(CLINT_MSIP + 16, &1u32.to_le_bytes());
        assert_eq!(rd(&mut c, CLINT_MSIP + 16, 4), 0);
        assert_eq!(rd(&mut c, CLINT_MTIMECMP + 32, 8), 0);
    }

    #[test]
    fn random_accesses_never_panic() {
        let time = Arc::new(VirtualTime::new());
        let lines: Vec<_> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let mut c = Clint::new(time.clone(), lines.clone());
        for seed in 1..50u64 {
            time.advance_to(seed * 977);
            crate::irq::test_util::random_accesses(&mut c, CLINT_SIZE, seed, 2000);
            for l in &lines {
                assert_eq!(l.load(Ordering::Relaxed) & !(MIP_MSIP | MIP_MTIP), 0);
            }
            if let Some(d) = c.next_deadline_ns() {
                assert!(d >= time.now_ns());
            }
        }
    }
}
