//! Guest RAM: one anonymous `memmap2` mapping per region, lazily committed by the host kernel
//! (DESIGN.md §4). Outside the JIT's TLB fast path, RAM is only reached through the
//! bounds-checked accessors here.

use memmap2::MmapMut;
use std::cell::UnsafeCell;
use thiserror::Error;

/// Errors creating guest RAM.
#[derive(Debug, Error)]
pub enum MemoryError {
    /// could not allocate {size} bytes of guest RAM: {source}
    #[error("could not allocate {size} bytes of guest RAM: {source} (try a smaller -m)")]
    Alloc { size: u64, source: std::io::Error },
    /// guest RAM size must be a non-zero multiple of 4 KiB
    #[error("guest RAM size {0:#x} must be a non-zero multiple of 4 KiB")]
    BadSize(u64),
}

/// One region of guest RAM at guest physical address `base`.
///
/// The bytes are shared with generated code, which reads and writes them through TLB host
/// addends while this struct is borrowed immutably; hence the interior mutability.
pub struct GuestRam {
    base: u64,
    size: u64,
    map: UnsafeCell<MmapMut>,
}

// SAFETY: the mapping is plain memory; concurrent guest accesses are the guest's own data races,
// exactly as on hardware, and never create Rust references to the bytes (only raw pointers).
unsafe impl Sync for GuestRam {}
// SAFETY: as above; the mapping is not tied to a thread.
unsafe impl Send for GuestRam {}

impl std::fmt::Debug for GuestRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GuestRam({:#x}+{:#x})", self.base, self.size)
    }
}

impl GuestRam {
    pub fn new(base: u64, size: u64) -> Result<Self, MemoryError> {
        if size == 0 || !size.is_multiple_of(4096) || base.checked_add(size).is_none() {
            return Err(MemoryError::BadSize(size));
        }
        let len = usize::try_from(size).map_err(|_| MemoryError::BadSize(size))?;
        let map = MmapMut::map_anon(len).map_err(|source| MemoryError::Alloc { size, source })?;
        // Back guest RAM with transparent huge pages where the host allows it, as QEMU does
        // (`qemu_madvise(QEMU_MADV_HUGEPAGE)` in `ram_block_add`): a guest working set spread
        // over many pages (a compressor's dictionary, the page tables the TLB slow path walks)
        // costs the host a TLB miss per 4 KiB page touched; 2 MiB pages cover 512 times more.
        // Only a hint: without THP, or with THP off, the mapping stays as it was.
        #[cfg(target_os = "linux")]
        let _ = map.advise(memmap2::Advice::HugePage);
        Ok(GuestRam {
            base,
            size,
            map: UnsafeCell::new(map),
        })
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `[addr, addr + len)` lies inside this region.
    #[inline]
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && len <= self.size && addr - self.base <= self.size - len
    }

    #[inline]
    fn host_base(&self) -> *mut u8 {
        // SAFETY: taking the mapping's base pointer creates no reference to its bytes.
        unsafe { (*self.map.get()).as_mut_ptr() }
    }

    /// Host address of guest physical `addr`, if `[addr, addr + len)` is inside this region.
    /// The pointer stays valid as long as this `GuestRam` lives.
    #[inline]
    pub fn host_ptr(&self, addr: u64, len: u64) -> Option<*mut u8> {
        if !self.contains(addr, len) {
            return None;
        }
        // SAFETY: `contains` checked the offset is within the mapping.
        Some(unsafe { self.host_base().add((addr - self.base) as usize) })
    }

