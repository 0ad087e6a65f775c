//! Goldfish RTC, as QEMU's `virt` board has it at 0x10_1000, IRQ 11 (hw/rtc/goldfish_rtc.c;
//! Android emulator's GOLDFISH-VIRTUAL-HARDWARE.TXT, "goldfish-rtc"):
//!
//! ```text
//! 0x00 TIME_LOW         R: low 32 bits of the time (ns since the Unix epoch); latches the
//!                          high half for TIME_HIGH.  W: sets the low half of the time
//! 0x04 TIME_HIGH        R: the latched high half.  W: sets the high half of the time
//! 0x08 ALARM_LOW        W: low half of the alarm, and arms it     R: low half of the alarm
//! 0x0c ALARM_HIGH       W: high half of the alarm (arm with ALARM_LOW)
//! 0x10 IRQ_ENABLED      bit 0 gates the interrupt line
//! 0x14 CLEAR_ALARM      W: disarm the alarm
//! 0x18 ALARM_STATUS     R: 1 while the alarm is armed
//! 0x1c CLEAR_INTERRUPT  W: acknowledge the alarm interrupt
//! ```
//!
//! Its time is virtual (DESIGN.md §5): `base epoch + virtual time + guest adjustments`, so two
//! runs read the same dates. The alarm is an event on the scheduler ([`Timer`]); when it fires
//! the board calls [`GoldfishRtc::alarm_fired`].

use crate::bus::BusDevice;
use crate::clock::VirtualTime;
use crate::irq::IrqLine;
use crate::sched::Timer;
use std::sync::Arc;

/// QEMU virt: `VIRT_RTC`.
pub const GOLDFISH_RTC_BASE: u64 = 0x10_1000;
pub const GOLDFISH_RTC_SIZE: u64 = 0x1000;
/// QEMU virt: `RTC_IRQ`.
pub const GOLDFISH_RTC_IRQ: u32 = 11;

pub const RTC_TIME_LOW: u64 = 0x00;
pub const RTC_TIME_HIGH: u64 = 0x04;
pub const RTC_ALARM_LOW: u64 = 0x08;
pub const RTC_ALARM_HIGH: u64 = 0x0c;
pub const RTC_IRQ_ENABLED: u64 = 0x10;
pub const RTC_CLEAR_ALARM: u64 = 0x14;
pub const RTC_ALARM_STATUS: u64 = 0x18;
pub const RTC_CLEAR_INTERRUPT: u64 = 0x1c;

/// Default base time: 2025-01-01T00:00:00Z, in ns since the Unix epoch.
pub const DEFAULT_RTC_BASE_NS: u64 = 1_735_689_600 * 1_000_000_000;

/// A `-rtc base=` value that is not a date.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtcBaseError {
    /// the value is neither `YYYY-MM-DD` nor `YYYY-MM-DDTHH:MM:SS`
    #[error(
        "invalid -rtc base '{0}': expected a UTC date as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS \
         (1970 or later)"
    )]
    Invalid(String),
}

