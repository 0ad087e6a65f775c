//! The CPU-state header shared by every guest, the softmmu TLB layout and the slow-path ABI
//! (DESIGN.md §4).
//!
//! Every frontend's CPU state is a `#[repr(C)]` struct whose **first field** is a [`CpuCommon`].
//! IR globals are byte offsets from the start of that struct; generated code and the interpreter
//! receive a pointer to it. The softmmu fast path (both executors) is:
//!
//! ```text
//! idx   = (vaddr >> PAGE_BITS) & (TLB_ENTRIES - 1)
//! entry = &common.tlb[mmu_idx][idx]
//! tag   = entry.addr_read, or addr_write for stores and store-intent loads
//! hit   = (vaddr & (PAGE_MASK | (size - 1))) == tag          // size-1 only if MemOp::aligned
//!                                                            // or the access stays in the page
//! host  = vaddr + entry.addend                               // on a hit
//! ```
//!
//! A tag with any low flag bit set ([`TLB_INVALID`], [`TLB_MMIO`], [`TLB_NOTDIRTY`]) never
//! matches an address with those bits clear, so those pages always take the slow path. Entries
//! are only filled (by the frontend's page walker, in its slow path) for guest pages wholly inside
//! one guest-RAM mapping, so `vaddr + addend` always lands in checked host memory.
//!
//! Misaligned accesses: the fast path handles an access whose bytes lie in one page. For a
//! `MemOp` that allows misalignment the hit test compares the page of the access's *last*
//! byte, `(vaddr + size - 1) & PAGE_MASK`, with the tag (QEMU's softmmu does the same), so a
//! misaligned access inside a page hits and a page-crossing one misses (the entry indexed by
//! the first byte's page never holds the next page). For `MemOp::aligned` the test keeps the
//! low `size - 1` address bits, `vaddr & (PAGE_MASK | (size-1))`, so every misaligned access
//! misses and the slow path raises the fault. The slow path performs the accesses the fast
//! path refuses (each half of a page-crossing one) through the TLB entry it fills when the
//! page is plain RAM ([`CpuCommon::try_read_in_page`]), or on the bus. (Linux measures
//! misaligned accesses as fast on emu and uses them: a boot makes about 6 M of them.)

use crate::ir::MemOp;

pub const PAGE_BITS: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_BITS;
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);

/// Entries per TLB (per MMU mode); a power of two. 16384 entries reach 64 MiB of guest pages:
/// 7-Zip's compressor (dictionary, hash chains and window) missed a direct-mapped table of
/// 8192 ~1.2 M times a run and misses one of 16384 or 32768 ~0.18 M times. QEMU gets there by
/// growing its TLB with use (`tlb_mmu_resize_locked`); flushes here cost what was filled
/// ([`CpuCommon::tlb_filled`]), not the table's size.
pub const TLB_ENTRIES: usize = 16384;
/// Words of the per-mode bitmap of filled TLB entries ([`CpuCommon::tlb_filled`]).
pub const TLB_FILLED_WORDS: usize = TLB_ENTRIES / 64;
const _: () = assert!(TLB_ENTRIES.is_power_of_two() && TLB_ENTRIES.is_multiple_of(64));
/// MMU modes (frontend-defined meaning, e.g. RISC-V: U, S, S+SUM, M, each with MXR).
pub const NB_MMU_MODES: usize = 8;

/// Tag flag: entry is empty.
///
/// The flags live in the *top* bits of the page offset, as QEMU's `TLB_INVALID_MASK` and
/// friends do: the hit test keeps the low `size - 1` bits of the address so a misaligned
/// access misses, and flags in those low bits would make a misaligned access whose offset
/// bits happen to equal a flag pattern hit a flagged (MMIO, empty) entry — found by fuzzing
/// (fuzz/corpus/riscv_lifter/regress-tlb-flag-alias).
pub const TLB_INVALID: u64 = 1 << (PAGE_BITS - 1);
/// Tag flag: the page is device memory (or holds a sub-page device): every access goes through
/// the slow path to the bus.
pub const TLB_MMIO: u64 = 1 << (PAGE_BITS - 2);
/// Tag flag (write tag only): the page holds translated code; a store must go through the slow
/// path so the translations in it are invalidated (self-modifying code).
pub const TLB_NOTDIRTY: u64 = 1 << (PAGE_BITS - 3);

