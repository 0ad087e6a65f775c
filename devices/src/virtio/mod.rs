//! Virtio devices over the MMIO transport (Virtual I/O Device (VIRTIO) Version 1.2).
//!
//! - [`mmio`]: the transport, §4.2 (version 2 registers only), as a [`BusDevice`](crate::BusDevice).
//! - [`queue`]: the split virtqueue, §2.7, walked by hand over [`GuestMemory`].
//! - [`blk`] §5.2, [`rng`] §5.4, [`console`] §5.3, [`net`] §5.1, and the network host backends
//!   in [`net_backend`].
//!
//! Why not the rust-vmm `virtio-queue` + `vm-memory` crates: our RAM is an existing `memmap2`
//! mapping (`GuestRam`) shared with generated code, so `GuestMemoryMmap` could only be built over
//! it with `unsafe MmapRegion::build_raw`, and every DMA write would additionally need to be
//! reported to the JIT's code map, which `vm-memory`'s `Bytes` API has no hook for. The split
//! ring is small; it is walked here through `GuestRam`'s checked accessors, with every guest
//! index, length and address checked (§2.7.5, §2.7.6) and every chain bounded by the queue size.
//!
//! A device is a state machine: it owns no thread, socket or clock. Host sides (image files,
//! network backends, output writers, entropy) are injected; host input enters through
//! [`mmio::VirtioMmio::poll`], which the run loop calls at slice boundaries.
//!
//! Board wiring (what `src/machine/virt.rs` does for each slot):
//!
//! ```text
//! let mem = GuestMemory::new(bus.ram_regions().to_vec(), Some(dma_hook)); // hook -> CodeMap::note_write
//! let blk = VirtioBlk::new(Box::new(FileBackend::open(path, readonly)?), readonly);
//! let dev = Arc::new(Mutex::new(VirtioMmio::new(blk, mem, plic.irq_line(1 + slot))));
//! bus.add_device(0x1000_1000 + 0x1000 * slot, VIRTIO_MMIO_SIZE, dev.clone())?;
//! polled.push(dev);   // as Arc<Mutex<dyn HostPoll>>: net and console, poll_host() per slice
//! ```
//!
//! Lock order: the device's mutex is held while it calls the DMA hook, so the hook must not
//! take a lock that is held around bus accesses.

pub mod blk;
pub mod console;
pub mod mmio;
pub mod net;
pub mod net_backend;
pub mod queue;
pub mod rng;

use crate::memory::GuestRam;
use std::sync::Arc;

pub use blk::{BlockBackend, BlockError, FileBackend, VirtioBlk};
pub use console::VirtioConsole;
pub use mmio::{HostPoll, VirtioMmio};
pub use net::VirtioNet;
pub use net_backend::{NetBackend, NullBackend, StreamBackend, TapBackend};
pub use queue::{DescChain, Queue, QueueError};
pub use rng::{EntropySource, HostEntropy, VirtioRng, XorShiftEntropy};

/// Device IDs (§5).
pub const VIRTIO_ID_NET: u32 = 1;
pub const VIRTIO_ID_BLOCK: u32 = 2;
pub const VIRTIO_ID_CONSOLE: u32 = 3;
pub const VIRTIO_ID_RNG: u32 = 4;

/// Device status bits (§2.1).
pub const VIRTIO_CONFIG_S_ACKNOWLEDGE: u32 = 1;
pub const VIRTIO_CONFIG_S_DRIVER: u32 = 2;
pub const VIRTIO_CONFIG_S_DRIVER_OK: u32 = 4;
pub const VIRTIO_CONFIG_S_FEATURES_OK: u32 = 8;
pub const VIRTIO_CONFIG_S_NEEDS_RESET: u32 = 64;
pub const VIRTIO_CONFIG_S_FAILED: u32 = 128;

/// Reserved feature bits (§6).
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

