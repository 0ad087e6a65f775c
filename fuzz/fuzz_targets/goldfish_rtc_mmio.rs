//! Goldfish RTC (devices/src/goldfish_rtc.rs) under arbitrary register accesses and time steps.
//!
//! Time steps follow the scheduler as the board does: time moves to the armed alarm deadline
//! (or by a small amount) and a due alarm calls `alarm_fired`. Checks: the interrupt line is
//! high only while IRQ_ENABLED reads 1; the RTC time read through TIME_LOW/TIME_HIGH equals
//! `now_ns`; an alarm in the future is armed on the scheduler.
#![no_main]

use emu_devices::bus::BusDevice;
use emu_devices::clock::VirtualTime;
use emu_devices::goldfish_rtc::{
    GoldfishRtc, GOLDFISH_RTC_SIZE, RTC_ALARM_STATUS, RTC_IRQ_ENABLED, RTC_TIME_HIGH, RTC_TIME_LOW,
};
use emu_devices::irq::{IrqLevels, IrqLine};
use emu_devices::sched::{EventId, Scheduler, Timer};
use emu_fuzz::{apply_mmio, next_mmio_op, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;
use parking_lot::Mutex;
use std::sync::Arc;

const IRQ: u32 = 11;

fn read32(r: &mut GoldfishRtc, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    r.read(offset, &mut b);
    u32::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let base_ns = input.u64();
    let time = Arc::new(VirtualTime::new());
    let sched = Arc::new(Mutex::new(Scheduler::new()));
    let levels = Arc::new(IrqLevels::new());
    let event = EventId(3);
    let mut rtc = GoldfishRtc::new(
        time.clone(),
        base_ns,
        IrqLine::new(levels.clone(), IRQ),
        Timer::new(sched.clone(), event),
    );
    for _ in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        match next_mmio_op(&mut input, GOLDFISH_RTC_SIZE) {
            MmioOp::Other(sel) => {
                let now = time.now_ns();
                let next = sched.lock().next_deadline();
                let target = match next {
                    Some(d) if sel & 1 == 0 => d.max(now),
                    _ => now.saturating_add(u64::from(sel) << (sel & 0x1e)),
                };
                time.advance_to(target);
                let mut fired = Vec::new();
                {
                    let mut s = sched.lock();
                    // Bounded: one device, one event.
                    for _ in 0..4 {
                        match s.pop_due(time.now_ns()) {
                            Some(f) => fired.push(f),
                            None => break,
                        }
                    }
                }
                for _ in fired {
                    rtc.alarm_fired();
                }
            }
            op => {
                let _ = apply_mmio(&mut rtc, op);
            }
        }
        let enabled = read32(&mut rtc, RTC_IRQ_ENABLED);
        assert!(enabled <= 1);
        if enabled == 0 {
            assert!(
                !levels.level(IRQ),
                "interrupt line high while IRQ_ENABLED is 0"
            );
        }
        let lo = read32(&mut rtc, RTC_TIME_LOW);
        let hi = read32(&mut rtc, RTC_TIME_HIGH);
        assert_eq!(
            u64::from(hi) << 32 | u64::from(lo),
            rtc.now_ns(),
            "TIME_LOW/HIGH"
        );
        if read32(&mut rtc, RTC_ALARM_STATUS) != 0 {
            assert!(
                sched.lock().deadline_of(event).is_some(),
                "alarm running but not armed on the scheduler"
            );
        }
    }
});
