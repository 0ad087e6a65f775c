//! The split virtqueue (VIRTIO 1.2 §2.7), device side.
//!
//! ```text
//! Descriptor Table  16 bytes each: addr u64, len u32, flags u16, next u16      (§2.7.5)
//! Available Ring    flags u16, idx u16, ring[size] u16, (used_event u16)       (§2.7.6)
//! Used Ring         flags u16, idx u16, ring[size] {id u32, len u32}, ...      (§2.7.8)
//! ```
//!
//! Everything the driver wrote is untrusted: a head or `next` index past the queue size, an
//! available index more than `size` ahead, a chain longer than the queue (which is also how a
//! loop shows), a buffer outside RAM or whose end overflows, a writable descriptor followed by
//! a readable one (§2.7.4.2), or an indirect descriptor (not negotiated) is a [`QueueError`],
//! which the transport turns into DEVICE_NEEDS_RESET.

use super::GuestMemory;
use std::sync::atomic::{fence, Ordering};
use thiserror::Error;

/// Descriptor flags (§2.7.5).
pub const VIRTQ_DESC_F_NEXT: u16 = 1;
pub const VIRTQ_DESC_F_WRITE: u16 = 2;
pub const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// Available ring flag: the driver does not want used-buffer notifications (§2.7.7).
pub const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Largest queue size the split ring allows (§2.7: Queue Size up to 32768).
pub const VIRTQ_MAX_SIZE: u16 = 32768;

/// A driver error found while walking a queue.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueueError {
    /// the queue's size is not a power of two up to QueueNumMax
    #[error("queue size {0} is not a power of two no larger than the maximum")]
    BadSize(u16),
    /// a ring or the descriptor table is misaligned or outside RAM
    #[error("queue ring at {0:#x} is misaligned or outside RAM")]
    BadRing(u64),
    /// the available index moved more than the queue size ahead
    #[error("available index {avail} is more than the queue size ahead of {last}")]
    BadAvailIndex { avail: u16, last: u16 },
    /// a descriptor index is out of range
    #[error("descriptor index {0} is out of range")]
    BadDescIndex(u16),
    /// a chain is longer than the queue (or loops)
    #[error("descriptor chain starting at {0} is longer than the queue (loop?)")]
    ChainTooLong(u16),
    /// a buffer lies outside RAM or its end overflows
    #[error("descriptor buffer {addr:#x}+{len:#x} is outside RAM")]
    BadBuffer { addr: u64, len: u32 },
    /// a readable descriptor follows a writable one (§2.7.4.2)
    #[error("readable descriptor after a writable one in chain {0}")]
    BadOrder(u16),
    /// VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC
    #[error("indirect descriptor in chain {0}, but the feature was not offered")]
    Indirect(u16),
    /// a request was malformed in a way the device specification treats as fatal
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

/// One guest buffer of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
}

/// A descriptor chain taken from the available ring: its head index and its buffers, the
/// device-readable ones first, then the device-writable ones.
#[derive(Debug, Clone, Default)]
pub struct DescChain {
    pub head: u16,
    pub readable: Vec<Segment>,
    pub writable: Vec<Segment>,
}

fn total(segs: &[Segment]) -> u64 {
    segs.iter().map(|s| u64::from(s.len)).sum()
}

/// The guest ranges covering bytes `[skip, skip + len)` of the concatenation of `segs`, or
/// None if the segments are shorter.
pub fn sub_ranges(segs: &[Segment], skip: u64, len: u64) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut skip = skip;
    let mut left = len;
    for s in segs {
        if left == 0 {
            break;
        }
        let slen = u64::from(s.len);
        if skip >= slen {
            skip -= slen;
            continue;
        }
        let n = (slen - skip).min(left);
        out.push((s.addr + skip, n));
        left -= n;
        skip = 0;
    }
    (left == 0).then_some(out)
}

impl DescChain {
    pub fn readable_len(&self) -> u64 {
        total(&self.readable)
    }

    pub fn writable_len(&self) -> u64 {
        total(&self.writable)
    }

    /// Read `buf.len()` bytes of the readable part, from byte `skip`.
    pub fn read_at(&self, mem: &GuestMemory, skip: u64, buf: &mut [u8]) -> bool {
        let Some(ranges) = sub_ranges(&self.readable, skip, buf.len() as u64) else {
            return false;
        };
        let mut off = 0usize;
        for (addr, n) in ranges {
            let n = n as usize;
            let Some(dst) = buf.get_mut(off..off + n) else {
                return false;
            };
            if !mem.read(addr, dst) {
                return false;
            }
            off += n;
        }
        true
    }

    /// Write `buf` into the writable part, from byte `skip`.
    pub fn write_at(&self, mem: &GuestMemory, skip: u64, buf: &[u8]) -> bool {
        let Some(ranges) = sub_ranges(&self.writable, skip, buf.len() as u64) else {
            return false;
        };
        let mut off = 0usize;
        for (addr, n) in ranges {
            let n = n as usize;
            let Some(src) = buf.get(off..off + n) else {
                return false;
            };
            if !mem.write(addr, src) {
                return false;
            }
            off += n;
        }
        true
    }
}

/// One split virtqueue as the driver configured it through the transport.
#[derive(Debug, Clone)]
pub struct Queue {
    /// QueueNumMax.
    pub max_size: u16,
    /// QueueNum (the driver's choice).
    pub size: u16,
    /// QueueReady.
    pub ready: bool,
    /// QueueDesc, QueueDriver (available ring), QueueDevice (used ring).
    pub desc_table: u64,
    pub avail_ring: u64,
    pub used_ring: u64,
    next_avail: u16,
    next_used: u16,
}

