//! The deterministic event scheduler (DESIGN.md §5): a priority queue of
//! (virtual deadline ns, sequence number, event).
//!
//! Events are plain data: an [`EventId`] the board allocates per timer source and dispatches
//! itself (e.g. "RTC alarm", "virtio-blk 0 completion"). An event id has at most one entry: a
//! device re-arming its timer replaces its entry, so the queue never grows past the number of
//! ids in use. Ties on the deadline are broken by the sequence number, i.e. by the order in
//! which the events were scheduled, never by host state — two runs fire events in the same order.
//!
//! Devices reach the scheduler through a [`Timer`] (a shared handle plus their event id).
//! Lock order: a device's lock, then the scheduler's. The board therefore pops due events with
//! the scheduler locked, releases it, and only then locks and notifies the device:
//!
//! ```
//! use emu_devices::sched::{EventId, Scheduler, Timer};
//! use parking_lot::Mutex;
//! use std::sync::Arc;
//!
//! const RTC_ALARM: EventId = EventId(1);
//! let sched = Arc::new(Mutex::new(Scheduler::new()));
//! let rtc_timer = Timer::new(sched.clone(), RTC_ALARM); // given to the device
//! rtc_timer.arm(1_000);
//! // Run loop: the vCPU budget ends at the earliest deadline ...
//! assert_eq!(sched.lock().next_deadline(), Some(1_000));
//! // ... then, with time advanced to `now`, fire what is due, one event at a time.
//! let now = 1_000;
//! let mut fired = Vec::new();
//! loop {
//!     let Some(f) = sched.lock().pop_due(now) else { break };
//!     match f.event {
//!         RTC_ALARM => fired.push(f.deadline_ns), // rtc.lock().alarm_fired()
//!         _ => {}
//!     }
//! }
//! assert_eq!(fired, [1_000]);
//! ```

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The identity of one timer source; what the board dispatches on when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u32);

/// Most distinct events one scheduler holds (a board has a few dozen timer sources).
pub const SCHED_MAX_EVENTS: usize = 4096;

/// A due event, as returned by [`Scheduler::pop_due`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fired {
    pub deadline_ns: u64,
    pub event: EventId,
}

/// The queue. Deterministic: ordered by (deadline, sequence number).
#[derive(Debug, Default)]
pub struct Scheduler {
    /// (deadline ns, sequence number) -> event.
    queue: BTreeMap<(u64, u64), EventId>,
    /// event -> its key in `queue` (at most one entry per event).
    keys: BTreeMap<EventId, (u64, u64)>,
    next_seq: u64,
}

/// Errors from [`Scheduler::schedule`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchedError {
    /// the scheduler already holds SCHED_MAX_EVENTS distinct events
    #[error("the event scheduler is full ({SCHED_MAX_EVENTS} distinct events)")]
    Full,
}

impl Scheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fire `event` at virtual time `deadline_ns`, replacing any earlier arming of `event`.
    pub fn schedule(&mut self, event: EventId, deadline_ns: u64) -> Result<(), SchedError> {
        let replaced = self.cancel(event);
        if !replaced && self.keys.len() >= SCHED_MAX_EVENTS {
            return Err(SchedError::Full);
        }
        let key = (deadline_ns, self.next_seq);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.queue.insert(key, event);
        self.keys.insert(event, key);
        Ok(())
    }

    /// Disarm `event`. Returns whether it was armed.
    pub fn cancel(&mut self, event: EventId) -> bool {
        match self.keys.remove(&event) {
            Some(key) => {
                self.queue.remove(&key);
                true
            }
            None => false,
        }
    }

    /// The deadline of `event`, if it is armed.
    pub fn deadline_of(&self, event: EventId) -> Option<u64> {
        self.keys.get(&event).map(|&(deadline, _)| deadline)
    }

    /// The earliest deadline in the queue: where the current vCPU budget must end.
    pub fn next_deadline(&self) -> Option<u64> {
        self.queue.keys().next().map(|&(deadline, _)| deadline)
    }

    /// Remove and return the earliest event whose deadline is `<= now_ns`. Call repeatedly until
    /// `None`; events scheduled while dispatching (even already due ones) are returned too.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<Fired> {
        let (&key, _) = self.queue.first_key_value()?;
        if key.0 > now_ns {
            return None;
        }
        let event = self.queue.remove(&key)?;
        self.keys.remove(&event);
        Some(Fired {
            deadline_ns: key.0,
            event,
        })
    }

    /// Number of armed events.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// A device's handle on the scheduler: arm or disarm its own event.