/// One softmmu TLB entry, laid out as generated code reads it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Page-aligned guest virtual address valid for loads, plus flags; `TLB_INVALID` if none.
    pub addr_read: u64,
    /// Page-aligned guest virtual address valid for stores, plus flags.
    pub addr_write: u64,
    /// Page-aligned guest virtual address valid for instruction fetch, plus flags.
    pub addr_code: u64,
    /// `host address - guest virtual address` for the page (wrapping).
    pub addend: u64,
}

impl TlbEntry {
    pub const EMPTY: TlbEntry = TlbEntry {
        addr_read: TLB_INVALID,
        addr_write: TLB_INVALID,
        addr_code: TLB_INVALID,
        addend: 0,
    };
}

/// Kinds of memory access, as the slow path and page walkers see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    Load,
    Store,
    Fetch,
}

/// Slow-path load: performs the access (walking the page table, filling the TLB, going to the
/// bus for MMIO) and returns the value extended as `memop` says. On a guest fault it records the
/// exception in the CPU state (`exception_pending = 1` plus the frontend's cause/tval fields) and
/// returns 0. Arguments: CPU state, guest virtual address, `MemOp::to_bits`, MMU index.
pub type SlowLoadFn = extern "C" fn(*mut CpuCommon, u64, u32, u32) -> u64;
/// Slow-path store: as [`SlowLoadFn`]; the value is in the low bytes of the third argument.
pub type SlowStoreFn = extern "C" fn(*mut CpuCommon, u64, u64, u32, u32);

/// The memory slow path of a guest, installed by the frontend in [`CpuCommon::slow`].
#[derive(Clone, Copy, Debug)]
pub struct MemSlowPath {
    pub load: SlowLoadFn,
    pub store: SlowStoreFn,
}

/// Reasons recorded by the engine when the run loop must look at the vCPU. Written by the
/// executors, read by the run loop.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitInfo {
    /// `ExitReason` as u32 (0 = none / budget), see [`crate::exec::ExitCode`].
    pub code: u32,
    pub _pad: u32,
}

/// The TLBs of all MMU modes.
pub type TlbTables = [[TlbEntry; TLB_ENTRIES]; NB_MMU_MODES];

/// Empty TLB tables, allocated directly on the heap (4 MiB never pass through the stack).
fn empty_tlb_tables() -> Box<TlbTables> {
    let flat: Box<[TlbEntry]> = vec![TlbEntry::EMPTY; TLB_ENTRIES * NB_MMU_MODES].into();
    // SAFETY: `[[T; N]; M]` is laid out as `N * M` consecutive `T`s with `T`'s alignment, so
    // the allocation of `N * M` entries made by the boxed slice is exactly one `TlbTables`,
    // and ownership moves from one box to the other.
    unsafe { Box::from_raw(Box::into_raw(flat) as *mut TlbTables) }
}