impl Queue {
    pub fn new(max_size: u16) -> Self {
        Queue {
            max_size,
            size: max_size,
            ready: false,
            desc_table: 0,
            avail_ring: 0,
            used_ring: 0,
            next_avail: 0,
            next_used: 0,
        }
    }

    /// Back to the reset state (§4.2.2: QueueReady 0, addresses 0).
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    fn check_layout(&self, mem: &GuestMemory) -> Result<(), QueueError> {
        let size = self.size;
        if size == 0 || !size.is_power_of_two() || size > self.max_size {
            return Err(QueueError::BadSize(size));
        }
        let n = u64::from(size);
        // §2.7: alignment 16 (descriptors), 2 (available), 4 (used).
        let rings = [
            (self.desc_table, 16, 16 * n),
            (self.avail_ring, 2, 6 + 2 * n),
            (self.used_ring, 4, 6 + 8 * n),
        ];
        for (addr, align, len) in rings {
            if !addr.is_multiple_of(align) || !mem.contains(addr, len) {
                return Err(QueueError::BadRing(addr));
            }
        }
        Ok(())
    }

    fn avail_idx(&self, mem: &GuestMemory) -> Result<u16, QueueError> {
        mem.read_u16(self.avail_ring + 2)
            .ok_or(QueueError::BadRing(self.avail_ring))
    }

    /// Whether the driver has made a buffer available that the device has not taken.
    pub fn has_available(&self, mem: &GuestMemory) -> Result<bool, QueueError> {
        if !self.ready {
            return Ok(false);
        }
        self.check_layout(mem)?;
        Ok(self.avail_idx(mem)? != self.next_avail)
    }

    /// Take the next available chain, if any (§2.7.13.1 device side).
    pub fn pop(&mut self, mem: &GuestMemory) -> Result<Option<DescChain>, QueueError> {
        if !self.ready {
            return Ok(None);
        }
        self.check_layout(mem)?;
        let avail = self.avail_idx(mem)?;
        let pending = avail.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::BadAvailIndex {
                avail,
                last: self.next_avail,
            });
        }
        // Read the ring entry and descriptors only after seeing the index (§2.7.13.3).
        fence(Ordering::Acquire);
        let slot = u64::from(self.next_avail % self.size);
        let head = mem
            .read_u16(self.avail_ring + 4 + 2 * slot)
            .ok_or(QueueError::BadRing(self.avail_ring))?;
        let chain = self.walk(mem, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    fn walk(&self, mem: &GuestMemory, head: u16) -> Result<DescChain, QueueError> {
        let mut chain = DescChain {
            head,
            ..DescChain::default()
        };
        let mut index = head;
        for _ in 0..self.size {
            if index >= self.size {
                return Err(QueueError::BadDescIndex(index));
            }
            let d = self.desc_table + 16 * u64::from(index);
            // §2.7.5: struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
            let mut raw = [0u8; 16];
            if !mem.read(d, &mut raw) {
                return Err(QueueError::BadRing(self.desc_table));
            }
            let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, n0, n1] = raw;
            let addr = u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
            let len = u32::from_le_bytes([l0, l1, l2, l3]);
            let flags = u16::from_le_bytes([f0, f1]);
            let next = u16::from_le_bytes([n0, n1]);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect(head));
            }
            if addr.checked_add(u64::from(len)).is_none() || !mem.contains(addr, u64::from(len)) {
                return Err(QueueError::BadBuffer { addr, len });
            }
            let seg = Segment { addr, len };
            if flags & VIRTQ_DESC_F_WRITE != 0 {
                chain.writable.push(seg);
            } else if chain.writable.is_empty() {
                chain.readable.push(seg);
            } else {
                return Err(QueueError::BadOrder(head));
            }
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(chain);
            }
            index = next;
        }
        Err(QueueError::ChainTooLong(head))
    }

    /// Return a chain to the driver with `len` bytes written into it (§2.7.8).
    pub fn add_used(&mut self, mem: &GuestMemory, head: u16, len: u32) -> Result<(), QueueError> {
        self.check_layout(mem)?;
        let slot = u64::from(self.next_used % self.size);
        let elem = self.used_ring + 4 + 8 * slot;
        let bad = QueueError::BadRing(self.used_ring);
        if !(mem.write_u32(elem, u32::from(head)) && mem.write_u32(elem + 4, len)) {
            return Err(bad);
        }
        // The element must be visible before the index that publishes it (§2.7.13.3 mirror).
        fence(Ordering::Release);
        self.next_used = self.next_used.wrapping_add(1);
        if !mem.write_u16(self.used_ring + 2, self.next_used) {
            return Err(bad);
        }
        Ok(())
    }

    /// Whether the driver wants a used-buffer notification now (§2.7.10, no event index).
    pub fn wants_interrupt(&self, mem: &GuestMemory) -> bool {
        fence(Ordering::SeqCst);
        mem.read_u16(self.avail_ring)
            .is_none_or(|flags| flags & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_ranges_split_across_segments() {
        let segs = [
            Segment {
                addr: 0x100,
                len: 4,
            },
            Segment {
                addr: 0x200,
                len: 8,
            },
        ];
        assert_eq!(sub_ranges(&segs, 2, 6), Some(vec![(0x102, 2), (0x200, 4)]));
        assert_eq!(sub_ranges(&segs, 11, 1), Some(vec![(0x207, 1)]));
        assert_eq!(sub_ranges(&segs, 11, 2), None);
        assert_eq!(sub_ranges(&segs, 0, 0), Some(vec![]));
    }
}
