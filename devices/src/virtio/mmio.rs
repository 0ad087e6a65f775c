//! The virtio MMIO transport, version 2 ("non-legacy") registers (VIRTIO 1.2 §4.2.2, table
//! "MMIO Device Register Layout"), as QEMU's `virtio-mmio` with `force-legacy=false`.
//!
//! Registers are 32 bits wide and must be accessed as such (§4.2.2.2); other widths are logged
//! and ignored. The device configuration space at 0x100 is read and written at any width.
//! A QueueNotify write processes that queue synchronously, so completions happen at the
//! notifying instruction's count (deterministic). Driver errors found in a queue set
//! DEVICE_NEEDS_RESET and raise a configuration-change interrupt (§2.1.2); the device then
//! processes nothing until the driver resets it by writing 0 to Status.

use super::{
    Completion, GuestMemory, LogLimit, Queue, QueueError, VirtioDevice, VIRTIO_CONFIG_S_DRIVER_OK,
    VIRTIO_CONFIG_S_FAILED, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_NEEDS_RESET,
    VIRTIO_F_VERSION_1,
};
use crate::bus::BusDevice;
use crate::irq::IrqLine;

/// Size of one virtio-mmio window (QEMU `virt`: VIRT_VIRTIO size 0x1000).
pub const VIRTIO_MMIO_SIZE: u64 = 0x1000;

/// "virt" in little-endian ASCII.
pub const VIRTIO_MMIO_MAGIC: u32 = 0x7472_6976;
/// "QEMU", the vendor ID QEMU reports.
pub const VIRTIO_MMIO_VENDOR: u32 = 0x554d_4551;

pub const VIRTIO_MMIO_MAGIC_VALUE: u64 = 0x000;
pub const VIRTIO_MMIO_VERSION: u64 = 0x004;
pub const VIRTIO_MMIO_DEVICE_ID: u64 = 0x008;
pub const VIRTIO_MMIO_VENDOR_ID: u64 = 0x00c;
pub const VIRTIO_MMIO_DEVICE_FEATURES: u64 = 0x010;
pub const VIRTIO_MMIO_DEVICE_FEATURES_SEL: u64 = 0x014;
pub const VIRTIO_MMIO_DRIVER_FEATURES: u64 = 0x020;
pub const VIRTIO_MMIO_DRIVER_FEATURES_SEL: u64 = 0x024;
pub const VIRTIO_MMIO_QUEUE_SEL: u64 = 0x030;
pub const VIRTIO_MMIO_QUEUE_NUM_MAX: u64 = 0x034;
pub const VIRTIO_MMIO_QUEUE_NUM: u64 = 0x038;
pub const VIRTIO_MMIO_QUEUE_READY: u64 = 0x044;
pub const VIRTIO_MMIO_QUEUE_NOTIFY: u64 = 0x050;
pub const VIRTIO_MMIO_INTERRUPT_STATUS: u64 = 0x060;
pub const VIRTIO_MMIO_INTERRUPT_ACK: u64 = 0x064;
pub const VIRTIO_MMIO_STATUS: u64 = 0x070;
pub const VIRTIO_MMIO_QUEUE_DESC_LOW: u64 = 0x080;
pub const VIRTIO_MMIO_QUEUE_DESC_HIGH: u64 = 0x084;
pub const VIRTIO_MMIO_QUEUE_DRIVER_LOW: u64 = 0x090;
pub const VIRTIO_MMIO_QUEUE_DRIVER_HIGH: u64 = 0x094;
pub const VIRTIO_MMIO_QUEUE_DEVICE_LOW: u64 = 0x0a0;
pub const VIRTIO_MMIO_QUEUE_DEVICE_HIGH: u64 = 0x0a4;
pub const VIRTIO_MMIO_SHM_SEL: u64 = 0x0ac;
pub const VIRTIO_MMIO_SHM_LEN_LOW: u64 = 0x0b0;
pub const VIRTIO_MMIO_SHM_LEN_HIGH: u64 = 0x0b4;
pub const VIRTIO_MMIO_SHM_BASE_LOW: u64 = 0x0b8;
pub const VIRTIO_MMIO_SHM_BASE_HIGH: u64 = 0x0bc;
pub const VIRTIO_MMIO_CONFIG_GENERATION: u64 = 0x0fc;
pub const VIRTIO_MMIO_CONFIG: u64 = 0x100;

/// InterruptStatus bits (§4.2.2).
pub const VIRTIO_MMIO_INT_VRING: u32 = 1;
pub const VIRTIO_MMIO_INT_CONFIG: u32 = 2;

/// Something the run loop polls at slice boundaries for host input.
pub trait HostPoll: Send {
    fn poll_host(&mut self);
}

/// A virtio device behind the MMIO transport.
pub struct VirtioMmio<D: VirtioDevice> {
    device: D,
    mem: GuestMemory,
    irq: IrqLine,
    queues: Vec<Queue>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    interrupt_status: u32,
    config_generation: u32,
    /// A driver error was found: nothing is processed until reset.
    broken: bool,
    log: LogLimit,
}