    /// Copy guest bytes at `addr` into `buf`; false if out of range.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        match self.host_ptr(addr, buf.len() as u64) {
            Some(p) => {
                // SAFETY: the range is inside the mapping (checked by host_ptr); `buf` is a
                // distinct Rust allocation.
                unsafe { std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), buf.len()) };
                true
            }
            None => false,
        }
    }

    /// Copy `buf` into guest memory at `addr`; false if out of range.
    pub fn write(&self, addr: u64, buf: &[u8]) -> bool {
        match self.host_ptr(addr, buf.len() as u64) {
            Some(p) => {
                // SAFETY: as in `read`.
                unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), p, buf.len()) };
                true
            }
            None => false,
        }
    }

    /// Fill `len` bytes at `addr` from `src` (a file being loaded into RAM) through a bounded
    /// buffer, so a file of tens of MiB is never held whole on the heap (whose fresh pages
    /// the host would have to fault in and clear, only to copy them here). `None` if the range
    /// is outside this region; the reader's error if it ends early.
    pub fn read_from(
        &self,
        addr: u64,
        len: u64,
        src: &mut impl std::io::Read,
    ) -> Option<std::io::Result<()>> {
        const CHUNK: u64 = 256 << 10;
        if !self.contains(addr, len) {
            return None;
        }
        let mut buf = vec![0u8; CHUNK.min(len) as usize];
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            let Some(chunk) = buf.get_mut(..n) else {
                break;
            };
            if let Err(e) = src.read_exact(chunk) {
                return Some(Err(e));
            }
            // In range: `contains` checked the whole of `[addr, addr + len)`.
            self.write(addr + done, chunk);
            done += n as u64;
        }
        Some(Ok(()))
    }

    pub fn read_u32(&self, addr: u64) -> Option<u32> {
        let mut b = [0u8; 4];
        self.read(addr, &mut b).then(|| u32::from_le_bytes(b))
    }

    pub fn read_u64(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b).then(|| u64::from_le_bytes(b))
    }

    pub fn write_u64(&self, addr: u64, v: u64) -> bool {
        self.write(addr, &v.to_le_bytes())
    }

    /// Atomic load of an aligned u64 (page-table walks: another hart may be setting A/D bits
    /// in the same PTE with [`GuestRam::compare_exchange_u64`]). None if out of range or
    /// misaligned.
    #[inline]
    pub fn load_u64(&self, addr: u64) -> Option<u64> {
        if !addr.is_multiple_of(8) {
            return None;
        }
        let p = self.host_ptr(addr, 8)? as *const std::sync::atomic::AtomicU64;
        // SAFETY: as in `compare_exchange_u64`: in range, 8-byte aligned, AtomicU64 has u64's
        // layout.
        let a = unsafe { &*p };
        Some(u64::from_le(a.load(std::sync::atomic::Ordering::Acquire)))
    }

    /// Atomic compare-and-swap of an aligned u64 (page-table A/D updates, AMOs by helpers).
    /// Returns the old value, or None if out of range or misaligned.
    pub fn compare_exchange_u64(&self, addr: u64, current: u64, new: u64) -> Option<u64> {
        if !addr.is_multiple_of(8) {
            return None;
        }
        let p = self.host_ptr(addr, 8)? as *const std::sync::atomic::AtomicU64;
        // SAFETY: in range (host_ptr), 8-byte aligned (the mapping is page-aligned and addr is
        // a multiple of 8), and AtomicU64 has u64's layout.
        let a = unsafe { &*p };
        Some(
            match a.compare_exchange(
                current.to_le(),
                new.to_le(),
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
            ) {
                Ok(v) | Err(v) => u64::from_le(v),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let ram = GuestRam::new(0x8000_0000, 0x2000).unwrap();
        assert!(ram.write(0x8000_1ff8, &[1; 8]));
        assert!(!ram.write(0x8000_1ffc, &[1; 8]));
        assert!(!ram.write(0x7fff_fffc, &[1; 8]));
        assert!(ram.host_ptr(u64::MAX, 2).is_none());
        assert_eq!(ram.read_u64(0x8000_1ff8), Some(0x0101_0101_0101_0101));
        assert!(GuestRam::new(0, 0).is_err());
    }

    #[test]
    fn atomic_u64_accessors_need_alignment_and_range() {
        let ram = GuestRam::new(0x8000_0000, 0x2000).unwrap();
        assert!(ram.write_u64(0x8000_1ff8, 0x1122_3344_5566_7788));
        assert_eq!(ram.load_u64(0x8000_1ff8), Some(0x1122_3344_5566_7788));
        assert_eq!(ram.load_u64(0x8000_1ffc), None);
        assert_eq!(ram.load_u64(0x8000_2000), None);
        assert_eq!(
            ram.compare_exchange_u64(0x8000_1ff8, 0x1122_3344_5566_7788, 5),
            Some(0x1122_3344_5566_7788)
        );
        assert_eq!(ram.load_u64(0x8000_1ff8), Some(5));
    }
}