/// The header of every guest CPU state. `#[repr(C)]`: generated code reads its fields at fixed
/// offsets (see the `OFFSET_*` constants).
#[repr(C)]
pub struct CpuCommon {
    /// Guest virtual PC of the next instruction to run (valid at block boundaries and exits).
    pub pc: u64,
    /// Guest instructions retired so far.
    pub insn_count: u64,
    /// Blocks check `insn_count >= insn_limit` on entry and exit to the run loop if so. The run
    /// loop sets it to the next event deadline; anyone wanting the vCPU out sets it to 0.
    pub insn_limit: u64,
    /// Non-zero when a helper or the slow path recorded a guest exception; the frontend keeps
    /// the cause and value in its own fields.
    pub exception_pending: u64,
    /// Memory slow path of this guest.
    pub slow: MemSlowPath,
    /// One TLB per MMU mode, on the heap (8 MMU modes × 16384 entries are 4 MiB: kept out of
    /// the state so a state can be built on a thread's stack); generated code loads the
    /// pointer ([`OFFSET_TLB_PTR`]) once per block.
    pub tlb: Box<TlbTables>,
    /// Per MMU mode, one bit per TLB entry possibly filled since the last full flush, so a
    /// flush costs what was filled rather than the whole table. Only meaningful when
    /// `tlb_fill_tracked` is set: a frontend that sets it promises to fill entries only through
    /// [`CpuCommon::tlb_set`] (or to record them with [`CpuCommon::tlb_mark_filled`]).
    pub tlb_filled: [[u64; TLB_FILLED_WORDS]; NB_MMU_MODES],
    /// Whether `tlb_filled` covers every filled entry; if not, flushes clear whole tables.
    pub tlb_fill_tracked: bool,
    /// Bumped by every TLB flush (whole or one page): the guest's virtual-to-physical mapping
    /// may have changed, so the engine drops what it cached by virtual address (its jump
    /// cache).
    pub tlb_generation: u64,
    /// The virtual pages flushed one by one since the engine last looked
    /// ([`CpuCommon::take_tlb_flushes`]), so it can drop only what it cached for them (Linux
    /// flushes one page after every page-table update, e.g. each page fault on RISC-V).
    tlb_flushed: [u64; TLB_FLUSH_LOG],
    /// Entries of `tlb_flushed` in use; `TLB_FLUSHED_ALL` after a whole flush or an overflow.
    tlb_flushed_len: usize,
    /// Stack pointer of the x86-64 entry into compiled code (backend `unwind.rs`), where the
    /// memory slow path's thunk leaves to on a guest fault. Written by that assembly only.
    pub unwind_sp: u64,
}

/// Page flushes [`CpuCommon`] remembers between two looks of the engine; more count as a
/// whole flush.
pub const TLB_FLUSH_LOG: usize = 8;
const TLB_FLUSHED_ALL: usize = usize::MAX;

/// What the TLB flushes since the engine last looked amount to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbFlushes<'a> {
    None,
    /// These virtual pages (page-aligned addresses).
    Pages(&'a [u64]),
    All,
}

impl CpuCommon {
    pub fn new(slow: MemSlowPath) -> Self {
        CpuCommon {
            pc: 0,
            insn_count: 0,
            insn_limit: u64::MAX,
            exception_pending: 0,
            slow,
            tlb: empty_tlb_tables(),
            tlb_filled: [[0; TLB_FILLED_WORDS]; NB_MMU_MODES],
            tlb_fill_tracked: false,
            tlb_generation: 0,
            tlb_flushed: [0; TLB_FLUSH_LOG],
            tlb_flushed_len: 0,
            unwind_sp: 0,
        }
    }