fn set_half(v: &mut u64, high: bool, half: u32) {
    if high {
        *v = (*v & 0xffff_ffff) | (u64::from(half) << 32);
    } else {
        *v = (*v & !0xffff_ffff) | u64::from(half);
    }
}

impl<D: VirtioDevice> VirtioMmio<D> {
    pub fn new(device: D, mem: GuestMemory, irq: IrqLine) -> Self {
        let max = device
            .queue_max_size()
            .clamp(1, super::queue::VIRTQ_MAX_SIZE);
        let queues = (0..device.num_queues()).map(|_| Queue::new(max)).collect();
        VirtioMmio {
            device,
            mem,
            irq,
            queues,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
            config_generation: 0,
            broken: false,
            log: LogLimit::default(),
        }
    }

    pub fn device(&self) -> &D {
        &self.device
    }

    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The Status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// The InterruptStatus register.
    pub fn interrupt_status(&self) -> u32 {
        self.interrupt_status
    }

    fn offered_features(&self) -> u64 {
        self.device.device_features() | VIRTIO_F_VERSION_1
    }

    fn update_irq(&self) {
        self.irq.set(self.interrupt_status != 0);
    }

    fn reset(&mut self) {
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        self.interrupt_status = 0;
        self.broken = false;
        for q in &mut self.queues {
            q.reset();
        }
        self.device.reset();
        self.update_irq();
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn running(&self) -> bool {
        let ready = VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK;
        self.status & ready == ready && !self.broken
    }

    fn complete(&mut self, r: Result<Completion, QueueError>) {
        match r {
            Ok(c) => {
                if c.notify {
                    self.interrupt_status |= VIRTIO_MMIO_INT_VRING;
                    self.update_irq();
                }
            }
            Err(e) => self.needs_reset(e),
        }
    }

    /// §2.1.2: the device has hit a driver error; it tells the driver with a config-change
    /// notification and stops.
    fn needs_reset(&mut self, e: QueueError) {
        if self.log.allow() {
            log::warn!(
                "virtio (device id {}): {e}; device needs reset",
                self.device.device_id()
            );
        }
        self.broken = true;
        self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
        self.interrupt_status |= VIRTIO_MMIO_INT_CONFIG;
        self.update_irq();
    }

    /// Host input at a slice boundary: let the device deliver what its backend has.
    pub fn poll(&mut self) {
        if !self.running() {
            return;
        }
        let r = self.device.poll(&mut self.queues, &self.mem);
        self.complete(r);
    }

    fn notify(&mut self, index: u32) {
        if !self.running() {
            return;
        }
        let index = index as usize;
        if index >= self.queues.len() {
            if self.log.allow() {
                log::warn!("virtio: notify of nonexistent queue {index}");
            }
            return;
        }
        let r = self
            .device
            .process_queue(index, &mut self.queues, &self.mem);
        self.complete(r);
    }

    fn write_status(&mut self, v: u32) {
        if v == 0 {
            self.reset();
            return;
        }
        let mut v = v;
        let newly = v & !self.status;
        // §2.2.2: FEATURES_OK is refused if the driver accepted a feature not offered or left
        // out VERSION_1 (a legacy driver, which this transport does not serve).
        if newly & VIRTIO_CONFIG_S_FEATURES_OK != 0 {
            let f = self.driver_features;
            if f & !self.offered_features() != 0 || f & VIRTIO_F_VERSION_1 == 0 {
                if self.log.allow() {
                    log::warn!("virtio: driver features {f:#x} refused");
                }
                v &= !VIRTIO_CONFIG_S_FEATURES_OK;
            }
        }
        let activate =
            newly & VIRTIO_CONFIG_S_DRIVER_OK != 0 && v & VIRTIO_CONFIG_S_FEATURES_OK != 0;
        if activate {
            self.device.activate(self.driver_features);
        }
        // NEEDS_RESET is the device's bit; the driver cannot set or clear it.
        self.status =
            (v & !VIRTIO_CONFIG_S_NEEDS_RESET) | (self.status & VIRTIO_CONFIG_S_NEEDS_RESET);
        if v & VIRTIO_CONFIG_S_FAILED != 0 {
            self.broken = true;
        }
        if activate {
            // A driver may make buffers available (and notify) before DRIVER_OK (§3.1.1 lets
            // it add buffers during setup); take them now so no notification is lost.
            for index in 0..self.queues.len() {
                self.notify(index as u32);
            }
        }
    }

    fn read_reg(&mut self, offset: u64) -> u32 {
        let q = self.queues.get(self.queue_sel as usize);
        match offset {
            VIRTIO_MMIO_MAGIC_VALUE => VIRTIO_MMIO_MAGIC,
            VIRTIO_MMIO_VERSION => 2,
            VIRTIO_MMIO_DEVICE_ID => self.device.device_id(),
            VIRTIO_MMIO_VENDOR_ID => VIRTIO_MMIO_VENDOR,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_sel {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max_size)),
            VIRTIO_MMIO_QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt_status,
            VIRTIO_MMIO_STATUS => self.status,
            // No shared memory regions: a length of all ones means "none" (§4.2.2).
            VIRTIO_MMIO_SHM_LEN_LOW | VIRTIO_MMIO_SHM_LEN_HIGH => u32::MAX,
            VIRTIO_MMIO_SHM_BASE_LOW | VIRTIO_MMIO_SHM_BASE_HIGH => u32::MAX,
            VIRTIO_MMIO_CONFIG_GENERATION => self.config_generation,
            _ => {
                if self.log.allow() {
                    log::warn!("virtio-mmio: read of write-only or unknown register {offset:#x}");
                }
                0
            }
        }
    }

