//! CLINT register interface (devices/src/clint.rs) under arbitrary reads, writes and time steps.
//!
//! After every operation the interrupt lines must match the registers (SiFive CLINT / ACLINT:
//! MSIP = msip bit 0, MTIP = mtime >= mtimecmp), reads past the registers return zero, and the
//! next deadline the run loop would sleep to must lie in the future and, when reached, raise
//! MTIP.
#![no_main]

use emu_devices::bus::BusDevice;
use emu_devices::clint::{Clint, CLINT_MTIME, CLINT_MTIMECMP, CLINT_SIZE, MIP_MSIP, MIP_MTIP};
use emu_devices::clock::{VirtualTime, NS_PER_MTIME_TICK};
use emu_fuzz::{apply_mmio, next_mmio_op, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

fn read(c: &mut Clint, offset: u64, len: usize) -> u64 {
    let mut b = [0u8; 8];
    c.read(offset, &mut b[..len]);
    u64::from_le_bytes(b)
}

fn check_lines(c: &mut Clint, lines: &[Arc<AtomicU64>]) {
    let mtime = c.mtime();
    assert_eq!(read(c, CLINT_MTIME, 8), mtime);
    for (h, l) in lines.iter().enumerate() {
        let h = h as u64;
        let msip = read(c, 4 * h, 4);
        let mtimecmp = read(c, CLINT_MTIMECMP + 8 * h, 8);
        let v = l.load(Ordering::Acquire);
        assert!(msip <= 1, "msip reads 0 or 1, got {msip}");
        assert_eq!(v & MIP_MSIP != 0, msip == 1, "MSIP line of hart {h}");
        assert_eq!(
            v & MIP_MTIP != 0,
            mtime >= mtimecmp,
            "MTIP line of hart {h}: mtime {mtime:#x} mtimecmp {mtimecmp:#x}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let harts = usize::from(input.u8() % 4) + 1;
    let time = Arc::new(VirtualTime::new());
    let lines: Vec<Arc<AtomicU64>> = (0..harts).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut clint = Clint::new(time.clone(), lines.clone());
    check_lines(&mut clint, &lines);

    for _ in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        let op = next_mmio_op(&mut input, CLINT_SIZE);
        match op {
            MmioOp::Other(sel) => {
                // Time passes: a little, or up to the next deadline (what the run loop does).
                let now = time.now_ns();
                match clint.next_deadline_ns() {
                    Some(d) if sel & 1 == 0 => {
                        assert!(d >= now, "deadline {d} before now {now}");
                        time.advance_to(d);
                        clint.update();
                        // Reaching a representable future deadline fires at least one timer.
                        // (After a guest write makes mtime wrap past 2^64, the CLINT reports
                        // `now` for a compare that lies behind it; the run loop ignores
                        // deadlines that are not in the future.)
                        if d > now && d < u64::MAX / 2 {
                            let fired = lines
                                .iter()
                                .any(|l| l.load(Ordering::Acquire) & MIP_MTIP != 0);
                            assert!(fired, "no MTIP at the deadline {d}");
                        }
                    }
                    _ => {
                        time.advance_to(now.saturating_add(u64::from(sel) * NS_PER_MTIME_TICK));
                        clint.update();
                    }
                }
            }
            _ => {
                let _ = apply_mmio(&mut clint, op);
            }
        }
        check_lines(&mut clint, &lines);
    }
});