    /// The TLB flushes since the last call (the engine's jump cache follows them); forgets them.
    pub fn take_tlb_flushes(&mut self) -> TlbFlushes<'_> {
        let len = std::mem::take(&mut self.tlb_flushed_len);
        match len {
            0 => TlbFlushes::None,
            TLB_FLUSHED_ALL => TlbFlushes::All,
            n => TlbFlushes::Pages(self.tlb_flushed.get(..n).unwrap_or(&[])),
        }
    }

    /// Fill entry `idx` of MMU mode `mode`'s TLB and record it for the next flush. Both
    /// indices are reduced into range.
    #[inline]
    pub fn tlb_set(&mut self, mode: usize, idx: usize, entry: TlbEntry) {
        let (mode, idx) = (mode % NB_MMU_MODES, idx % TLB_ENTRIES);
        self.tlb[mode][idx] = entry;
        self.tlb_mark_filled(mode, idx);
    }

    /// Record that entry `idx` of mode `mode` was filled (indices reduced into range).
    #[inline]
    pub fn tlb_mark_filled(&mut self, mode: usize, idx: usize) {
        let idx = idx % TLB_ENTRIES;
        self.tlb_filled[mode % NB_MMU_MODES][idx / 64] |= 1 << (idx % 64);
    }

    /// Indices of the entries of `mode` possibly non-empty: those filled since the last flush
    /// when fills are tracked, else every index.
    pub fn tlb_filled_indices(&self, mode: usize) -> impl Iterator<Item = usize> + '_ {
        let words = self.tlb_filled[mode % NB_MMU_MODES];
        let tracked = self.tlb_fill_tracked;
        (0..TLB_FILLED_WORDS).flat_map(move |w| {
            let mut bits = if tracked { words[w] } else { u64::MAX };
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(w * 64 + b)
            })
        })
    }

    /// Empty every TLB. With tracked fills only the entries filled since the last flush are
    /// written, so the cost follows what was filled, not the table size.
    pub fn tlb_flush(&mut self) {
        self.tlb_generation = self.tlb_generation.wrapping_add(1);
        self.tlb_flushed_len = TLB_FLUSHED_ALL;
        if !self.tlb_fill_tracked {
            for t in self.tlb.iter_mut() {
                t.fill(TlbEntry::EMPTY);
            }
            self.tlb_filled = [[0; TLB_FILLED_WORDS]; NB_MMU_MODES];
            return;
        }
        for (table, words) in self.tlb.iter_mut().zip(self.tlb_filled.iter_mut()) {
            for (w, word) in words.iter_mut().enumerate() {
                let mut bits = *word;
                while bits != 0 {
                    let i = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if let Some(e) = table.get_mut(i) {
                        *e = TlbEntry::EMPTY;
                    }
                }
                *word = 0;
            }
        }
    }

    /// Empty the entries for one guest virtual page in every MMU mode.
    pub fn tlb_flush_page(&mut self, vaddr: u64) {
        self.tlb_generation = self.tlb_generation.wrapping_add(1);
        let idx = tlb_index(vaddr);
        let page = vaddr & PAGE_MASK;
        match self.tlb_flushed.get_mut(self.tlb_flushed_len) {
            Some(slot) => {
                *slot = page;
                self.tlb_flushed_len += 1;
            }
            None => self.tlb_flushed_len = TLB_FLUSHED_ALL,
        }
        for t in self.tlb.iter_mut() {
            let e = &mut t[idx];
            let tags = [e.addr_read, e.addr_write, e.addr_code];
            if tags.iter().any(|&tag| tag & PAGE_MASK == page) {
                *e = TlbEntry::EMPTY;
            }
        }
    }

    /// The TLB fast path of a load: the value if the entry hits, else `None`. Frontends' slow
    /// paths also use it to finish an access once they have filled the entry.
    #[inline]
    pub fn try_load_fast(&self, vaddr: u64, mem: MemOp, mmu_idx: u32) -> Option<u64> {
        let entry = &self.tlb[mmu_idx as usize % NB_MMU_MODES][tlb_index(vaddr)];
        let tag = if mem.store_intent {
            entry.addr_write
        } else {
            entry.addr_read
        };
        if !tlb_hit(tag, vaddr, mem) {
            return None;
        }
        let host = vaddr.wrapping_add(entry.addend) as usize as *const u8;
        // SAFETY: a hit means the entry was filled by the frontend's page walker for a guest
        // page lying wholly inside one live guest-RAM mapping (see the module docs), and the
        // hit test guarantees all `mem.size()` bytes lie inside that page.
        Some(unsafe { read_host(host, mem) })
    }

    /// The TLB fast path of a store: performs it and returns true if the entry hits.
    #[inline]
    pub fn try_store_fast(&mut self, vaddr: u64, val: u64, mem: MemOp, mmu_idx: u32) -> bool {
        let entry = &self.tlb[mmu_idx as usize % NB_MMU_MODES][tlb_index(vaddr)];
        if !tlb_hit(entry.addr_write, vaddr, mem) {
            return false;
        }
        let host = vaddr.wrapping_add(entry.addend) as usize as *mut u8;
        // SAFETY: as in `try_load_fast`; write tags are only valid for writable RAM pages that
        // hold no translated code (TLB_NOTDIRTY otherwise).
        unsafe { write_host(host, val, mem) };
        true
    }

    /// The host address of `len` bytes at `vaddr` when `mmu_idx`'s entry maps the page with
    /// no flag (the write tag if `store`, else the read tag) and the bytes stay in the page.
    /// Unlike [`tlb_hit`] it ignores alignment: the slow paths use it to finish, through the
    /// entry they just filled, the accesses the fast path refuses — misaligned ones inside a
    /// page and each half of a page-crossing one.
    #[inline]
    fn host_in_page(&self, vaddr: u64, len: usize, store: bool, mmu_idx: u32) -> Option<u64> {
        let entry = &self.tlb[mmu_idx as usize % NB_MMU_MODES][tlb_index(vaddr)];
        let tag = if store {
            entry.addr_write
        } else {
            entry.addr_read
        };
        // A flagged or empty tag has a bit of the page offset set, so it never equals a page.
        let in_page = (vaddr & !PAGE_MASK).checked_add(len as u64)? <= PAGE_SIZE;
        (tag == vaddr & PAGE_MASK && in_page).then(|| vaddr.wrapping_add(entry.addend))
    }

    /// Read `buf.len()` bytes at `vaddr` (inside one page) through the TLB entry, whatever
    /// their alignment; `store_intent` probes the write tag (AMOs). False if the entry does not
    /// map the page for that access, or maps it with a flag (MMIO, watched, not dirty).
    #[inline]
    pub fn try_read_in_page(
        &self,
        vaddr: u64,
        buf: &mut [u8],
        store_intent: bool,
        mmu_idx: u32,
    ) -> bool {
        let Some(host) = self.host_in_page(vaddr, buf.len(), store_intent, mmu_idx) else {
            return false;
        };
        // SAFETY: an unflagged tag equal to the page was filled by the frontend's page walker
        // for a guest page wholly inside one live guest-RAM mapping (module docs), and
        // `host_in_page` checked the bytes stay inside that page; `buf` is a distinct
        // host buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(host as usize as *const u8, buf.as_mut_ptr(), buf.len())
        };
        true
    }

    /// Write `data` at `vaddr` (inside one page) through the TLB entry, whatever its alignment.
    /// False, writing nothing, unless the write tag maps the page with no flag.
    #[inline]
    pub fn try_write_in_page(&mut self, vaddr: u64, data: &[u8], mmu_idx: u32) -> bool {
        let Some(host) = self.host_in_page(vaddr, data.len(), true, mmu_idx) else {
            return false;
        };
        // SAFETY: as in `try_read_in_page`; an unflagged write tag is only set for a writable
        // RAM page that holds no translated code (TLB_NOTDIRTY otherwise).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), host as usize as *mut u8, data.len())
        };
        true
    }

    /// Perform a load through the TLB fast path if it hits, else the slow path.
    /// Used by the interpreter and by helpers; generated code inlines the same test.
    #[inline]
    pub fn load(&mut self, vaddr: u64, mem: MemOp, mmu_idx: u8) -> u64 {
        match self.try_load_fast(vaddr, mem, u32::from(mmu_idx)) {
            Some(v) => v,
            None => (self.slow.load)(self, vaddr, mem.to_bits(), u32::from(mmu_idx)),
        }
    }

    /// Perform a store through the TLB fast path if it hits, else the slow path.
    #[inline]
    pub fn store(&mut self, vaddr: u64, val: u64, mem: MemOp, mmu_idx: u8) {
        if !self.try_store_fast(vaddr, val, mem, u32::from(mmu_idx)) {
            (self.slow.store)(self, vaddr, val, mem.to_bits(), u32::from(mmu_idx))
        }
    }
}

