//! The physical address map: RAM regions and devices (DESIGN.md §6). A device sees only offsets
//! inside its own window (`BusDevice`, as Firecracker's bus does).

use crate::memory::GuestRam;
use parking_lot::Mutex;
use std::sync::Arc;
use thiserror::Error;

/// A memory-mapped device. Accesses are 1, 2, 4 or 8 bytes, little-endian, at `offset` from the
/// start of the device's window.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// Guest physical accesses that no RAM or device answers.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum BusError {
    /// nothing is mapped at guest physical {0:#x}
    #[error("nothing is mapped at guest physical address {0:#x}")]
    Unmapped(u64),
    /// the device windows overlap
    #[error("device window {0:#x}+{1:#x} overlaps another mapping")]
    Overlap(u64, u64),
}

struct DeviceWindow {
    base: u64,
    len: u64,
    dev: Arc<Mutex<dyn BusDevice>>,
}

/// The guest physical address space of one machine.
#[derive(Default)]
pub struct Bus {
    ram: Vec<Arc<GuestRam>>,
    devices: Vec<DeviceWindow>,
    /// Whether some device window overlaps a RAM region. Usually none does (the spike
    /// machine's HTIF `tohost` in a test program's data is the exception), and then an address
    /// inside RAM is plain RAM without scanning the device windows.
    device_in_ram: bool,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_ram(&mut self, ram: Arc<GuestRam>) {
        self.ram.push(ram);
        self.note_device_in_ram();
    }

    fn note_device_in_ram(&mut self) {
        self.device_in_ram = self.devices.iter().any(|w| {
            self.ram
                .iter()
                .any(|r| w.base < r.base() + r.size() && r.base() < w.base + w.len)
        });
    }

    /// Map a device at `[base, base + len)`. Devices may sit inside RAM pages (e.g. HTIF's
    /// `tohost` in a test program's data); such pages are never given a TLB fast-path entry.
    pub fn add_device(
        &mut self,
        base: u64,
        len: u64,
        dev: Arc<Mutex<dyn BusDevice>>,
    ) -> Result<(), BusError> {
        let end = base.checked_add(len).ok_or(BusError::Overlap(base, len))?;
        if self
            .devices
            .iter()
            .any(|w| base < w.base + w.len && w.base < end)
        {
            return Err(BusError::Overlap(base, len));
        }
        self.devices.push(DeviceWindow { base, len, dev });
        self.note_device_in_ram();
        Ok(())
    }

    pub fn ram_regions(&self) -> &[Arc<GuestRam>] {
        &self.ram
    }

    /// The RAM region holding `[addr, addr + len)`, if one does.
    #[inline]
    pub fn ram_at(&self, addr: u64, len: u64) -> Option<&Arc<GuestRam>> {
        self.ram.iter().find(|r| r.contains(addr, len))
    }

    /// The RAM region that [`Bus::read`] and [`Bus::write`] reach for `[addr, addr + len)`
    /// when no device window overlaps those bytes: accessors may then use the region directly
    /// (page-table walks read and update PTEs this way, without a bus copy).
    #[inline]
    pub fn plain_ram_at(&self, addr: u64, len: u64) -> Option<&GuestRam> {
        let ram = self.ram_at(addr, len)?;
        if self.device_in_ram && self.page_has_device(addr, len) {
            return None;
        }
        Some(ram)
    }

    fn device_at(&self, addr: u64, len: u64) -> Option<&DeviceWindow> {
        self.devices
            .iter()
            .find(|w| addr >= w.base && addr - w.base < w.len && len <= w.len - (addr - w.base))
    }

    fn page_has_device(&self, page: u64, page_size: u64) -> bool {
        self.devices
            .iter()
            .any(|w| w.base < page + page_size && page < w.base + w.len)
    }

    /// Host address of a whole guest physical page that is plain RAM (no device inside it):
    /// what a TLB fast-path entry may point at.
    pub fn ram_page_host_ptr(&self, page: u64, page_size: u64) -> Option<*mut u8> {
        self.plain_ram_at(page, page_size)?
            .host_ptr(page, page_size)
    }

