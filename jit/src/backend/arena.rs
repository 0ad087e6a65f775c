//! The executable memory of a [`super::CodeArena`]: one reservation, filled by a bump
//! allocator, written and executed without a system call per block.
//!
//! W^X without `mprotect`: the same pages are mapped twice, a read-write view that installing
//! writes through and a read-execute view that runs (as QEMU's `-accel tcg,split-wx=on` does
//! with a memfd). The pages are a shared anonymous mapping aliased with
//! `mremap(old_size = 0)`, not a memfd: Linux names such a mapping `/dev/zero (deleted)`,
//! which `perf` treats as anonymous memory and symbolizes with the perf map, where a
//! `/memfd:` mapping would be taken for a file without symbols. Pages are committed on first
//! touch (`MAP_NORESERVE`), so the reservation costs address space only.
//!
//! Why not `cranelift-jit`: its `finalize_definitions` makes each block's pages executable
//! with an `mprotect` (a TLB-shootdown IPI to the compile thread, which shares the address
//! space) and starts the next block on a fresh page, so every block faulted in and cleared a
//! page of its own: 6.4 % of the vCPU thread on the Linux boot, 0.7 % with this arena.

use std::io;

/// Executable memory: `len` bytes visible at `rw` (writable) and at `rx` (executable).
pub(crate) struct CodeMemory {
    rw: *mut u8,
    rx: *mut u8,
    len: usize,
    used: usize,
    page: usize,
}

// SAFETY: the views are plain memory owned by this value alone; nothing in it is tied to the
// thread that mapped it.
unsafe impl Send for CodeMemory {}

/// Host page size (the granule of the mappings).
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

impl CodeMemory {
    /// Reserve `len` bytes (rounded up to pages) of code memory.
    pub(crate) fn new(len: usize) -> io::Result<CodeMemory> {
        let page = page_size();
        let len = len
            .max(1)
            .checked_next_multiple_of(page)
            .ok_or_else(|| io::Error::other(format!("code arena of {len} bytes")))?;
        let (rw, rx) = map_twice(len)?;
        Ok(CodeMemory {
            rw,
            rx,
            len,
            used: 0,
            page,
        })
    }

    /// Copy `bytes` to the next `align`-aligned free address and make them executable; the
    /// executable address, or `None` if they do not fit. `align` must be a power of two no
    /// larger than [`CodeMemory::max_align`].
    pub(crate) fn install(&mut self, bytes: &[u8], align: usize) -> Option<*const u8> {
        debug_assert!(align.is_power_of_two() && align <= self.page);
        let start = self.used.checked_next_multiple_of(align.max(1))?;
        let end = start.checked_add(bytes.len())?;
        if end > self.len {
            return None;
        }
        // SAFETY: `start..end` lies inside both views (checked above); the range past `used`
        // was never handed out, so no code runs there and nothing else refers to it.
        let (rw, rx) = unsafe { (self.rw.add(start), self.rx.add(start)) };
        // SAFETY: `rw` is valid for `bytes.len()` writes (above); `bytes` is a distinct Rust
        // allocation, so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), rw, bytes.len()) };
        sync_icache(rw, rx, bytes.len());
        self.used = end;
        Some(rx.cast_const())
    }

    /// Bytes handed out so far (alignment padding included).
    pub(crate) fn used(&self) -> usize {
        self.used
    }

    /// The largest alignment [`CodeMemory::install`] honours: a page (the views start on one).
    pub(crate) fn max_align(&self) -> usize {
        self.page
    }

    /// Size of the reservation.
    pub(crate) fn capacity(&self) -> usize {
        self.len
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        // SAFETY: both views were mapped by `map_twice` with `len` bytes and are unmapped only
        // here; the owner ([`super::CodeArena`]) drops this only when no code runs in it.
        unsafe {
            libc::munmap(self.rw.cast(), self.len);
            libc::munmap(self.rx.cast(), self.len);
        }
    }
}

/// Map `len` bytes of fresh memory twice: (read-write view, read-execute view).
#[cfg(target_os = "linux")]
fn map_twice(len: usize) -> io::Result<(*mut u8, *mut u8)> {
    // SAFETY: a new mapping at an address of the kernel's choice touches no existing memory.
    let rw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if rw == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // mremap(2): "If the value of old_size is zero, and old_address refers to a shareable
    // mapping, mremap() will create a new mapping of the same pages."
    // SAFETY: `rw` is the shared mapping just created; the alias goes to a new address.
    let rx = unsafe { libc::mremap(rw, 0, len, libc::MREMAP_MAYMOVE) };
    if rx == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        // SAFETY: unmapping what was mapped above, which nothing else refers to.
        unsafe { libc::munmap(rw, len) };
        return Err(e);
    }
    // SAFETY: `rx` is the alias just created, `len` bytes, referred to by nothing else.
    if unsafe { libc::mprotect(rx, len, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        let e = io::Error::last_os_error();
        // SAFETY: as above, both mappings are ours alone.
        unsafe {
            libc::munmap(rx, len);
            libc::munmap(rw, len);
        }
        return Err(e);
    }
    Ok((rw.cast(), rx.cast()))
}