#[derive(Clone, Debug)]
pub struct Timer {
    sched: Arc<Mutex<Scheduler>>,
    event: EventId,
}

impl Timer {
    pub fn new(sched: Arc<Mutex<Scheduler>>, event: EventId) -> Self {
        Timer { sched, event }
    }

    /// A timer on a private scheduler that nothing runs (for devices built without a board).
    pub fn detached() -> Self {
        Timer::new(Arc::new(Mutex::new(Scheduler::new())), EventId(0))
    }

    pub fn event(&self) -> EventId {
        self.event
    }

    /// Fire at `deadline_ns`, replacing any earlier arming.
    pub fn arm(&self, deadline_ns: u64) {
        if let Err(e) = self.sched.lock().schedule(self.event, deadline_ns) {
            log::error!("timer {:?}: {e}", self.event);
        }
    }

    pub fn cancel(&self) {
        self.sched.lock().cancel(self.event);
    }

    /// The deadline this timer is armed for, if it is.
    pub fn deadline(&self) -> Option<u64> {
        self.sched.lock().deadline_of(self.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Scheduler, now: u64) -> Vec<(u64, u32)> {
        std::iter::from_fn(|| s.pop_due(now))
            .map(|f| (f.deadline_ns, f.event.0))
            .collect()
    }

    #[test]
    fn fires_in_deadline_order_ties_by_sequence() {
        let mut s = Scheduler::new();
        assert_eq!(s.next_deadline(), None);
        s.schedule(EventId(3), 300).unwrap();
        s.schedule(EventId(1), 100).unwrap();
        s.schedule(EventId(7), 200).unwrap();
        s.schedule(EventId(2), 200).unwrap();
        s.schedule(EventId(5), 200).unwrap();
        assert_eq!(s.next_deadline(), Some(100));
        assert_eq!(s.pop_due(99), None);
        assert_eq!(
            drain(&mut s, 250),
            vec![(100, 1), (200, 7), (200, 2), (200, 5)]
        );
        assert_eq!(s.next_deadline(), Some(300));
        assert_eq!(drain(&mut s, u64::MAX), vec![(300, 3)]);
        assert!(s.is_empty());
    }

    #[test]
    fn rearming_replaces_and_cancel_removes() {
        let mut s = Scheduler::new();
        for i in 0..1000 {
            s.schedule(EventId(9), 1000 - i).unwrap();
        }
        assert_eq!(s.len(), 1);
        assert_eq!(s.deadline_of(EventId(9)), Some(1));
        s.schedule(EventId(4), 5).unwrap();
        // Re-arming to the same deadline moves the event behind others scheduled since.
        s.schedule(EventId(9), 5).unwrap();
        assert_eq!(drain(&mut s, 10), vec![(5, 4), (5, 9)]);
        s.schedule(EventId(1), 50).unwrap();
        assert!(s.cancel(EventId(1)));
        assert!(!s.cancel(EventId(1)));
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn bounded() {
        let mut s = Scheduler::new();
        for i in 0..SCHED_MAX_EVENTS as u32 {
            s.schedule(EventId(i), u64::from(i)).unwrap();
        }
        assert_eq!(s.schedule(EventId(u32::MAX), 1), Err(SchedError::Full));
        // Re-arming an existing event still works when full.
        s.schedule(EventId(0), 7).unwrap();
        assert_eq!(s.len(), SCHED_MAX_EVENTS);
    }

    #[test]
    fn timer_handle_arms_its_event() {
        let sched = Arc::new(Mutex::new(Scheduler::new()));
        let t = Timer::new(sched.clone(), EventId(2));
        t.arm(40);
        t.arm(30);
        assert_eq!(t.deadline(), Some(30));
        assert_eq!(
            sched.lock().pop_due(30),
            Some(Fired {
                deadline_ns: 30,
                event: EventId(2)
            })
        );
        assert_eq!(t.deadline(), None);
        t.arm(1);
        t.cancel();
        assert!(sched.lock().is_empty());
    }
}