    /// Read `data.len()` bytes at guest physical `addr`: a device window first (it may cover
    /// part of a RAM page), then RAM.
    pub fn read(&self, addr: u64, data: &mut [u8]) -> Result<(), BusError> {
        let len = data.len() as u64;
        if let Some(r) = self.plain_ram_at(addr, len) {
            if r.read(addr, data) {
                return Ok(());
            }
        }
        if let Some(w) = self.device_at(addr, len) {
            w.dev.lock().read(addr - w.base, data);
            return Ok(());
        }
        match self.ram_at(addr, len) {
            Some(r) if r.read(addr, data) => Ok(()),
            _ => Err(BusError::Unmapped(addr)),
        }
    }

    /// Write `data` at guest physical `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), BusError> {
        let len = data.len() as u64;
        if let Some(r) = self.plain_ram_at(addr, len) {
            if r.write(addr, data) {
                return Ok(());
            }
        }
        if let Some(w) = self.device_at(addr, len) {
            w.dev.lock().write(addr - w.base, data);
            return Ok(());
        }
        match self.ram_at(addr, len) {
            Some(r) if r.write(addr, data) => Ok(()),
            _ => Err(BusError::Unmapped(addr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reg(u64);
    impl BusDevice for Reg {
        fn read(&mut self, _offset: u64, data: &mut [u8]) {
            let b = self.0.to_le_bytes();
            data.copy_from_slice(&b[..data.len()]);
        }
        fn write(&mut self, _offset: u64, data: &[u8]) {
            let mut b = [0u8; 8];
            b[..data.len()].copy_from_slice(data);
            self.0 = u64::from_le_bytes(b);
        }
    }

    #[test]
    fn device_inside_ram_page_takes_priority_and_blocks_fast_path() {
        let mut bus = Bus::new();
        bus.add_ram(Arc::new(GuestRam::new(0x8000_0000, 0x4000).unwrap()));
        bus.add_device(0x8000_1000, 16, Arc::new(Mutex::new(Reg(0))))
            .unwrap();
        bus.write(0x8000_1000, &7u64.to_le_bytes()).unwrap();
        let mut b = [0u8; 8];
        bus.read(0x8000_1000, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 7);
        assert!(bus.ram_page_host_ptr(0x8000_1000, 4096).is_none());
        assert!(bus.ram_page_host_ptr(0x8000_2000, 4096).is_some());
        assert_eq!(bus.read(0x10, &mut b), Err(BusError::Unmapped(0x10)));
        assert!(bus.plain_ram_at(0x8000_1008, 8).is_none());
        assert!(bus.plain_ram_at(0x8000_1010, 8).is_some());
        assert!(bus.plain_ram_at(0x8000_3ffc, 8).is_none());
    }

    #[test]
    fn ram_lookups_without_devices_in_ram() {
        let mut bus = Bus::new();
        bus.add_device(0x1000_0000, 0x100, Arc::new(Mutex::new(Reg(5))))
            .unwrap();
        bus.add_ram(Arc::new(GuestRam::new(0x8000_0000, 0x4000).unwrap()));
        assert!(!bus.device_in_ram);
        bus.write(0x8000_0ff8, &9u64.to_le_bytes()).unwrap();
        let ram = bus.plain_ram_at(0x8000_0ff8, 8).unwrap();
        assert_eq!(ram.load_u64(0x8000_0ff8), Some(9));
        assert!(bus.plain_ram_at(0x1000_0000, 8).is_none());
        let mut b = [0u8; 8];
        bus.read(0x1000_0000, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 5);
        // A device added inside RAM later is seen by every lookup.
        bus.add_device(0x8000_0ff0, 16, Arc::new(Mutex::new(Reg(6))))
            .unwrap();
        assert!(bus.device_in_ram);
        assert!(bus.plain_ram_at(0x8000_0ff8, 8).is_none());
        assert!(bus.ram_page_host_ptr(0x8000_0000, 4096).is_none());
        bus.read(0x8000_0ff8, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), 6);
    }
}