/// Other hosts: aliasing shared memory needs `mremap` (or a memfd), which is Linux's.
#[cfg(not(target_os = "linux"))]
fn map_twice(_len: usize) -> io::Result<(*mut u8, *mut u8)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "compiled code needs a Linux host (double-mapped code memory)",
    ))
}

/// Make the `len` bytes just written at `rw` visible to instruction fetch at `rx`, the same
/// memory. x86-64 and s390x keep instruction fetch coherent with data writes (through any
/// alias: x86 snoops by physical address), so this is nothing there; the other hosts
/// Cranelift supports need maintenance. The code only ever runs on the thread that installs
/// it (one arena per engine, one engine per vCPU thread), and it lands on memory never
/// executed since it was mapped.
#[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
fn sync_icache(_rw: *const u8, _rx: *const u8, _len: usize) {}

/// AArch64 (Arm ARM, "Concurrent modification and execution of instructions"): clean
/// the data cache to the point of unification by the address written, invalidate the
/// instruction cache by the address executed, each completed by `dsb ish` (broadcast to the
/// inner-shareable domain, so a migration to another core sees it too), then `isb`. CTR_EL0
/// gives the line sizes and says (IDC, DIC) when a step is not needed; Linux lets EL0 read it.
#[cfg(target_arch = "aarch64")]
fn sync_icache(rw: *const u8, rx: *const u8, len: usize) {
    use std::arch::asm;
    if len == 0 {
        return;
    }
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects; EL0 access is enabled (or emulated) by Linux.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    let dline = 4usize << ((ctr >> 16) & 0xf);
    let iline = 4usize << (ctr & 0xf);
    let lines = |start: *const u8, line: usize| {
        let first = start as usize & !(line - 1);
        (first..start as usize + len).step_by(line)
    };
    if ctr & (1 << 28) == 0 {
        for a in lines(rw, dline) {
            // SAFETY: cleaning a line of memory this arena maps has no effect on its contents.
            unsafe { asm!("dc cvau, {}", in(reg) a, options(nostack, preserves_flags)) };
        }
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    if ctr & (1 << 29) == 0 {
        for a in lines(rx, iline) {
            // SAFETY: invalidating instruction-cache lines of this arena has no effect on memory.
            unsafe { asm!("ic ivau, {}", in(reg) a, options(nostack, preserves_flags)) };
        }
        // SAFETY: a barrier.
        unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    }
    // SAFETY: a barrier.
    unsafe { asm!("isb", options(nostack, preserves_flags)) };
}

/// RISC-V has no user-mode instruction to reach other harts' instruction caches (`fence.i`
/// is local, and the thread may migrate): Linux's `riscv_flush_icache` system call, once per
/// block on this host only.
#[cfg(target_arch = "riscv64")]
fn sync_icache(_rw: *const u8, rx: *const u8, len: usize) {
    /// `__NR_riscv_flush_icache` (`__NR_arch_specific_syscall + 15`); not in `libc`.
    const SYS_RISCV_FLUSH_ICACHE: libc::c_long = 244 + 15;
    // SAFETY: the system call only flushes caches; flags 0 means all harts.
    unsafe { libc::syscall(SYS_RISCV_FLUSH_ICACHE, rx, rx.wrapping_add(len), 0usize) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permissions (`rwxp` column) of the mapping holding `addr`, from /proc/self/maps.
    fn perms(addr: *const u8) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let a = addr as usize;
        maps.lines().find_map(|l| {
            let (range, rest) = l.split_once(' ')?;
            let (lo, hi) = range.split_once('-')?;
            let (lo, hi) = (
                usize::from_str_radix(lo, 16).ok()?,
                usize::from_str_radix(hi, 16).ok()?,
            );
            (lo..hi)
                .contains(&a)
                .then(|| rest.split(' ').next().unwrap_or("").to_string())
        })
    }

    #[test]
    fn installs_aligned_until_full() {
        let mut m = CodeMemory::new(100).expect("code memory");
        let page = page_size();
        assert_eq!(m.capacity(), page);
        let a = m.install(&[1, 2, 3], 1).expect("fits");
        let b = m.install(&[4, 5], 16).expect("fits");
        assert_eq!(b as usize - a as usize, 16);
        assert_eq!(b as usize % 16, 0);
        assert_eq!(m.used(), 18);
        // SAFETY: both ranges were just installed and stay mapped while `m` lives.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(a, 3), &[1, 2, 3]);
            assert_eq!(std::slice::from_raw_parts(b, 2), &[4, 5]);
        }
        assert!(m.install(&vec![0; page], 1).is_none(), "past the end");
        assert_eq!(m.used(), 18, "a refused install takes nothing");
        let rest = page - 32;
        assert!(m.install(&vec![9; rest], 32).is_some(), "exactly fills it");
        assert!(m.install(&[0], 1).is_none());
    }

    #[test]
    fn code_view_is_executable_and_not_writable() {
        let mut m = CodeMemory::new(1).expect("code memory");
        let x = m.install(&[0xc3], 1).expect("fits");
        assert_eq!(perms(x).as_deref(), Some("r-xs"));
        assert_eq!(perms(m.rw).as_deref(), Some("rw-s"));
    }
}