/// Where a DMA write landed: `(guest physical address, length)`. The board wires this to the
/// JIT's code map so a device write into a page holding translated code invalidates it.
pub type DmaWriteHook = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The guest memory a device may reach by DMA: the machine's RAM regions, through their
/// bounds-checked accessors. A range must lie inside one region.
#[derive(Clone)]
pub struct GuestMemory {
    regions: Vec<Arc<GuestRam>>,
    on_write: Option<DmaWriteHook>,
}

impl GuestMemory {
    pub fn new(regions: Vec<Arc<GuestRam>>, on_write: Option<DmaWriteHook>) -> Self {
        GuestMemory { regions, on_write }
    }

    fn region(&self, addr: u64, len: u64) -> Option<&Arc<GuestRam>> {
        self.regions.iter().find(|r| r.contains(addr, len))
    }

    /// Whether `[addr, addr + len)` is RAM (inside one region).
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        self.region(addr, len).is_some()
    }

    /// Copy guest bytes at `addr` into `buf`; false if the range is not RAM.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        self.region(addr, buf.len() as u64)
            .is_some_and(|r| r.read(addr, buf))
    }

    /// Copy `buf` to guest `addr`, reporting the write to the hook; false if not RAM.
    pub fn write(&self, addr: u64, buf: &[u8]) -> bool {
        let ok = self
            .region(addr, buf.len() as u64)
            .is_some_and(|r| r.write(addr, buf));
        if ok && !buf.is_empty() {
            if let Some(hook) = &self.on_write {
                hook(addr, buf.len() as u64);
            }
        }
        ok
    }

    pub fn read_u16(&self, addr: u64) -> Option<u16> {
        let mut b = [0u8; 2];
        self.read(addr, &mut b).then(|| u16::from_le_bytes(b))
    }

    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b).then(|| u32::from_le_bytes(b))
    }

    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b).then(|| u64::from_le_bytes(b))
    }

    pub fn write_u16(&self, addr: u64, v: u16) -> bool {
        self.write(addr, &v.to_le_bytes())
    }

    pub fn write_u32(&self, addr: u64, v: u32) -> bool {
        self.write(addr, &v.to_le_bytes())
    }
}

/// What a device's queue processing reports to the transport.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// Used buffers were added and the driver did not suppress interrupts (§2.7.10).
    pub notify: bool,
}

/// One device type behind the MMIO transport (§4.2.3 device-independent part lives in
/// [`mmio`]; this is the device-specific part).
pub trait VirtioDevice: Send {
    /// Device ID (§5).
    fn device_id(&self) -> u32;
    /// Offered feature bits; [`VIRTIO_F_VERSION_1`] is added by the transport.
    fn device_features(&self) -> u64;
    /// Number of virtqueues.
    fn num_queues(&self) -> usize;
    /// QueueNumMax for every queue.
    fn queue_max_size(&self) -> u16 {
        256
    }
    /// Read device configuration space at `offset` (any width, little-endian, §4.2.2).
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// Write device configuration space. Default: writes are ignored.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    /// The driver set DRIVER_OK with these negotiated features.
    fn activate(&mut self, _features: u64) {}
    /// Device reset (status written 0): forget everything the driver set up.
    fn reset(&mut self) {}
    /// The driver notified queue `index` (QueueNotify). Processed synchronously.
    fn process_queue(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        mem: &GuestMemory,
    ) -> Result<Completion, QueueError>;
    /// Host input at a slice boundary (network frames, console input).
    fn poll(
        &mut self,
        _queues: &mut [Queue],
        _mem: &GuestMemory,
    ) -> Result<Completion, QueueError> {
        Ok(Completion::default())
    }
}

/// Guest-triggered warnings are logged at most this many times per device.
const LOG_LIMIT: u32 = 16;

/// A per-device rate limit for guest-triggered warnings (DESIGN.md §6).
#[derive(Debug, Default)]
pub struct LogLimit(u32);

impl LogLimit {
    /// Whether to log one more warning; the last allowed one says so.
    pub fn allow(&mut self) -> bool {
        self.0 = self.0.saturating_add(1);
        if self.0 == LOG_LIMIT {
            log::warn!("virtio: further warnings from this device are suppressed");
        }
        self.0 < LOG_LIMIT
    }
}