/// Index of the TLB entry for a virtual address.
#[inline]
pub fn tlb_index(vaddr: u64) -> usize {
    ((vaddr >> PAGE_BITS) as usize) & (TLB_ENTRIES - 1)
}

/// The fast-path hit test (module docs): page tag equal and every byte inside the page; an
/// access that must be aligned also misses when it is not.
#[inline]
pub fn tlb_hit(tag: u64, vaddr: u64, mem: MemOp) -> bool {
    tlb_compare_addr(vaddr, mem) == tag
}

/// What the hit test compares with the tag: the page of the last byte of the access (for an
/// aligned-only access, the address with its low `size - 1` bits kept). Generated code
/// computes the same value.
#[inline]
pub fn tlb_compare_addr(vaddr: u64, mem: MemOp) -> u64 {
    let size_mask = u64::from(mem.size()) - 1;
    if mem.aligned {
        vaddr & (PAGE_MASK | size_mask)
    } else {
        vaddr.wrapping_add(size_mask) & PAGE_MASK
    }
}

/// Read `mem.size()` bytes (little-endian) at `host`, extended as `mem` says.
///
/// # Safety
/// `host..host + mem.size()` must be readable host memory.
#[inline]
pub unsafe fn read_host(host: *const u8, mem: MemOp) -> u64 {
    // SAFETY: the caller guarantees the bytes are readable; unaligned reads are allowed.
    unsafe {
        match (mem.size_log2, mem.signed) {
            (0, false) => u64::from(host.read()),
            (0, true) => host.read() as i8 as i64 as u64,
            (1, false) => u64::from(u16::from_le((host as *const u16).read_unaligned())),
            (1, true) => u16::from_le((host as *const u16).read_unaligned()) as i16 as i64 as u64,
            (2, false) => u64::from(u32::from_le((host as *const u32).read_unaligned())),
            (2, true) => u32::from_le((host as *const u32).read_unaligned()) as i32 as i64 as u64,
            _ => u64::from_le((host as *const u64).read_unaligned()),
        }
    }
}

