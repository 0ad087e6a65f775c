//! The `sifive_test` finisher of QEMU's `virt` board (hw/misc/sifive_test.c), at 0x10_0000: a
//! 32-bit write to offset 0 asks the machine to stop. Linux drives it through the DT's
//! `syscon-poweroff` (value 0x5555) and `syscon-reboot` (value 0x7777) nodes.
//!
//! ```text
//! bits 15:0   status: FINISHER_FAIL 0x3333, FINISHER_PASS 0x5555, FINISHER_RESET 0x7777
//! bits 31:16  exit code (FINISHER_FAIL only)
//! ```
//!
//! The device only records the request; the board polls it through a [`FinisherHandle`] (the
//! same pattern as HTIF's exit) and exits or resets.

use crate::bus::BusDevice;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// QEMU virt: `VIRT_TEST`.
pub const SIFIVE_TEST_BASE: u64 = 0x10_0000;
pub const SIFIVE_TEST_SIZE: u64 = 0x1000;

pub const FINISHER_FAIL: u32 = 0x3333;
pub const FINISHER_PASS: u32 = 0x5555;
pub const FINISHER_RESET: u32 = 0x7777;

/// What the guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinisherRequest {
    /// FINISHER_PASS: power off, exit status 0.
    Pass,
    /// FINISHER_FAIL: power off, exit status `code` (bits 31:16 of the write).
    Fail(u16),
    /// FINISHER_RESET: reboot.
    Reset,
}

impl FinisherRequest {
    /// The host exit status this request asks for, if it is a power-off.
    pub fn exit_code(self) -> Option<i32> {
        match self {
            FinisherRequest::Pass => Some(0),
            FinisherRequest::Fail(code) => Some(i32::from(code)),
            FinisherRequest::Reset => None,
        }
    }
}

/// The board's view of the finisher's request, shared with the device. The board asks after
/// every engine run (about a million times in a Linux process-spawning benchmark), so the
/// common answer, "none", is one atomic load instead of a lock.
#[derive(Clone, Debug, Default)]
pub struct FinisherHandle(Arc<FinisherSlot>);

#[derive(Debug, Default)]
struct FinisherSlot {
    request: Mutex<Option<FinisherRequest>>,
    /// Whether `request` may hold something (set under the lock, after the request).
    pending: AtomicBool,
}

impl FinisherHandle {
    /// The pending request, if the guest made one.
    pub fn request(&self) -> Option<FinisherRequest> {
        if !self.0.pending.load(Ordering::Acquire) {
            return None;
        }
        *self.0.request.lock()
    }

    /// Take the pending request (e.g. once a reset has been performed).
    pub fn take(&self) -> Option<FinisherRequest> {
        if !self.0.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut slot = self.0.request.lock();
        self.0.pending.store(false, Ordering::Release);
        slot.take()
    }

    /// Record the guest's request; the first one stands until the board takes it.
    fn set(&self, request: FinisherRequest) {
        let mut slot = self.0.request.lock();
        if slot.is_none() {
            *slot = Some(request);
            self.0.pending.store(true, Ordering::Release);
        }
    }
}

/// The finisher device.
#[derive(Debug, Default)]
pub struct SifiveTest {
    handle: FinisherHandle,
}

impl SifiveTest {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn handle(&self) -> FinisherHandle {
        self.handle.clone()
    }
}

impl BusDevice for SifiveTest {
    /// The register reads as 0 (QEMU: `sifive_test_read` returns 0).
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let value = match <[u8; 4]>::try_from(data) {
            Ok(b) if offset == 0 => u32::from_le_bytes(b),
            _ => {
                log::warn!(
                    "sifive_test: {}-byte write at {offset:#x} ignored",
                    data.len()
                );
                return;
            }
        };
        let code = (value >> 16) as u16;
        let request = match value & 0xffff {
            FINISHER_FAIL => FinisherRequest::Fail(code),
            FINISHER_PASS => FinisherRequest::Pass,
            FINISHER_RESET => FinisherRequest::Reset,
            status => {
                log::warn!("sifive_test: unknown status {status:#x} ignored");
                return;
            }
        };
        self.handle.set(request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(v: u32) -> Option<FinisherRequest> {
        let mut t = SifiveTest::new();
        let h = t.handle();
        t.write(0, &v.to_le_bytes());
        h.request()
    }

    #[test]
    fn finisher_codes() {
        assert_eq!(write(FINISHER_PASS), Some(FinisherRequest::Pass));
        assert_eq!(write(FINISHER_PASS | 7 << 16), Some(FinisherRequest::Pass));
        assert_eq!(
            write(FINISHER_FAIL | 3 << 16),
            Some(FinisherRequest::Fail(3))
        );
        assert_eq!(write(FINISHER_RESET), Some(FinisherRequest::Reset));
        assert_eq!(write(0x1234), None);
        assert_eq!(FinisherRequest::Fail(3).exit_code(), Some(3));
        assert_eq!(FinisherRequest::Pass.exit_code(), Some(0));
        assert_eq!(FinisherRequest::Reset.exit_code(), None);
    }

    #[test]
    fn take_clears_and_bad_accesses_are_ignored() {
        let mut t = SifiveTest::new();
        let h = t.handle();
        t.write(4, &FINISHER_PASS.to_le_bytes());
        t.write(0, &[0x55, 0x55]);
        t.write(0, &u64::from(FINISHER_PASS).to_le_bytes());
        assert_eq!(h.request(), None);
        t.write(0, &FINISHER_RESET.to_le_bytes());
        t.write(0, &FINISHER_PASS.to_le_bytes());
        assert_eq!(h.take(), Some(FinisherRequest::Reset));
        assert_eq!(h.request(), None);
        let mut b = [0xffu8; 4];
        t.read(0, &mut b);
        assert_eq!(b, [0; 4]);
    }

    #[test]
    fn random_accesses_never_panic() {
        let mut t = SifiveTest::new();
        let h = t.handle();
        for seed in 1..50u64 {
            crate::irq::test_util::random_accesses(&mut t, SIFIVE_TEST_SIZE, seed, 2000);
            if let Some(r) = h.take() {
                assert!(matches!(
                    r,
                    FinisherRequest::Pass | FinisherRequest::Fail(_) | FinisherRequest::Reset
                ));
            }
        }
        t.write(0, &FINISHER_PASS.to_le_bytes());
        assert_eq!(h.request(), Some(FinisherRequest::Pass));
    }
}