    fn write_reg(&mut self, offset: u64, v: u32) {
        // Queue layout may only change while the queue is not ready (§4.2.3.2).
        let queue_writable = self.selected_queue().is_some_and(|q| !q.ready);
        match offset {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            VIRTIO_MMIO_DRIVER_FEATURES => {
                if self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0 {
                    match self.driver_features_sel {
                        0 => set_half(&mut self.driver_features, false, v),
                        1 => set_half(&mut self.driver_features, true, v),
                        _ => {}
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = v,
            VIRTIO_MMIO_QUEUE_NUM if queue_writable => {
                if let Some(q) = self.selected_queue() {
                    // Checked when the queue is used; an invalid size then needs reset.
                    q.size = u16::try_from(v).unwrap_or(0);
                }
            }
            VIRTIO_MMIO_QUEUE_READY => {
                if let Some(q) = self.selected_queue() {
                    q.ready = v & 1 != 0;
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_LOW | VIRTIO_MMIO_QUEUE_DESC_HIGH if queue_writable => {
                if let Some(q) = self.selected_queue() {
                    set_half(&mut q.desc_table, offset == VIRTIO_MMIO_QUEUE_DESC_HIGH, v);
                }
            }
            VIRTIO_MMIO_QUEUE_DRIVER_LOW | VIRTIO_MMIO_QUEUE_DRIVER_HIGH if queue_writable => {
                if let Some(q) = self.selected_queue() {
                    set_half(
                        &mut q.avail_ring,
                        offset == VIRTIO_MMIO_QUEUE_DRIVER_HIGH,
                        v,
                    );
                }
            }
            VIRTIO_MMIO_QUEUE_DEVICE_LOW | VIRTIO_MMIO_QUEUE_DEVICE_HIGH if queue_writable => {
                if let Some(q) = self.selected_queue() {
                    set_half(&mut q.used_ring, offset == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, v);
                }
            }
            VIRTIO_MMIO_QUEUE_NOTIFY => self.notify(v),
            VIRTIO_MMIO_INTERRUPT_ACK => {
                self.interrupt_status &= !v;
                self.update_irq();
            }
            VIRTIO_MMIO_STATUS => self.write_status(v),
            VIRTIO_MMIO_SHM_SEL => {}
            _ => {
                if self.log.allow() {
                    log::warn!("virtio-mmio: ignored write {v:#x} to register {offset:#x}");
                }
            }
        }
    }
}

impl<D: VirtioDevice> BusDevice for VirtioMmio<D> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= VIRTIO_MMIO_CONFIG {
            self.device.read_config(offset - VIRTIO_MMIO_CONFIG, data);
            return;
        }
        if data.len() != 4 || !offset.is_multiple_of(4) {
            if self.log.allow() {
                log::warn!(
                    "virtio-mmio: {}-byte read at {offset:#x} (registers are 32-bit)",
                    data.len()
                );
            }
            data.fill(0);
            return;
        }
        let v = self.read_reg(offset);
        data.copy_from_slice(&v.to_le_bytes());
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset >= VIRTIO_MMIO_CONFIG {
            self.device.write_config(offset - VIRTIO_MMIO_CONFIG, data);
            return;
        }
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            if self.log.allow() {
                log::warn!(
                    "virtio-mmio: {}-byte write at {offset:#x} ignored (registers are 32-bit)",
                    data.len()
                );
            }
            return;
        };
        if !offset.is_multiple_of(4) {
            return;
        }
        self.write_reg(offset, u32::from_le_bytes(bytes));
    }
}

impl<D: VirtioDevice> HostPoll for VirtioMmio<D> {
    fn poll_host(&mut self) {
        self.poll();
    }
}

/// Copy `data.len()` bytes of a little-endian config structure `bytes` from `offset`; bytes
/// past its end read as zero.
pub fn read_config_bytes(bytes: &[u8], offset: u64, data: &mut [u8]) {
    for (i, d) in data.iter_mut().enumerate() {
        *d = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(i))
            .and_then(|o| bytes.get(o))
            .copied()
            .unwrap_or(0);
    }
}