/// Write the low `mem.size()` bytes of `val` (little-endian) at `host`.
///
/// # Safety
/// `host..host + mem.size()` must be writable host memory.
#[inline]
pub unsafe fn write_host(host: *mut u8, val: u64, mem: MemOp) {
    // SAFETY: the caller guarantees the bytes are writable; unaligned writes are allowed.
    unsafe {
        match mem.size_log2 {
            0 => host.write(val as u8),
            1 => (host as *mut u16).write_unaligned((val as u16).to_le()),
            2 => (host as *mut u32).write_unaligned((val as u32).to_le()),
            _ => (host as *mut u64).write_unaligned(val.to_le()),
        }
    }
}

pub const OFFSET_PC: u32 = std::mem::offset_of!(CpuCommon, pc) as u32;
pub const OFFSET_INSN_COUNT: u32 = std::mem::offset_of!(CpuCommon, insn_count) as u32;
pub const OFFSET_INSN_LIMIT: u32 = std::mem::offset_of!(CpuCommon, insn_limit) as u32;
pub const OFFSET_EXCEPTION_PENDING: u32 = std::mem::offset_of!(CpuCommon, exception_pending) as u32;
pub const OFFSET_SLOW_LOAD: u32 = std::mem::offset_of!(CpuCommon, slow) as u32;
pub const OFFSET_SLOW_STORE: u32 = OFFSET_SLOW_LOAD + 8;
/// Offset of the pointer to the TLB tables (`Box<TlbTables>` is one thin pointer).
pub const OFFSET_TLB_PTR: u32 = std::mem::offset_of!(CpuCommon, tlb) as u32;
pub const OFFSET_UNWIND_SP: u32 = std::mem::offset_of!(CpuCommon, unwind_sp) as u32;
const _: () = assert!(std::mem::size_of::<Box<TlbTables>>() == 8);
pub const TLB_ENTRY_SIZE: u32 = std::mem::size_of::<TlbEntry>() as u32;
pub const OFFSET_TLB_ADDR_READ: u32 = std::mem::offset_of!(TlbEntry, addr_read) as u32;
pub const OFFSET_TLB_ADDR_WRITE: u32 = std::mem::offset_of!(TlbEntry, addr_write) as u32;
pub const OFFSET_TLB_ADDR_CODE: u32 = std::mem::offset_of!(TlbEntry, addr_code) as u32;
pub const OFFSET_TLB_ADDEND: u32 = std::mem::offset_of!(TlbEntry, addend) as u32;