/// Parse a `-rtc base=` date as QEMU accepts it (`2006-06-17T16:01:21` or `2006-06-17`, UTC)
/// into ns since the Unix epoch. (`utc` and `localtime` mean the host clock: the caller reads
/// it, since a device never does.)
pub fn parse_rtc_base(s: &str) -> Result<u64, RtcBaseError> {
    let bad = || RtcBaseError::Invalid(s.to_string());
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |f: &str, len: usize| -> Result<u64, RtcBaseError> {
        if f.len() != len || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        f.parse().map_err(|_| bad())
    };
    let mut d = date.split('-');
    let (Some(y), Some(m), Some(dd), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    let (y, m, dd) = (num(y, 4)?, num(m, 2)?, num(dd, 2)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = usize::try_from(m)
        .ok()
        .and_then(|m| m.checked_sub(1))
        .and_then(|i| month_days.get(i))
        .ok_or_else(bad)?;
    if y < 1970 || dd == 0 || dd > *max_day {
        return Err(bad());
    }
    let secs_of_day = match time {
        None => 0,
        Some(t) => {
            let mut f = t.split(':');
            let (Some(h), Some(mi), Some(se), None) = (f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad());
            };
            let (h, mi, se) = (num(h, 2)?, num(mi, 2)?, num(se, 2)?);
            if h > 23 || mi > 59 || se > 59 {
                return Err(bad());
            }
            h * 3600 + mi * 60 + se
        }
    };
    // Days since 1970-01-01 (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms",
    // days_from_civil), for years >= 1970 only.
    let y_adj = if m <= 2 { y - 1 } else { y };
    let era = y_adj / 400;
    let yoe = y_adj - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days.checked_mul(86_400)
        .and_then(|s| s.checked_add(secs_of_day))
        .and_then(|s| s.checked_mul(1_000_000_000))
        .ok_or_else(bad)
}

/// The goldfish RTC state machine.
pub struct GoldfishRtc {
    time: Arc<VirtualTime>,
    irq: IrqLine,
    timer: Timer,
    /// RTC time at virtual time 0 (base epoch plus guest adjustments), wrapping.
    tick_offset: u64,
    alarm_next: u64,
    alarm_running: bool,
    irq_pending: bool,
    irq_enabled: bool,
    time_high: u32,
}

impl GoldfishRtc {
    /// An RTC that reads `base_ns` (ns since the Unix epoch) at virtual time 0.
    pub fn new(time: Arc<VirtualTime>, base_ns: u64, irq: IrqLine, timer: Timer) -> Self {
        GoldfishRtc {
            time,
            irq,
            timer,
            tick_offset: base_ns,
            alarm_next: 0,
            alarm_running: false,
            irq_pending: false,
            irq_enabled: false,
            time_high: 0,
        }
    }

    /// The RTC's current time, in ns since the Unix epoch.
    pub fn now_ns(&self) -> u64 {
        self.time.now_ns().wrapping_add(self.tick_offset)
    }

    /// The scheduler event of the alarm is due: raise the interrupt.
    pub fn alarm_fired(&mut self) {
        if !self.alarm_running {
            return; // disarmed since it was scheduled
        }
        if self.now_ns() < self.alarm_next {
            // The guest moved the clock back since arming: wait for the new deadline.
            self.arm_alarm();
            return;
        }
        self.alarm_running = false;
        self.irq_pending = true;
        self.update_irq();
    }

    fn update_irq(&self) {
        self.irq.set(self.irq_pending && self.irq_enabled);
    }

    fn clear_alarm(&mut self) {
        self.timer.cancel();
        self.alarm_running = false;
    }

    /// QEMU `goldfish_rtc_set_alarm`: a past alarm interrupts at once, a future one is armed.
    fn arm_alarm(&mut self) {
        let now = self.now_ns();
        if self.alarm_next <= now {
            self.clear_alarm();
            self.irq_pending = true;
        } else {
            let deadline = self.time.now_ns().saturating_add(self.alarm_next - now);
            self.timer.arm(deadline);
            self.alarm_running = true;
        }
        self.update_irq();
    }

    /// Replace bits `[shift, shift + 32)` of the current time with `value`.
    fn set_time_bits(&mut self, shift: u32, value: u32) {
        let now = self.now_ns();
        let mask = 0xffff_ffffu64 << shift;
        let new = (now & !mask) | (u64::from(value) << shift);
        self.tick_offset = self.tick_offset.wrapping_add(new.wrapping_sub(now));
    }

    fn read32(&mut self, offset: u64) -> u32 {
        match offset {
            RTC_TIME_LOW => {
                let now = self.now_ns();
                self.time_high = (now >> 32) as u32;
                now as u32
            }
            RTC_TIME_HIGH => self.time_high,
            RTC_ALARM_LOW => self.alarm_next as u32,
            RTC_ALARM_HIGH => (self.alarm_next >> 32) as u32,
            RTC_IRQ_ENABLED => u32::from(self.irq_enabled),
            RTC_ALARM_STATUS => u32::from(self.alarm_running),
            _ => {
                log::debug!("goldfish-rtc: read of offset {offset:#x}");
                0
            }
        }
    }

    fn write32(&mut self, offset: u64, value: u32) {
        match offset {
            RTC_TIME_LOW => self.set_time_bits(0, value),
            RTC_TIME_HIGH => self.set_time_bits(32, value),
            RTC_ALARM_LOW => {
                self.alarm_next = (self.alarm_next & !0xffff_ffff) | u64::from(value);
                self.arm_alarm();
            }
            RTC_ALARM_HIGH => {
                self.alarm_next = (self.alarm_next & 0xffff_ffff) | (u64::from(value) << 32);
            }
            RTC_IRQ_ENABLED => {
                self.irq_enabled = value & 1 != 0;
                self.update_irq();
            }
            RTC_CLEAR_ALARM => self.clear_alarm(),
            RTC_CLEAR_INTERRUPT => {
                self.irq_pending = false;
                self.update_irq();
            }
            _ => log::debug!("goldfish-rtc: write {value:#x} to offset {offset:#x} ignored"),
        }
    }
}

impl BusDevice for GoldfishRtc {
    /// Registers are 32 bits wide (QEMU: 4-byte accesses only); other accesses read 0 or are
    /// ignored.
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if data.len() == 4 && offset.is_multiple_of(4) {
            let v = self.read32(offset);
            data.copy_from_slice(&v.to_le_bytes());
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        match <[u8; 4]>::try_from(data) {
            Ok(b) if offset.is_multiple_of(4) => self.write32(offset, u32::from_le_bytes(b)),
            _ => log::debug!(
                "goldfish-rtc: {}-byte write at {offset:#x} ignored",
                data.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::IrqLevels;
    use crate::sched::{EventId, Scheduler};
    use parking_lot::Mutex;

    struct Rig {
        time: Arc<VirtualTime>,
        irq: Arc<IrqLevels>,
        sched: Arc<Mutex<Scheduler>>,
        rtc: GoldfishRtc,
    }

    fn setup() -> Rig {
        let time = Arc::new(VirtualTime::new());
        let irq = Arc::new(IrqLevels::new());
        let sched = Arc::new(Mutex::new(Scheduler::new()));
        let rtc = GoldfishRtc::new(
            time.clone(),
            DEFAULT_RTC_BASE_NS,
            IrqLine::new(irq.clone(), GOLDFISH_RTC_IRQ),
            Timer::new(sched.clone(), EventId(11)),
        );
        Rig {
            time,
            irq,
            sched,
            rtc,
        }
    }

    fn rd(r: &mut GoldfishRtc, off: u64) -> u32 {
        let mut b = [0u8; 4];
        r.read(off, &mut b);
        u32::from_le_bytes(b)
    }

    fn wr(r: &mut GoldfishRtc, off: u64, v: u32) {
        r.write(off, &v.to_le_bytes());
    }

    fn time(r: &mut GoldfishRtc) -> u64 {
        let lo = rd(r, RTC_TIME_LOW);
        u64::from(rd(r, RTC_TIME_HIGH)) << 32 | u64::from(lo)
    }

    #[test]
    fn time_is_base_plus_virtual_time() {
        let mut g = setup();
        assert_eq!(time(&mut g.rtc), DEFAULT_RTC_BASE_NS);
        g.time.advance_to(1_500);
        assert_eq!(time(&mut g.rtc), DEFAULT_RTC_BASE_NS + 1_500);
        // TIME_HIGH reads the half latched by TIME_LOW, even if time moves in between.
        let lo = rd(&mut g.rtc, RTC_TIME_LOW);
        g.time.advance_to(1 << 40);
        assert_eq!(
            u64::from(rd(&mut g.rtc, RTC_TIME_HIGH)) << 32 | u64::from(lo),
            DEFAULT_RTC_BASE_NS + 1_500
        );
    }

    #[test]
    fn setting_the_time() {
        let mut g = setup();
        wr(&mut g.rtc, RTC_TIME_HIGH, 0x10);
        wr(&mut g.rtc, RTC_TIME_LOW, 0x20);
        assert_eq!(time(&mut g.rtc), 0x10_0000_0020);
        g.time.advance_to(5);
        assert_eq!(time(&mut g.rtc), 0x10_0000_0025);
    }

    #[test]
    fn alarm_through_the_scheduler() {
        let mut g = setup();
        wr(&mut g.rtc, RTC_IRQ_ENABLED, 1);
        assert_eq!(rd(&mut g.rtc, RTC_IRQ_ENABLED), 1);
        let at = DEFAULT_RTC_BASE_NS + 1_000;
        wr(&mut g.rtc, RTC_ALARM_HIGH, (at >> 32) as u32);
        wr(&mut g.rtc, RTC_ALARM_LOW, at as u32);
        assert_eq!(rd(&mut g.rtc, RTC_ALARM_LOW), at as u32);
        assert_eq!(rd(&mut g.rtc, RTC_ALARM_HIGH), (at >> 32) as u32);
        assert_eq!(rd(&mut g.rtc, RTC_ALARM_STATUS), 1);
        assert_eq!(g.sched.lock().next_deadline(), Some(1_000));
        assert!(!g.irq.level(GOLDFISH_RTC_IRQ));
        g.time.advance_to(1_000);
        let fired = g.sched.lock().pop_due(1_000).map(|f| f.event);
        assert_eq!(fired, Some(EventId(11)));
        g.rtc.alarm_fired();
        assert!(g.irq.level(GOLDFISH_RTC_IRQ));
        assert_eq!(rd(&mut g.rtc, RTC_ALARM_STATUS), 0);
        // IRQ_ENABLED gates the line; CLEAR_INTERRUPT acknowledges.
        wr(&mut g.rtc, RTC_IRQ_ENABLED, 0);
        assert!(!g.irq.level(GOLDFISH_RTC_IRQ));
        wr(&mut g.rtc, RTC_IRQ_ENABLED, 1);
        assert!(g.irq.level(GOLDFISH_RTC_IRQ));
        wr(&mut g.rtc, RTC_CLEAR_INTERRUPT, 1);
        assert!(!g.irq.level(GOLDFISH_RTC_IRQ));
    }

    #[test]
    fn past_alarm_fires_at_once_and_clear_alarm_disarms() {
        let mut g = setup();
        wr(&mut g.rtc, RTC_IRQ_ENABLED, 1);
        wr(&mut g.rtc, RTC_ALARM_HIGH, 0);
        wr(&mut g.rtc, RTC_ALARM_LOW, 5);
        assert!(g.irq.level(GOLDFISH_RTC_IRQ));
        assert!(g.sched.lock().is_empty());
        wr(&mut g.rtc, RTC_CLEAR_INTERRUPT, 1);
        let at = DEFAULT_RTC_BASE_NS + 50;
        wr(&mut g.rtc, RTC_ALARM_HIGH, (at >> 32) as u32);
        wr(&mut g.rtc, RTC_ALARM_LOW, at as u32);
        assert_eq!(g.sched.lock().len(), 1);
        wr(&mut g.rtc, RTC_CLEAR_ALARM, 1);
        assert!(g.sched.lock().is_empty());
        assert_eq!(rd(&mut g.rtc, RTC_ALARM_STATUS), 0);
        g.rtc.alarm_fired(); // a stale event does nothing
        assert!(!g.irq.level(GOLDFISH_RTC_IRQ));
    }

    #[test]
    fn random_accesses_never_panic_and_irq_is_gated() {
        let mut g = setup();
        for seed in 1..50u64 {
            g.time.advance_to(seed * 1000);
            crate::irq::test_util::random_accesses(&mut g.rtc, GOLDFISH_RTC_SIZE, seed, 2000);
            if seed % 3 == 0 {
                g.rtc.alarm_fired();
            }
            assert_eq!(
                g.irq.level(GOLDFISH_RTC_IRQ),
                g.rtc.irq_pending && g.rtc.irq_enabled
            );
            assert!(g.sched.lock().len() <= 1);
            assert_eq!(g.sched.lock().is_empty(), !g.rtc.alarm_running);
        }
    }

    #[test]
    fn rtc_base_dates() {
        assert_eq!(parse_rtc_base("1970-01-01"), Ok(0));
        assert_eq!(
            parse_rtc_base("2025-01-01T00:00:00"),
            Ok(DEFAULT_RTC_BASE_NS)
        );
        assert_eq!(
            parse_rtc_base("2006-06-17T16:01:21"),
            Ok(1_150_560_081 * 1_000_000_000)
        );
        assert_eq!(
            parse_rtc_base("2024-02-29"),
            Ok(1_709_164_800 * 1_000_000_000)
        );
        for bad in [
            "",
            "utc",
            "2023-02-29",
            "2025-13-01",
            "2025-00-10",
            "1969-12-31",
            "2025-1-01",
            "2025-01-01T24:00:00",
            "2025-01-01T00:00",
            "2025-01-01T00:00:00:00",
            "+025-01-01",
            "2025-01-01-01",
        ] {
            assert!(parse_rtc_base(bad).is_err(), "{bad}");
        }
    }
}