/// Byte offset of `tlb[mmu_idx][0]` from the start of the TLB tables.
pub const fn tlb_table_offset(mmu_idx: u32) -> u32 {
    mmu_idx * (TLB_ENTRIES as u32) * TLB_ENTRY_SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_path_fields_are_adjacent_function_pointers() {
        assert_eq!(std::mem::size_of::<MemSlowPath>(), 16);
        assert_eq!(TLB_ENTRY_SIZE, 32);
    }

    #[test]
    fn misaligned_and_flagged_never_hit() {
        let page = 0x8000_1000u64;
        let w = MemOp::new(2, false, true);
        assert!(tlb_hit(page, page + 4, w));
        assert!(
            !tlb_hit(page, page + 2, w),
            "aligned-only: a misaligned access misses"
        );
        let any = MemOp::new(2, false, false);
        assert!(
            tlb_hit(page, page + 2, any),
            "misaligned inside the page hits"
        );
        assert!(tlb_hit(page, page + 0xffc, any));
        assert!(
            !tlb_hit(page, page + 0xffd, any),
            "the last byte is on the next page"
        );
        assert!(
            !tlb_hit(PAGE_MASK, u64::MAX - 1, any),
            "wrapping past the top of the address space crosses a page"
        );
        assert!(!tlb_hit(page | TLB_MMIO, page + 4, w));
        assert!(!tlb_hit(TLB_INVALID, 0, MemOp::new(0, false, false)));
        // An access whose low bits equal a flag pattern never hits a flagged entry.
        for size_log2 in 0..4u8 {
            for aligned in [false, true] {
                let m = MemOp::new(size_log2, false, aligned);
                for flag in [TLB_INVALID, TLB_MMIO, TLB_NOTDIRTY, TLB_MMIO | TLB_NOTDIRTY] {
                    for off in 0..PAGE_SIZE {
                        assert!(!tlb_hit(page | flag, page + off, m), "{flag:#x} {off:#x}");
                    }
                }
            }
        }
        assert!(
            !tlb_hit(page | TLB_MMIO, page + 2, w),
            "the fuzzer's case: offset 2, size 4"
        );
    }

    #[test]
    fn tlb_flushes_are_logged_per_page_until_a_whole_flush_or_overflow() {
        let mut c = common();
        assert_eq!(c.take_tlb_flushes(), TlbFlushes::None);
        c.tlb_flush_page(0x1234);
        c.tlb_flush_page(0x5000);
        assert_eq!(c.take_tlb_flushes(), TlbFlushes::Pages(&[0x1000, 0x5000]));
        assert_eq!(c.take_tlb_flushes(), TlbFlushes::None, "taking forgets");
        for i in 0..=TLB_FLUSH_LOG as u64 {
            c.tlb_flush_page(i << PAGE_BITS);
        }
        assert_eq!(c.take_tlb_flushes(), TlbFlushes::All, "overflow");
        c.tlb_flush_page(0x1000);
        c.tlb_flush();
        c.tlb_flush_page(0x2000);
        assert_eq!(c.take_tlb_flushes(), TlbFlushes::All);
    }

    extern "C" fn dummy_load(_: *mut CpuCommon, _: u64, _: u32, _: u32) -> u64 {
        0
    }
    extern "C" fn dummy_store(_: *mut CpuCommon, _: u64, _: u64, _: u32, _: u32) {}

    fn common() -> Box<CpuCommon> {
        Box::new(CpuCommon::new(MemSlowPath {
            load: dummy_load,
            store: dummy_store,
        }))
    }

    fn entry(page: u64) -> TlbEntry {
        TlbEntry {
            addr_read: page,
            addr_write: page,
            addr_code: page,
            addend: 0x1000,
        }
    }

    #[test]
    fn tracked_flush_empties_what_was_filled_and_nothing_hits_after() {
        let mut c = common();
        c.tlb_fill_tracked = true;
        let page = 0x4000_3000u64;
        let idx = tlb_index(page);
        c.tlb_set(2, idx, entry(page));
        c.tlb_set(7, TLB_ENTRIES - 1, entry(page));
        assert!(tlb_hit(
            c.tlb[2][idx].addr_read,
            page + 8,
            MemOp::new(3, false, false)
        ));
        assert_eq!(c.tlb_filled_indices(2).collect::<Vec<_>>(), vec![idx]);
        c.tlb_flush();
        assert_eq!(c.tlb[2][idx], TlbEntry::EMPTY);
        assert_eq!(c.tlb[7][TLB_ENTRIES - 1], TlbEntry::EMPTY);
        assert!(!tlb_hit(
            c.tlb[2][idx].addr_read,
            page + 8,
            MemOp::new(3, false, false)
        ));
        assert_eq!(c.tlb_filled_indices(2).count(), 0);
        assert!(c.tlb_filled.iter().flatten().all(|&w| w == 0));
    }

    #[test]
    fn tracked_flush_of_a_full_table_empties_every_entry() {
        let mut c = common();
        c.tlb_fill_tracked = true;
        for mode in 0..NB_MMU_MODES {
            for i in 0..TLB_ENTRIES {
                c.tlb_set(mode, i, entry((i as u64) << PAGE_BITS));
            }
        }
        assert_eq!(c.tlb_filled_indices(0).count(), TLB_ENTRIES);
        c.tlb_flush();
        assert!(c.tlb.iter().flatten().all(|e| *e == TlbEntry::EMPTY));
    }

    #[test]
    fn in_page_accesses_ignore_alignment_but_not_flags_or_page_ends() {
        let mut c = common();
        let mut host = vec![0u8; PAGE_SIZE as usize];
        let page = 0x4000_3000u64;
        let idx = tlb_index(page);
        let addend = (host.as_mut_ptr() as u64).wrapping_sub(page);
        let set = |c: &mut CpuCommon, read: u64, write: u64| {
            c.tlb_set(
                1,
                idx,
                TlbEntry {
                    addr_read: read,
                    addr_write: write,
                    addr_code: TLB_INVALID,
                    addend,
                },
            )
        };
        set(&mut c, page, page);
        // Misaligned, inside the page: done through the entry.
        assert!(c.try_write_in_page(page + 3, &[1, 2, 3, 4], 1));
        assert!(c.try_write_in_page(page + PAGE_SIZE - 2, &[5, 6], 1));
        let mut buf = [0u8; 4];
        assert!(c.try_read_in_page(page + 3, &mut buf, false, 1));
        assert_eq!(buf, [1, 2, 3, 4]);
        assert!(c.try_read_in_page(page + 2, &mut buf, true, 1));
        assert_eq!(buf, [0, 1, 2, 3]);
        // Past the page end, another page or another MMU mode: refused.
        assert!(!c.try_write_in_page(page + PAGE_SIZE - 2, &[0; 4], 1));
        assert!(!c.try_read_in_page(page + PAGE_SIZE - 1, &mut buf, false, 1));
        assert!(!c.try_write_in_page(page + PAGE_SIZE, &[0], 1));
        assert!(!c.try_write_in_page(page, &[0], 2));
        // Any flag on the tag that the access uses: refused, nothing written.
        for flag in [TLB_INVALID, TLB_MMIO, TLB_NOTDIRTY] {
            set(&mut c, page, page | flag);
            assert!(!c.try_write_in_page(page + 3, &[9; 4], 1), "{flag:#x}");
            assert!(
                !c.try_read_in_page(page + 3, &mut buf, true, 1),
                "{flag:#x}"
            );
            assert!(c.try_read_in_page(page + 3, &mut buf, false, 1));
            assert_eq!(buf, [1, 2, 3, 4]);
            set(&mut c, page | flag, page);
            assert!(
                !c.try_read_in_page(page + 3, &mut buf, false, 1),
                "{flag:#x}"
            );
        }
        assert_eq!(host[PAGE_SIZE as usize - 2..], [5, 6]);
    }

    #[test]
    fn untracked_fills_fall_back_to_a_full_clear() {
        // A writer that bypasses `tlb_set` (fills not tracked) still gets every entry emptied.
        let mut c = common();
        let page = 0x1234_5000u64;
        c.tlb[0][tlb_index(page)] = entry(page);
        assert_eq!(c.tlb_filled_indices(0).count(), TLB_ENTRIES);
        c.tlb_flush();
        assert_eq!(c.tlb[0][tlb_index(page)], TlbEntry::EMPTY);
    }
}
