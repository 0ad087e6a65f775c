//! Virtual memory (Privileged ISA §4.3–§4.6: Sv39, Sv48, Sv57) and the softmmu slow path
//! (DESIGN.md §4), after QEMU 7.2 `target/riscv/cpu_helper.c` (`get_physical_address`,
//! `riscv_cpu_tlb_fill`).
//!
//! MMU indexes (`NB_MMU_MODES` = 8): the effective privilege for data accesses (mstatus.MPRV
//! selects MPP), with SUM and MXR folded in so changing them needs no TLB flush:
//!
//! | idx | mode            |
//! |-----|-----------------|
//! | 0   | U               |
//! | 1   | S               |
//! | 2   | S + SUM         |
//! | 3   | M (no paging)   |
//! | 4–6 | 0–2 with MXR    |
//!
//! Instruction fetch uses 0 (U), 1 (S) or 3 (M). Each TLB entry's guest physical page is kept
//! beside it in `RiscvCpu::tlb_phys`.

use emu_jit::env::{
    tlb_index, AccessKind, CpuCommon, TlbEntry, NB_MMU_MODES, PAGE_BITS, PAGE_MASK, PAGE_SIZE,
    TLB_ENTRIES, TLB_INVALID, TLB_MMIO, TLB_NOTDIRTY,
};
use emu_jit::helper::state_of;
use emu_jit::ir::MemOp;

use super::cpu::{Privilege, RiscvCpu};
use super::csr::*;
use super::pmp::{PMP_R, PMP_W, PMP_X};
use super::trap::Exception;

pub const MMU_IDX_U: u8 = 0;
pub const MMU_IDX_S: u8 = 1;
pub const MMU_IDX_S_SUM: u8 = 2;
pub const MMU_IDX_M: u8 = 3;
/// Added to the U/S indexes when mstatus.MXR is set.
pub const MMU_IDX_MXR: u8 = 4;

// Page-table entry bits (§4.3.1, Figure 4.18).
pub const PTE_V: u64 = 1 << 0;
pub const PTE_R: u64 = 1 << 1;
pub const PTE_W: u64 = 1 << 2;
pub const PTE_X: u64 = 1 << 3;
pub const PTE_U: u64 = 1 << 4;
pub const PTE_G: u64 = 1 << 5;
pub const PTE_A: u64 = 1 << 6;
pub const PTE_D: u64 = 1 << 7;
const PTE_PPN_SHIFT: u32 = 10;
/// PTE bits 53:10; bits 63:54 are reserved without Svpbmt/Svnapot (QEMU 7.2 faults on them).
const PTE_PPN_MASK: u64 = ((1 << 44) - 1) << PTE_PPN_SHIFT;

/// Walk retries after a lost A/D compare-and-swap race before giving up with a page fault.
const MAX_WALK_RESTARTS: u32 = 16;

/// Entries of the [`VictimTlb`] (a power of two).
pub const VICTIM_TLB_ENTRIES: usize = 4096;

/// What identifies a victim TLB slot's entry, kept apart from the entry itself so that a
/// probe that misses reads 16 bytes of a 64 KiB array (cache-resident) instead of a cache line
/// of a 256 KiB one: with them together, the probe's cache miss cost as much as it saved in a
/// process-spawning run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VictimTag {
    /// Virtual page | MMU index; `u64::MAX` when empty.
    key: u64,
    /// The flush epoch the entry belongs to.
    epoch: u32,
    /// The non-global epoch of a non-global entry; 0 for a global one (PTE G bit).
    ng_epoch: u32,
}

impl VictimTag {
    const EMPTY: VictimTag = VictimTag {
        key: u64::MAX,
        epoch: 0,
        ng_epoch: 0,
    };
}

/// A second-level TLB behind the direct-mapped one generated code probes (QEMU keeps a small
/// victim TLB per MMU index for the same reason, `victim_tlb_hit`): an entry the TLB evicts
/// goes here, in a table indexed by another hash of the virtual page, and a miss looks here
/// before walking the page table. Pages whose numbers agree in their low 13 bits (the TLB
/// index) then stop evicting each other: in a 7-Zip run, 23 % of the walks re-walked one of
/// the last 8 pages the TLB had evicted, 67 % one of the last 1024.
///
/// A full flush empties it in O(1) by moving to a new epoch; a page flush clears the page's
/// slot in every MMU index. It holds only what the TLB held, so every rule that empties TLB
/// entries empties these too.
///
/// It also carries global translations (PTE G, §4.3.1) across flushes that spare them: a
/// satp write that changes only the ASID or root, and `sfence.vma x0, asid` (§4.2.1). The TLB
/// has no ASID tags, so those flush it whole, but its global entries move here first and come
/// back on their next miss without a walk. In a procs:200 run (200 short processes) 91 % of
/// the walks were of global (kernel) pages, after the ~1,800 such flushes.
pub struct VictimTlb {
    tags: Box<[VictimTag]>,
    /// Per slot: the entry as the TLB held it (its write tag without `TLB_NOTDIRTY`, which is
    /// decided again when it comes back) and its guest physical page.
    entries: Box<[(TlbEntry, u64)]>,
    /// Bumped by full flushes; never 0.
    epoch: u32,
    /// Bumped by flushes of non-global translations; never 0.
    ng_epoch: u32,
    /// One bit per TLB entry (per MMU index): whether it was filled from a global mapping.
    global: Box<[[u64; TLB_ENTRIES / 64]]>,
}

impl Default for VictimTlb {
    fn default() -> Self {
        VictimTlb {
            tags: vec![VictimTag::EMPTY; VICTIM_TLB_ENTRIES].into_boxed_slice(),
            entries: vec![(TlbEntry::EMPTY, 0); VICTIM_TLB_ENTRIES].into_boxed_slice(),
            epoch: 1,
            ng_epoch: 1,
            global: vec![[0; TLB_ENTRIES / 64]; NB_MMU_MODES].into_boxed_slice(),
        }
    }
}

impl VictimTlb {
    fn key(vpage: u64, mmu_idx: usize) -> u64 {
        (vpage & PAGE_MASK) | (mmu_idx as u64 % NB_MMU_MODES as u64)
    }

    /// The slot of a virtual page: its number folded so that pages sharing a TLB index (the low
    /// bits) are spread by their high bits.
    fn slot(vpage: u64, mmu_idx: usize) -> usize {
        let vpn = vpage >> PAGE_BITS;
        let h = vpn ^ (vpn >> 11) ^ (vpn >> 23) ^ ((mmu_idx as u64) << 7);
        (h as usize) & (VICTIM_TLB_ENTRIES - 1)
    }

    /// Empty everything.
    pub fn flush(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.ng_epoch = 1;
        if self.epoch == 0 {
            // Wrapped: no tag may keep an epoch that comes round again.
            self.tags.fill(VictimTag::EMPTY);
            self.epoch = 1;
        }
    }

    /// Drop every non-global entry.
    fn flush_non_global(&mut self) {
        self.ng_epoch = self.ng_epoch.wrapping_add(1);
        if self.ng_epoch == 0 {
            self.flush();
        }
    }

    /// Record whether TLB entry `idx` of `mmu_idx` now holds a global translation.
    fn set_global(&mut self, mmu_idx: usize, idx: usize, global: bool) {
        let (w, bit) = (idx % TLB_ENTRIES / 64, 1u64 << (idx % 64));
        if let Some(word) = self.global.get_mut(mmu_idx).and_then(|g| g.get_mut(w)) {
            if global {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    fn is_global(&self, mmu_idx: usize, idx: usize) -> bool {
        let (w, bit) = (idx % TLB_ENTRIES / 64, 1u64 << (idx % 64));
        self.global
            .get(mmu_idx)
            .and_then(|g| g.get(w))
            .is_some_and(|word| word & bit != 0)
    }

    /// Drop the entries of one virtual page, in every MMU index.
    pub fn flush_page(&mut self, vaddr: u64) {
        for idx in 0..NB_MMU_MODES {
            let key = Self::key(vaddr, idx);
            if let Some(t) = self.tags.get_mut(Self::slot(vaddr, idx)) {
                if t.key == key {
                    *t = VictimTag::EMPTY;
                }
            }
        }
    }

    /// Keep a TLB entry of `mmu_idx` that is being replaced, if it maps a page other than
    /// `except_vpage`; `global` if it came from a global mapping.
    fn insert(
        &mut self,
        mmu_idx: usize,
        entry: TlbEntry,
        phys_page: u64,
        except_vpage: u64,
        global: bool,
    ) {
        let Some(tag) = [entry.addr_read, entry.addr_write, entry.addr_code]
            .into_iter()
            .find(|&t| t & TLB_INVALID == 0)
        else {
            return;
        };
        let vpage = tag & PAGE_MASK;
        if vpage == except_vpage {
            return;
        }
        let mut entry = entry;
        if entry.addr_write & TLB_INVALID == 0 {
            entry.addr_write &= !TLB_NOTDIRTY;
        }
        let slot = Self::slot(vpage, mmu_idx);
        if let (Some(t), Some(e)) = (self.tags.get_mut(slot), self.entries.get_mut(slot)) {
            *t = VictimTag {
                key: Self::key(vpage, mmu_idx),
                epoch: self.epoch,
                ng_epoch: if global { 0 } else { self.ng_epoch },
            };
            *e = (entry, phys_page);
        }
    }

    /// The entry kept for `vaddr`'s page in `mmu_idx`, with its physical page and whether it
    /// is global.
    fn get(&self, vaddr: u64, mmu_idx: usize) -> Option<(TlbEntry, u64, bool)> {
        let slot = Self::slot(vaddr & PAGE_MASK, mmu_idx);
        let t = self.tags.get(slot)?;
        let live = t.epoch == self.epoch && (t.ng_epoch == 0 || t.ng_epoch == self.ng_epoch);
        if t.key != Self::key(vaddr, mmu_idx) || !live {
            return None;
        }
        let &(entry, phys_page) = self.entries.get(slot)?;
        Some((entry, phys_page, t.ng_epoch == 0))
    }
}

/// The translation context of an MMU index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmuMode {
    pub prv: Privilege,
    pub sum: bool,
    pub mxr: bool,
}

impl MmuMode {
    pub fn from_idx(idx: u32) -> MmuMode {
        let mxr = idx & u32::from(MMU_IDX_MXR) != 0;
        let (prv, sum) = match idx & 3 {
            0 => (Privilege::User, false),
            1 => (Privilege::Supervisor, false),
            2 => (Privilege::Supervisor, true),
            _ => (Privilege::Machine, false),
        };
        MmuMode { prv, sum, mxr }
    }

    pub fn idx(self) -> u8 {
        let base = match (self.prv, self.sum) {
            (Privilege::Machine, _) => return MMU_IDX_M,
            (Privilege::User, _) => MMU_IDX_U,
            (Privilege::Supervisor, false) => MMU_IDX_S,
            (Privilege::Supervisor, true) => MMU_IDX_S_SUM,
        };
        if self.mxr {
            base + MMU_IDX_MXR
        } else {
            base
        }
    }
}

/// A successful translation: the physical address and what the page allows in this mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Translation {
    phys: u64,
    read: bool,
    write: bool,
    exec: bool,
    /// log2 of the page size the translation came from (12 for 4 KiB, more for superpages).
    page_shift: u32,
    /// A global mapping (G set in the leaf or a PTE above it, §4.3.1).
    global: bool,
}

fn page_fault(kind: AccessKind, vaddr: u64) -> Exception {
    match kind {
        AccessKind::Load => Exception::LoadPageFault(vaddr),
        AccessKind::Store => Exception::StoreAmoPageFault(vaddr),
        AccessKind::Fetch => Exception::InstructionPageFault(vaddr),
    }
}

/// The pmpcfg permission bit an access of `kind` needs (§3.7.1).
fn pmp_bit(kind: AccessKind) -> u8 {
    match kind {
        AccessKind::Load => PMP_R,
        AccessKind::Store => PMP_W,
        AccessKind::Fetch => PMP_X,
    }
}

fn access_fault(kind: AccessKind, vaddr: u64) -> Exception {
    match kind {
        AccessKind::Load => Exception::LoadAccessFault(vaddr),
        AccessKind::Store => Exception::StoreAmoAccessFault(vaddr),
        AccessKind::Fetch => Exception::InstructionAccessFault(vaddr),
    }
}

impl RiscvCpu {
    /// MMU index of ordinary loads and stores (§3.1.6.3: MPRV makes M-mode accesses use MPP).
    pub fn data_mmu_idx(&self) -> u8 {
        let ms = self.csr.mstatus;
        let mut prv = self.priv_level();
        if prv == Privilege::Machine && ms & MSTATUS_MPRV != 0 {
            prv = Privilege::from_bits(ms >> MSTATUS_MPP_SHIFT);
        }
        MmuMode {
            prv,
            sum: ms & MSTATUS_SUM != 0,
            mxr: ms & MSTATUS_MXR != 0,
        }
        .idx()
    }

    /// MMU index of instruction fetch (the current privilege; SUM and MXR don't apply).
    pub fn fetch_mmu_idx(&self) -> u8 {
        MmuMode {
            prv: self.priv_level(),
            sum: false,
            mxr: false,
        }
        .idx()
    }

    /// A PTE outside plain RAM (a device window, or nothing): read through the bus as any
    /// other S-mode load would be.
    fn read_pte_from_bus(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.bus.read(addr, &mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// Virtual → physical for one access (§4.3.2 for Sv39; Sv48/Sv57 add levels). Checks
    /// page permissions and sets A/D with an atomic compare-and-swap, restarting the walk if
    /// the PTE changed meanwhile (QEMU 7.2).
    fn translate(
        &mut self,
        vaddr: u64,
        kind: AccessKind,
        mode: MmuMode,
    ) -> Result<Translation, Exception> {
        self.walk(vaddr, kind, mode, true)
    }

    /// A debugger's translation: the same walk, but A/D bits are left alone (QEMU's
    /// `get_phys_page_debug`). Returns the physical address.
    pub(crate) fn translate_debug(
        &mut self,
        vaddr: u64,
        kind: AccessKind,
        mode: MmuMode,
    ) -> Result<u64, Exception> {
        self.walk(vaddr, kind, mode, false).map(|t| t.phys)
    }

    /// The page walk; `set_ad`: update the A and D bits as the access requires.
    fn walk(
        &mut self,
        vaddr: u64,
        kind: AccessKind,
        mode: MmuMode,
        set_ad: bool,
    ) -> Result<Translation, Exception> {
        let satp = self.csr.satp;
        let levels: u32 = match satp >> SATP_MODE_SHIFT {
            SATP_MODE_SV39 => 3,
            SATP_MODE_SV48 => 4,
            SATP_MODE_SV57 => 5,
            _ => 0,
        };
        if mode.prv == Privilege::Machine || levels == 0 {
            return Ok(Translation {
                phys: vaddr,
                read: true,
                write: true,
                exec: true,
                page_shift: PAGE_BITS,
                global: false,
            });
        }
        let fault = page_fault(kind, vaddr);
        // The address must be canonical: bits 63..VA_BITS all equal bit VA_BITS - 1.
        let va_bits = 12 + 9 * levels;
        let top = (vaddr as i64) >> (va_bits - 1);
        if top != 0 && top != -1 {
            return Err(fault);
        }
        'restart: for _ in 0..MAX_WALK_RESTARTS {
            let mut table = (satp & SATP_PPN) << 12;
            let mut global = false;
            for level in (0..levels).rev() {
                let shift = 12 + 9 * level;
                let vpn = (vaddr >> shift) & 0x1ff;
                let pte_addr = table + vpn * 8;
                // Page-table reads are S-mode loads for PMP (§3.7.1).
                if !self
                    .csr
                    .pmp
                    .check(pte_addr, 8, AccessKind::Load, Privilege::Supervisor)
                {
                    return Err(access_fault(kind, vaddr));
                }
                // PTEs in plain RAM are read (and their A/D bits set) through the region itself:
                // no bus copy, and one region lookup serves both.
                let ram = self.bus.plain_ram_at(pte_addr, 8);
                let pte = match ram.and_then(|r| r.load_u64(pte_addr)) {
                    Some(pte) => Some(pte),
                    None => self.read_pte_from_bus(pte_addr),
                };
                let Some(pte) = pte else {
                    if set_ad {
                        self.report_guest_error(|| {
                            format!(
                                "page-table walk reads unmapped physical address {pte_addr:#x} \
                                 (vaddr {vaddr:#x})"
                            )
                        });
                    }
                    return Err(access_fault(kind, vaddr));
                };
                if pte & PTE_V == 0 || (pte & PTE_R == 0 && pte & PTE_W != 0) {
                    return Err(fault);
                }
                if pte & !(PTE_PPN_MASK | 0x3ff) != 0 {
                    return Err(fault);
                }
                let ppn = (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT;
                global |= pte & PTE_G != 0;
                if pte & (PTE_R | PTE_X) == 0 {
                    // Pointer to the next level.
                    table = ppn << 12;
                    continue;
                }
                // Leaf (§4.3.2 step 5).
                let user = pte & PTE_U != 0;
                let (data_ok, exec_ok) = match mode.prv {
                    Privilege::User => (user, user),
                    _ => (!user || mode.sum, !user),
                };
                let read = data_ok && (pte & PTE_R != 0 || (mode.mxr && pte & PTE_X != 0));
                let write = data_ok && pte & PTE_W != 0;
                let exec = exec_ok && pte & PTE_X != 0;
                let allowed = match kind {
                    AccessKind::Load => read,
                    AccessKind::Store => write,
                    AccessKind::Fetch => exec,
                };
                if !allowed {
                    return Err(fault);
                }
                // A superpage's PPN must be aligned to its size (step 6).
                let low_ppn_mask = (1u64 << (9 * level)) - 1;
                if ppn & low_ppn_mask != 0 {
                    return Err(fault);
                }
                let store = kind == AccessKind::Store;
                let mut updated = pte | PTE_A;
                if store {
                    updated |= PTE_D;
                }
                if updated != pte && set_ad {
                    let Some(ram) = ram.or_else(|| self.bus.ram_at(pte_addr, 8).map(|r| &**r))
                    else {
                        // A/D bits in ROM or MMIO cannot be set (QEMU: page fault).
                        return Err(fault);
                    };
                    match ram.compare_exchange_u64(pte_addr, pte, updated) {
                        Some(old) if old == pte => {
                            // A page table sharing a page with translated code.
                            if self.code_map.note_write(pte_addr) {
                                self.common.insn_limit = 0;
                            }
                        }
                        Some(_) => continue 'restart,
                        None => return Err(access_fault(kind, vaddr)),
                    }
                }
                let offset_mask = (1u64 << shift) - 1;
                let phys = ((ppn << 12) & !offset_mask) | (vaddr & offset_mask);
                return Ok(Translation {
                    phys,
                    read,
                    // Only a dirty page may be written without the slow path.
                    write: write && updated & PTE_D != 0,
                    exec,
                    page_shift: shift,
                    global,
                });
            }
            // Ran out of levels without a leaf.
            return Err(fault);
        }
        Err(fault)
    }

    /// Translate and PMP-check `size` bytes (within one page) at `vaddr` for `kind` in MMU
    /// index `idx`, filling the TLB entry when the page allows it. Returns the physical
    /// address.
    fn translate_access(
        &mut self,
        vaddr: u64,
        size: u64,
        kind: AccessKind,
        idx: u32,
    ) -> Result<u64, Exception> {
        let slot = (idx as usize) % emu_jit::env::NB_MMU_MODES;
        let ti = tlb_index(vaddr);
        // A flagged entry (MMIO, NOTDIRTY) still caches the translation.
        let e = self.common.tlb[slot][ti];
        let tag = match kind {
            AccessKind::Load => e.addr_read,
            AccessKind::Store => e.addr_write,
            AccessKind::Fetch => e.addr_code,
        };
        // NOTDIRTY is re-evaluated by a refill: the page may have lost its code since.
        if tag & (TLB_INVALID | TLB_NOTDIRTY) == 0 && tag & PAGE_MASK == vaddr & PAGE_MASK {
            return Ok(self.tlb_phys[slot][ti] | (vaddr & !PAGE_MASK));
        }
        if let Some(phys) = self.victim_tlb_hit(slot, ti, vaddr, kind) {
            return Ok(phys);
        }
        let mode = MmuMode::from_idx(idx);
        let t = self.translate(vaddr, kind, mode)?;
        let pmp = &self.csr.pmp;
        let Some(perms) = pmp.page_perms(t.phys & PAGE_MASK, PAGE_SIZE, mode.prv) else {
            // PMP splits the page: check this access alone and leave the page uncached.
            if !pmp.check(t.phys, size, kind, mode.prv) {
                return Err(access_fault(kind, vaddr));
            }
            return Ok(t.phys);
        };
        // A uniform page: the access (inside it) gets the page's decision.
        if perms & pmp_bit(kind) == 0 {
            return Err(access_fault(kind, vaddr));
        }
        self.tlb_fill(slot, vaddr, t, perms);
        Ok(t.phys)
    }

    /// On a TLB miss: bring `vaddr`'s entry back from the victim TLB if it is there and
    /// allows `kind`, swapping out the entry it replaces. Returns the physical address.
    fn victim_tlb_hit(
        &mut self,
        slot: usize,
        ti: usize,
        vaddr: u64,
        kind: AccessKind,
    ) -> Option<u64> {
        // Watched pages must get the flags `tlb_fill` gives them: walk.
        if !self.watchpoints.is_empty() {
            return None;
        }
        let (mut entry, phys_page, global) = self.victim_tlb.get(vaddr, slot)?;
        let tag = match kind {
            AccessKind::Load => entry.addr_read,
            AccessKind::Store => entry.addr_write,
            AccessKind::Fetch => entry.addr_code,
        };
        if tag & TLB_INVALID != 0 {
            return None;
        }
        // As `tlb_fill`: a page that holds code now gets its stores through the slow path.
        if entry.addr_write & TLB_INVALID == 0 && self.code_map.page_has_code(phys_page) {
            entry.addr_write |= TLB_NOTDIRTY;
        }
        self.evict_to_victim(slot, ti, vaddr & PAGE_MASK);
        self.common.tlb_set(slot, ti, entry);
        self.victim_tlb.set_global(slot, ti, global);
        *self.tlb_phys.get_mut(slot)?.get_mut(ti)? = phys_page;
        Some(phys_page | (vaddr & !PAGE_MASK))
    }

    /// Keep the TLB entry about to be replaced by one for `new_vpage` in the victim TLB (unless
    /// it maps that page too: a refill replaces it then).
    fn evict_to_victim(&mut self, slot: usize, ti: usize, new_vpage: u64) {
        let old = self.common.tlb.get(slot).and_then(|t| t.get(ti)).copied();
        let phys = self.tlb_phys.get(slot).and_then(|t| t.get(ti)).copied();
        if let (Some(old), Some(phys)) = (old, phys) {
            let global = self.victim_tlb.is_global(slot, ti);
            self.victim_tlb.insert(slot, old, phys, new_vpage, global);
        }
    }

    /// Fill the TLB entry for `vaddr`'s page (env.rs rules): RAM pages with no device get a
    /// host addend; other pages are cached with `TLB_MMIO`. `pmp_perms` is what PMP allows in
    /// the whole page ([`super::pmp::Pmp::page_perms`]); pages PMP splits are not cached.
    fn tlb_fill(&mut self, slot: usize, vaddr: u64, t: Translation, pmp_perms: u8) {
        let ppage = t.phys & PAGE_MASK;
        let vpage = vaddr & PAGE_MASK;
        let host = self.bus.ram_page_host_ptr(ppage, PAGE_SIZE);
        let flags = if host.is_some() { 0 } else { TLB_MMIO };
        let tag = |ok: bool, kind: AccessKind| {
            if ok && pmp_perms & pmp_bit(kind) != 0 {
                vpage | flags
            } else {
                TLB_INVALID
            }
        };
        let mut addr_read = tag(t.read, AccessKind::Load);
        let mut addr_write = tag(t.write, AccessKind::Store);
        if !self.watchpoints.is_empty() && self.page_is_watched(vaddr) {
            // Watched pages take the slow path, which checks the watchpoints (debug.rs).
            if addr_read != TLB_INVALID {
                addr_read |= TLB_MMIO;
            }
            if addr_write != TLB_INVALID {
                addr_write |= TLB_MMIO;
            }
        }
        let addr_code = tag(t.exec, AccessKind::Fetch);
        if addr_write != TLB_INVALID && self.code_map.page_has_code(ppage) {
            addr_write |= TLB_NOTDIRTY;
        }
        let addend = host.map_or(0, |h| (h as u64).wrapping_sub(vpage));
        if t.page_shift > PAGE_BITS {
            // Remember where superpages are cached: flushing one of their addresses must
            // flush every 4 KiB entry filled from them (QEMU's `tlb_add_large_page`).
            let size = 1u64 << t.page_shift;
            let (lo, hi) = (vaddr & !(size - 1), (vaddr | (size - 1)));
            self.large_pages = Some(match self.large_pages {
                Some((l, h)) => (l.min(lo), h.max(hi)),
                None => (lo, hi),
            });
        }
        let ti = tlb_index(vaddr);
        let entry = emu_jit::env::TlbEntry {
            addr_read,
            addr_write,
            addr_code,
            addend,
        };
        // Its flags may be a watchpoint's: not worth keeping then.
        if self.watchpoints.is_empty() {
            self.evict_to_victim(slot, ti, vpage);
        }
        // `tlb_set` records the index, so the next flush empties only what was filled.
        self.common.tlb_set(slot, ti, entry);
        self.victim_tlb.set_global(slot, ti, t.global);
        self.tlb_phys[slot][ti] = ppage;
    }

    /// Read `buf.len()` bytes (inside one page) at `vaddr`, which `translate_access` turned
    /// into `phys` (filling the TLB entry when the page allows it): through the entry when it
    /// maps RAM, whatever the alignment (QEMU's `load_helper` does the same), else from the bus
    /// (MMIO, watched and PMP-split pages).
    fn load_bytes(
        &mut self,
        vaddr: u64,
        phys: u64,
        buf: &mut [u8],
        kind: AccessKind,
        idx: u32,
    ) -> Result<(), Exception> {
        if self
            .common
            .try_read_in_page(vaddr, buf, kind == AccessKind::Store, idx)
        {
            return Ok(());
        }
        self.publish_time();
        let r = self.bus.read(phys, buf);
        if r.is_err() {
            self.report_guest_error(|| {
                format!("load from unmapped physical address {phys:#x} (vaddr {vaddr:#x})")
            });
        }
        r.map_err(|_| access_fault(kind, vaddr))
    }

    /// Write `data` (inside one page) at `vaddr`, translated to `phys` as for `load_bytes`:
    /// through the TLB entry when its write tag is clean RAM, else telling the code map
    /// (self-modifying code) and going to the bus.
    fn store_bytes(
        &mut self,
        vaddr: u64,
        phys: u64,
        data: &[u8],
        idx: u32,
    ) -> Result<(), Exception> {
        if self.common.try_write_in_page(vaddr, data, idx) {
            return Ok(());
        }
        if self.code_map.note_write(phys) {
            self.common.insn_limit = 0;
            // The page holds no code any more: its blocks go before the next lookup, and this
            // store and the later ones take the TLB (QEMU's `notdirty_write`).
            self.tlb_set_dirty(vaddr, phys);
            if self.common.try_write_in_page(vaddr, data, idx) {
                return Ok(());
            }
        }
        self.publish_time();
        if self.bus.write(phys, data).is_err() {
            self.report_guest_error(|| {
                format!("store to unmapped physical address {phys:#x} (vaddr {vaddr:#x})")
            });
            return Err(Exception::StoreAmoAccessFault(vaddr));
        }
        // A device store may raise or clear an interrupt line, or ask the machine to stop
        // (HTIF tohost, sifive_test): leave generated code so the run loop sees it at once,
        // at an exact instruction count, as QEMU does after I/O.
        if self
            .bus
            .ram_page_host_ptr(phys & PAGE_MASK, PAGE_SIZE)
            .is_none()
        {
            self.common.insn_limit = 0;
        }
        Ok(())
    }

    /// Clear `TLB_NOTDIRTY` from the write entries for `vaddr`'s page, in every MMU index,
    /// that map physical page `phys` (which no longer holds code), as QEMU's `tlb_set_dirty`
    /// does. Entries for other virtual aliases of the page keep the flag until their next
    /// store refills them (`translate_access` re-evaluates it), which costs one walk each.
    fn tlb_set_dirty(&mut self, vaddr: u64, phys: u64) {
        let ti = tlb_index(vaddr);
        let (vpage, ppage) = (vaddr & PAGE_MASK, phys & PAGE_MASK);
        for (table, phys_pages) in self.common.tlb.iter_mut().zip(self.tlb_phys.iter()) {
            let (Some(e), Some(&p)) = (table.get_mut(ti), phys_pages.get(ti)) else {
                continue;
            };
            let tag = e.addr_write;
            if p == ppage && tag & TLB_INVALID == 0 && tag & PAGE_MASK == vpage {
                e.addr_write = tag & !TLB_NOTDIRTY;
            }
        }
    }

    /// The slow-path load: alignment, page crossing, translation, MMIO.
    pub fn mem_load(&mut self, vaddr: u64, mem: MemOp, idx: u32) -> Result<u64, Exception> {
        let size = u64::from(mem.size());
        let kind = if mem.store_intent {
            AccessKind::Store
        } else {
            AccessKind::Load
        };
        if vaddr & (size - 1) != 0 && mem.aligned {
            return Err(if mem.store_intent {
                Exception::StoreAmoAddressMisaligned(vaddr)
            } else {
                Exception::LoadAddressMisaligned(vaddr)
            });
        }
        if !self.watchpoints.is_empty() && self.check_watchpoints(vaddr, size, mem.store_intent) {
            return Ok(0);
        }
        let mut buf = [0u8; 8];
        let bytes = buf.get_mut(..size as usize).unwrap_or_default();
        let first = (PAGE_SIZE - (vaddr & !PAGE_MASK)).min(size) as usize;
        let (a, b) = bytes.split_at_mut(first);
        if b.is_empty() {
            // Fill the TLB, then finish through the new entry (an aligned RAM access hits the
            // ordinary fast path).
            let phys = self.translate_access(vaddr, size, kind, idx)?;
            if let Some(v) = self.common.try_load_fast(vaddr, mem, idx) {
                return Ok(v);
            }
            self.load_bytes(vaddr, phys, a, kind, idx)?;
        } else {
            // Page-crossing: translate both halves before touching either (QEMU).
            let second = vaddr.wrapping_add(first as u64);
            let phys_a = self.translate_access(vaddr, a.len() as u64, kind, idx)?;
            let phys_b = self.translate_access(second, b.len() as u64, kind, idx)?;
            self.load_bytes(vaddr, phys_a, a, kind, idx)?;
            self.load_bytes(second, phys_b, b, kind, idx)?;
        }
        let raw = u64::from_le_bytes(buf);
        Ok(match (mem.size_log2, mem.signed) {
            (0, true) => raw as i8 as i64 as u64,
            (1, true) => raw as i16 as i64 as u64,
            (2, true) => raw as i32 as i64 as u64,
            _ => raw,
        })
    }

    /// The slow-path store: alignment, page crossing, translation, self-modifying code, MMIO.
    pub fn mem_store(
        &mut self,
        vaddr: u64,
        val: u64,
        mem: MemOp,
        idx: u32,
    ) -> Result<(), Exception> {
        let size = u64::from(mem.size());
        if vaddr & (size - 1) != 0 && mem.aligned {
            return Err(Exception::StoreAmoAddressMisaligned(vaddr));
        }
        if !self.watchpoints.is_empty() && self.check_watchpoints(vaddr, size, true) {
            return Ok(());
        }
        let buf = val.to_le_bytes();
        let bytes = buf.get(..size as usize).unwrap_or_default();
        let first = (PAGE_SIZE - (vaddr & !PAGE_MASK)).min(size) as usize;
        let (a, b) = bytes.split_at(first);
        if b.is_empty() {
            // As in `mem_load`: fill the entry, then write through it when it is clean RAM.
            let phys = self.translate_access(vaddr, size, AccessKind::Store, idx)?;
            self.store_bytes(vaddr, phys, a, idx)
        } else {
            // Both halves are translated (and may fault) before either is written.
            let second = vaddr.wrapping_add(first as u64);
            let phys_a = self.translate_access(vaddr, a.len() as u64, AccessKind::Store, idx)?;
            let phys_b = self.translate_access(second, b.len() as u64, AccessKind::Store, idx)?;
            self.store_bytes(vaddr, phys_a, a, idx)?;
            self.store_bytes(second, phys_b, b, idx)
        }
    }
}

impl RiscvCpu {
    /// Empty every TLB (after satp, PMP changes and global sfence.vma).
    pub fn tlb_flush_all(&mut self) {
        self.common.tlb_flush();
        self.victim_tlb.flush();
        self.large_pages = None;
    }

    /// Empty every TLB of its non-global translations (satp changing ASID or root, `sfence.vma
    /// x0, asid`). The TLB itself is emptied — it has no ASID tags, and the engine drops what
    /// it cached by virtual address — after its global entries have moved to the victim TLB,
    /// which keeps them.
    pub fn tlb_flush_non_global(&mut self) {
        for mode in 0..NB_MMU_MODES {
            let mut filled = self.common.tlb_filled_indices(mode).peekable();
            if filled.peek().is_none() {
                continue;
            }
            let globals: Vec<usize> = filled
                .filter(|&i| self.victim_tlb.is_global(mode, i))
                .collect();
            for i in globals {
                self.evict_to_victim(mode, i, u64::MAX);
            }
        }
        self.common.tlb_flush();
        for g in self.victim_tlb.global.iter_mut() {
            g.fill(0);
        }
        self.victim_tlb.flush_non_global();
        // `large_pages` stays: global superpage entries may come back from the victim TLB.
    }

    /// sfence.vma with an address (§4.2.1): empty the entries for its page in every MMU
    /// index, or everything when it lies in a cached superpage. Entries are not tagged with
    /// an ASID, so every ASID's entries for the page go.
    pub fn tlb_flush_vaddr(&mut self, vaddr: u64) {
        match self.large_pages {
            Some((lo, hi)) if (lo..=hi).contains(&vaddr) => self.tlb_flush_all(),
            _ => {
                self.common.tlb_flush_page(vaddr);
                self.victim_tlb.flush_page(vaddr);
            }
        }
    }
}

/// Translate `vaddr` for instruction fetch in the current privilege (PMP X checked). The
/// block key and the second half of a page-straddling instruction use it.
pub fn translate_fetch(cpu: &mut RiscvCpu, vaddr: u64) -> Result<u64, Exception> {
    let idx = u32::from(cpu.fetch_mmu_idx());
    cpu.translate_access(vaddr, 2, AccessKind::Fetch, idx)
}

/// `CpuCommon::slow.load` for RISC-V.
pub extern "C" fn slow_load(env: *mut CpuCommon, vaddr: u64, memop: u32, mmu_idx: u32) -> u64 {
    let cpu = state_of::<RiscvCpu>(env);
    match cpu.mem_load(vaddr, MemOp::from_bits(memop), mmu_idx) {
        Ok(v) => v,
        Err(e) => {
            cpu.raise(e);
            0
        }
    }
}

/// `CpuCommon::slow.store` for RISC-V.
pub extern "C" fn slow_store(env: *mut CpuCommon, vaddr: u64, val: u64, memop: u32, mmu_idx: u32) {
    let cpu = state_of::<RiscvCpu>(env);
    if let Err(e) = cpu.mem_store(vaddr, val, MemOp::from_bits(memop), mmu_idx) {
        cpu.raise(e);
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::{test_cpu, test_cpu_with, TEST_RAM_BASE};
    use super::*;
    use emu_devices::{Bus, BusDevice};
    use emu_jit::guest::Guest;
    use parking_lot::Mutex;
    use std::sync::Arc;

    const ROOT: u64 = TEST_RAM_BASE + 0x10_000;
    const LEAF_RWX: u64 = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;
    const LOAD: MemOp = MemOp::new(3, false, false);

    /// Builds page tables from a bump allocator in test RAM.
    struct Pt {
        levels: u32,
        next: u64,
    }

    impl Pt {
        fn new(cpu: &mut RiscvCpu, mode: u64, levels: u32) -> Pt {
            cpu.csr.satp = (mode << SATP_MODE_SHIFT) | (ROOT >> 12);
            cpu.privilege = Privilege::Supervisor as u64;
            Pt {
                levels,
                next: ROOT + 0x1000,
            }
        }

        /// Map `va` to `pa` with a leaf at `leaf_level` (0 = 4 KiB) and PTE bits `flags`.
        fn map(&mut self, cpu: &RiscvCpu, va: u64, pa: u64, flags: u64, leaf_level: u32) {
            let mut table = ROOT;
            for level in (leaf_level..self.levels).rev() {
                let slot = table + ((va >> (12 + 9 * level)) & 0x1ff) * 8;
                if level == leaf_level {
                    write_u64(cpu, slot, ((pa >> 12) << PTE_PPN_SHIFT) | flags);
                    return;
                }
                let pte = read_u64(cpu, slot);
                table = if pte & PTE_V != 0 {
                    ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << 12
                } else {
                    let t = self.next;
                    self.next += 0x1000;
                    write_u64(cpu, slot, ((t >> 12) << PTE_PPN_SHIFT) | PTE_V);
                    t
                };
            }
        }

        fn leaf_addr(&self, cpu: &RiscvCpu, va: u64) -> u64 {
            let mut table = ROOT;
            for level in (0..self.levels).rev() {
                let slot = table + ((va >> (12 + 9 * level)) & 0x1ff) * 8;
                let pte = read_u64(cpu, slot);
                if pte & (PTE_R | PTE_X) != 0 {
                    return slot;
                }
                table = ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << 12;
            }
            0
        }
    }

    fn write_u64(cpu: &RiscvCpu, pa: u64, v: u64) {
        cpu.bus.write(pa, &v.to_le_bytes()).unwrap();
    }
    fn read_u64(cpu: &RiscvCpu, pa: u64) -> u64 {
        let mut b = [0u8; 8];
        cpu.bus.read(pa, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    fn s_idx() -> u32 {
        u32::from(MMU_IDX_S)
    }

    #[test]
    fn sv39_walks_at_every_level() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        pt.map(&cpu, 0x4000_0000, TEST_RAM_BASE, LEAF_RWX, 2);
        pt.map(&cpu, 0x0020_0000, TEST_RAM_BASE, LEAF_RWX, 1);
        pt.map(&cpu, 0x0040_3000, TEST_RAM_BASE + 0x5000, LEAF_RWX, 0);
        write_u64(&cpu, TEST_RAM_BASE + 0x5008, 0x1122_3344_5566_7788);
        assert_eq!(
            cpu.mem_load(0x4000_5008, LOAD, s_idx()),
            Ok(0x1122_3344_5566_7788)
        );
        assert_eq!(
            cpu.mem_load(0x0020_5008, LOAD, s_idx()),
            Ok(0x1122_3344_5566_7788)
        );
        assert_eq!(
            cpu.mem_load(0x0040_3008, LOAD, s_idx()),
            Ok(0x1122_3344_5566_7788)
        );
        // Negative (sign-extended) addresses are canonical; the next slot is unmapped.
        assert_eq!(
            cpu.mem_load(0xffff_ffc0_0000_0000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0xffff_ffc0_0000_0000))
        );
        // Non-canonical: bit 38 clear but upper bits set.
        assert_eq!(
            cpu.mem_load(0x0100_0000_0000_0000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x0100_0000_0000_0000))
        );
        // The TLB now holds the 4 KiB page, and the fast path hits it.
        let e = cpu.common.tlb[1][tlb_index(0x0040_3008)];
        assert_eq!(e.addr_read, 0x0040_3000);
        assert_eq!(e.addr_write, 0x0040_3000);
        assert_eq!(
            cpu.common.load(0x0040_3008, LOAD, MMU_IDX_S),
            0x1122_3344_5566_7788
        );
    }

    /// Two pages sharing a TLB index evict each other; the victim TLB brings the evicted one
    /// back without a walk (shown by a PTE changed without sfence.vma, whose old translation
    /// is still used, as the architecture allows), and forgets it on sfence.vma, full flushes,
    /// and for what the page's permissions or code say now.
    #[test]
    fn victim_tlb_keeps_evicted_entries_until_a_flush() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        let a = 0x0040_0000u64;
        let b = a + (emu_jit::env::TLB_ENTRIES as u64) * PAGE_SIZE;
        assert_eq!(tlb_index(a), tlb_index(b));
        pt.map(&cpu, a, TEST_RAM_BASE + 0x5000, LEAF_RWX, 0);
        pt.map(&cpu, b, TEST_RAM_BASE + 0x6000, LEAF_RWX, 0);
        write_u64(&cpu, TEST_RAM_BASE + 0x5000, 5);
        write_u64(&cpu, TEST_RAM_BASE + 0x6000, 6);
        write_u64(&cpu, TEST_RAM_BASE + 0x7000, 7);
        let remap_a = |cpu: &RiscvCpu, pt: &Pt, pa: u64, flags: u64| {
            write_u64(
                cpu,
                pt.leaf_addr(cpu, a),
                ((pa >> 12) << PTE_PPN_SHIFT) | flags,
            );
        };
        assert_eq!(cpu.mem_load(a, LOAD, s_idx()), Ok(5));
        assert_eq!(cpu.mem_load(b, LOAD, s_idx()), Ok(6), "evicts a");
        remap_a(&cpu, &pt, TEST_RAM_BASE + 0x7000, LEAF_RWX);
        assert_eq!(
            cpu.mem_load(a, LOAD, s_idx()),
            Ok(5),
            "back from the victim TLB"
        );
        assert_eq!(cpu.common.tlb[1][tlb_index(a)].addr_read, a);
        assert_eq!(cpu.mem_load(b, LOAD, s_idx()), Ok(6), "b came back too");
        // sfence.vma a: the victim copy goes as well.
        cpu.tlb_flush_vaddr(a);
        assert_eq!(cpu.mem_load(a, LOAD, s_idx()), Ok(7));
        // A full flush empties it.
        assert_eq!(cpu.mem_load(b, LOAD, s_idx()), Ok(6));
        remap_a(&cpu, &pt, TEST_RAM_BASE + 0x5000, LEAF_RWX);
        cpu.tlb_flush_all();
        assert_eq!(cpu.mem_load(b, LOAD, s_idx()), Ok(6));
        assert_eq!(cpu.mem_load(a, LOAD, s_idx()), Ok(5));
        // A page that became code while its entry was evicted comes back NOTDIRTY.
        cpu.mem_store(a + 8, 1, LOAD, s_idx()).unwrap();
        assert_eq!(cpu.mem_load(b, LOAD, s_idx()), Ok(6));
        cpu.code_map.add_page(TEST_RAM_BASE + 0x5000);
        assert_eq!(cpu.mem_load(a, LOAD, s_idx()), Ok(5));
        let e = cpu.common.tlb[1][tlb_index(a)];
        assert_eq!(e.addr_write, a | TLB_NOTDIRTY);
        cpu.common.insn_limit = u64::MAX;
        cpu.common.store(a + 8, 2, LOAD, MMU_IDX_S);
        assert_eq!(cpu.common.insn_limit, 0, "the store into code was noticed");
        // A permission the victim copy lacks still walks (and faults here).
        remap_a(&cpu, &pt, TEST_RAM_BASE + 0x5000, PTE_V | PTE_R | PTE_A);
        cpu.tlb_flush_all();
        assert_eq!(cpu.mem_load(a, LOAD, s_idx()), Ok(5));
        assert_eq!(cpu.mem_load(b, LOAD, s_idx()), Ok(6));
        assert_eq!(
            cpu.mem_store(a, 1, LOAD, s_idx()),
            Err(Exception::StoreAmoPageFault(a))
        );
    }

    /// Global translations survive a satp write that keeps MODE and `sfence.vma x0, asid`
    /// (they come back from the victim TLB without a walk: a PTE changed meanwhile still gives
    /// the old translation); non-global ones do not, and `sfence.vma x0, x0` and a MODE change
    /// drop both.
    #[test]
    fn global_translations_survive_asid_flushes() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        let (kernel, user) = (0x0040_0000u64, 0x0060_0000u64);
        pt.map(&cpu, kernel, TEST_RAM_BASE + 0x5000, LEAF_RWX | PTE_G, 0);
        pt.map(&cpu, user, TEST_RAM_BASE + 0x6000, LEAF_RWX, 0);
        write_u64(&cpu, TEST_RAM_BASE + 0x5000, 5);
        write_u64(&cpu, TEST_RAM_BASE + 0x6000, 6);
        write_u64(&cpu, TEST_RAM_BASE + 0x7000, 7);
        let remap = |cpu: &RiscvCpu, pt: &Pt, va: u64, pa: u64, flags: u64| {
            write_u64(
                cpu,
                pt.leaf_addr(cpu, va),
                ((pa >> 12) << PTE_PPN_SHIFT) | flags,
            );
        };
        let load = |cpu: &mut RiscvCpu, va: u64| cpu.mem_load(va, LOAD, s_idx());
        let asid = |n: u64| n << 44;
        assert_eq!(
            (load(&mut cpu, kernel), load(&mut cpu, user)),
            (Ok(5), Ok(6))
        );
        // A context switch: new ASID, same root and MODE.
        remap(&cpu, &pt, kernel, TEST_RAM_BASE + 0x7000, LEAF_RWX | PTE_G);
        remap(&cpu, &pt, user, TEST_RAM_BASE + 0x7000, LEAF_RWX);
        let satp = cpu.csr.satp;
        assert!(cpu
            .csr_access(0x180, CSR_OP_RW, false, false, satp | asid(1), 0)
            .is_ok());
        assert_eq!(cpu.common.tlb[1][tlb_index(kernel)], TlbEntry::EMPTY);
        assert_eq!(load(&mut cpu, kernel), Ok(5), "global: kept");
        assert_eq!(load(&mut cpu, user), Ok(7), "non-global: walked again");
        // sfence.vma x0, x1 (one ASID): the same.
        remap(&cpu, &pt, user, TEST_RAM_BASE + 0x6000, LEAF_RWX);
        cpu.sfence_vma(0, 0x1200_0073 | (1 << 20)).unwrap();
        assert_eq!(
            (load(&mut cpu, kernel), load(&mut cpu, user)),
            (Ok(5), Ok(6))
        );
        // sfence.vma x0, x0: everything.
        cpu.sfence_vma(0, 0x1200_0073).unwrap();
        assert_eq!(load(&mut cpu, kernel), Ok(7));
        // A MODE change flushes global entries too.
        remap(&cpu, &pt, kernel, TEST_RAM_BASE + 0x5000, LEAF_RWX | PTE_G);
        assert!(cpu
            .csr_access(
                0x180,
                CSR_OP_RW,
                false,
                false,
                satp & !(0xf << SATP_MODE_SHIFT),
                0
            )
            .is_ok());
        assert!(cpu
            .csr_access(0x180, CSR_OP_RW, false, false, satp, 0)
            .is_ok());
        assert_eq!(load(&mut cpu, kernel), Ok(5));
        // A global PTE above the leaf makes the mapping global (§4.3.1): kept.
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        pt.map(&cpu, user, TEST_RAM_BASE + 0x6000, LEAF_RWX, 0);
        let l1 = ROOT + ((user >> 30) & 0x1ff) * 8;
        let top = read_u64(&cpu, l1);
        write_u64(&cpu, l1, top | PTE_G);
        write_u64(&cpu, TEST_RAM_BASE + 0x6000, 6);
        assert_eq!(load(&mut cpu, user), Ok(6));
        remap(&cpu, &pt, user, TEST_RAM_BASE + 0x7000, LEAF_RWX);
        let satp = cpu.csr.satp;
        assert!(cpu
            .csr_access(0x180, CSR_OP_RW, false, false, satp | asid(2), 0)
            .is_ok());
        assert_eq!(load(&mut cpu, user), Ok(6));
    }

    #[test]
    fn sv48_and_sv57_walks() {
        for (mode, levels) in [(SATP_MODE_SV48, 4), (SATP_MODE_SV57, 5)] {
            let mut cpu = test_cpu();
            let mut pt = Pt::new(&mut cpu, mode, levels);
            let va = (1u64 << (12 + 9 * levels - 2)) | 0x7000;
            pt.map(&cpu, va, TEST_RAM_BASE + 0x6000, LEAF_RWX, 0);
            pt.map(&cpu, 0x4000_0000, TEST_RAM_BASE, LEAF_RWX, 2);
            write_u64(&cpu, TEST_RAM_BASE + 0x6010, 42);
            assert_eq!(
                cpu.mem_load(va + 0x10, LOAD, s_idx()),
                Ok(42),
                "levels {levels}"
            );
            assert_eq!(cpu.mem_load(0x4000_6010, LOAD, s_idx()), Ok(42));
            // A top-level leaf (512 GiB / 256 TiB page) must be aligned: this one is not.
            pt.map(&cpu, 0, TEST_RAM_BASE, LEAF_RWX, levels - 1);
            assert_eq!(
                cpu.mem_load(0x6010, LOAD, s_idx()),
                Err(Exception::LoadPageFault(0x6010))
            );
            let bad = 1u64 << (12 + 9 * levels - 1);
            assert_eq!(
                cpu.mem_load(bad, LOAD, s_idx()),
                Err(Exception::LoadPageFault(bad))
            );
        }
    }

    #[test]
    fn accessed_and_dirty_are_set_by_the_walker() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        pt.map(
            &cpu,
            0x1000,
            TEST_RAM_BASE + 0x7000,
            PTE_V | PTE_R | PTE_W,
            0,
        );
        let leaf = pt.leaf_addr(&cpu, 0x1000);
        assert_eq!(cpu.mem_load(0x1000, LOAD, s_idx()), Ok(0));
        let pte = read_u64(&cpu, leaf);
        assert_ne!(pte & PTE_A, 0);
        assert_eq!(pte & PTE_D, 0);
        // Not dirty: the write tag stays empty so the first store walks and sets D.
        assert_eq!(cpu.common.tlb[1][1].addr_write, TLB_INVALID);
        cpu.mem_store(0x1008, 5, LOAD, s_idx()).unwrap();
        assert_ne!(read_u64(&cpu, leaf) & PTE_D, 0);
        assert_eq!(cpu.common.tlb[1][1].addr_write, 0x1000);
        assert_eq!(read_u64(&cpu, TEST_RAM_BASE + 0x7008), 5);
    }

    #[test]
    fn pte_faults() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        pt.map(&cpu, 0x1000, TEST_RAM_BASE, PTE_V | PTE_R | PTE_A, 0);
        pt.map(
            &cpu,
            0x2000,
            TEST_RAM_BASE,
            PTE_V | PTE_W | PTE_A | PTE_D,
            0,
        );
        pt.map(&cpu, 0x3000, TEST_RAM_BASE, LEAF_RWX | (1 << 60), 0);
        pt.map(&cpu, 0x4000, TEST_RAM_BASE, LEAF_RWX & !PTE_V, 0);
        pt.map(
            &cpu,
            0x5000,
            TEST_RAM_BASE,
            PTE_V | PTE_R | PTE_W | PTE_A | PTE_D,
            0,
        );
        assert_eq!(cpu.mem_load(0x1000, LOAD, s_idx()), Ok(0));
        assert_eq!(
            cpu.mem_store(0x1000, 0, LOAD, s_idx()),
            Err(Exception::StoreAmoPageFault(0x1000))
        );
        // A store-intent load (AMO) on a read-only page is a store fault.
        assert_eq!(
            cpu.mem_load(0x1000, LOAD.with_store_intent(), s_idx()),
            Err(Exception::StoreAmoPageFault(0x1000))
        );
        assert_eq!(
            cpu.mem_load(0x2000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x2000))
        );
        assert_eq!(
            cpu.mem_load(0x3000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x3000))
        );
        assert_eq!(
            cpu.mem_load(0x4000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x4000))
        );
        assert_eq!(
            translate_fetch(&mut cpu, 0x5000),
            Err(Exception::InstructionPageFault(0x5000))
        );
        // Misaligned superpage: a 2 MiB leaf whose PPN is not 2 MiB-aligned.
        pt.map(&cpu, 0x4020_0000, TEST_RAM_BASE + 0x1000, LEAF_RWX, 1);
        assert_eq!(
            cpu.mem_load(0x4020_0000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x4020_0000))
        );
    }

    #[test]
    fn user_pages_sum_mxr_and_mprv() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        pt.map(&cpu, 0x1000, TEST_RAM_BASE, LEAF_RWX | PTE_U, 0);
        pt.map(&cpu, 0x2000, TEST_RAM_BASE, PTE_V | PTE_X | PTE_A, 0);
        let u = u32::from(MMU_IDX_U);
        let s_sum = u32::from(MMU_IDX_S_SUM);
        assert_eq!(
            cpu.mem_load(0x1000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x1000))
        );
        assert_eq!(cpu.mem_load(0x1000, LOAD, s_sum), Ok(0));
        assert_eq!(cpu.mem_load(0x1000, LOAD, u), Ok(0));
        assert_eq!(
            cpu.mem_load(0x2000, LOAD, u),
            Err(Exception::LoadPageFault(0x2000))
        );
        // S never executes U pages, SUM or not.
        cpu.csr.mstatus |= MSTATUS_SUM;
        assert_eq!(
            translate_fetch(&mut cpu, 0x1000),
            Err(Exception::InstructionPageFault(0x1000))
        );
        assert_eq!(translate_fetch(&mut cpu, 0x2000), Ok(TEST_RAM_BASE));
        // MXR makes execute-only pages readable.
        assert_eq!(
            cpu.mem_load(0x2000, LOAD, s_idx()),
            Err(Exception::LoadPageFault(0x2000))
        );
        let s_mxr = u32::from(MMU_IDX_S + MMU_IDX_MXR);
        assert_eq!(cpu.mem_load(0x2000, LOAD, s_mxr), Ok(0));
        // MPRV in M: data accesses use MPP's translation.
        cpu.privilege = Privilege::Machine as u64;
        assert_eq!(cpu.data_mmu_idx(), MMU_IDX_M);
        cpu.csr.mstatus |= MSTATUS_MPRV | (1 << MSTATUS_MPP_SHIFT) | MSTATUS_MXR;
        assert_eq!(cpu.data_mmu_idx(), MMU_IDX_S_SUM + MMU_IDX_MXR);
        cpu.csr.mstatus &= !MSTATUS_MPP;
        assert_eq!(cpu.data_mmu_idx(), MMU_IDX_U + MMU_IDX_MXR);
        assert_eq!(cpu.fetch_mmu_idx(), MMU_IDX_M);
    }

    #[test]
    fn misaligned_accesses_split_or_raise() {
        let mut cpu = test_cpu();
        let mut pt = Pt::new(&mut cpu, SATP_MODE_SV39, 3);
        pt.map(&cpu, 0x1000, TEST_RAM_BASE + 0x8000, LEAF_RWX, 0);
        pt.map(&cpu, 0x2000, TEST_RAM_BASE + 0x3000, LEAF_RWX, 0);
        cpu.mem_store(0x1ffc, 0x8877_6655_4433_2211, LOAD, s_idx())
            .unwrap();
        assert_eq!(
            read_u64(&cpu, TEST_RAM_BASE + 0x3000) & 0xffff_ffff,
            0x8877_6655
        );
        assert_eq!(
            cpu.mem_load(0x1ffc, LOAD, s_idx()),
            Ok(0x8877_6655_4433_2211)
        );
        let w = MemOp::new(2, true, false);
        assert_eq!(cpu.mem_load(0x1ffe, w, s_idx()), Ok(0x6655_4433));
        assert_eq!(cpu.mem_load(0x1ffd, w, s_idx()), Ok(0x5544_3322));
        let aligned = MemOp::new(2, false, true);
        assert_eq!(
            cpu.mem_load(0x1002, aligned, s_idx()),
            Err(Exception::LoadAddressMisaligned(0x1002))
        );
        assert_eq!(
            cpu.mem_load(0x1002, aligned.with_store_intent(), s_idx()),
            Err(Exception::StoreAmoAddressMisaligned(0x1002))
        );
        assert_eq!(
            cpu.mem_store(0x1002, 0, aligned, s_idx()),
            Err(Exception::StoreAmoAddressMisaligned(0x1002))
        );
        // A crossing access whose second page faults reports that page and writes nothing.
        assert_eq!(
            cpu.mem_store(0x2ffc, u64::MAX, LOAD, s_idx()),
            Err(Exception::StoreAmoPageFault(0x3000))
        );
        assert_eq!(read_u64(&cpu, TEST_RAM_BASE + 0x3ff8), 0);
    }

    #[test]
    fn self_modifying_code_pages_take_the_slow_path() {
        let mut cpu = test_cpu();
        let page = TEST_RAM_BASE + 0x4000;
        cpu.mem_store(page, 1, LOAD, u32::from(MMU_IDX_M)).unwrap();
        assert_eq!(cpu.common.tlb[3][tlb_index(page)].addr_write, page);
        cpu.code_map.add_page(page);
        cpu.code_page_added(page);
        assert_eq!(
            cpu.common.tlb[3][tlb_index(page)].addr_write,
            page | TLB_NOTDIRTY
        );
        cpu.common.store(page + 8, 2, LOAD, MMU_IDX_M);
        assert_eq!(cpu.common.insn_limit, 0);
        assert_eq!(cpu.code_map.take_dirty(), vec![page]);
        assert_eq!(read_u64(&cpu, page + 8), 2);
        // Refilled clean once the page holds no code.
        cpu.common.store(page + 16, 3, LOAD, MMU_IDX_M);
        assert_eq!(cpu.common.tlb[3][tlb_index(page)].addr_write, page);
    }

    /// The store that finds a page's code gone clears NOTDIRTY from every MMU index's entry
    /// for that page at once (QEMU's `tlb_set_dirty`): the next store hits the fast path, with
    /// no refill walk.
    #[test]
    fn notdirty_goes_from_every_mode_once_the_page_loses_its_code() {
        let mut cpu = test_cpu();
        let page = TEST_RAM_BASE + 0x4000;
        let other = TEST_RAM_BASE + 0x5000;
        let m_mxr = MMU_IDX_M + MMU_IDX_MXR;
        for idx in [MMU_IDX_M, m_mxr] {
            for p in [page, other] {
                cpu.mem_store(p, 1, LOAD, u32::from(idx)).unwrap();
            }
        }
        for p in [page, other] {
            cpu.code_map.add_page(p);
            cpu.code_page_added(p);
        }
        let tag = |cpu: &RiscvCpu, idx: u8, p: u64| {
            cpu.common.tlb[usize::from(idx)][tlb_index(p)].addr_write
        };
        assert_eq!(tag(&cpu, m_mxr, page), page | TLB_NOTDIRTY);
        // A misaligned store inside the page is self-modifying code too.
        cpu.common
            .store(page + 9, 0xaabb, MemOp::new(1, false, false), MMU_IDX_M);
        assert_eq!(cpu.common.insn_limit, 0);
        assert_eq!(cpu.code_map.take_dirty(), vec![page]);
        assert_eq!(read_u64(&cpu, page + 8), 0xaa_bb00);
        assert_eq!(
            (tag(&cpu, MMU_IDX_M, page), tag(&cpu, m_mxr, page)),
            (page, page)
        );
        assert_eq!(tag(&cpu, m_mxr, other), other | TLB_NOTDIRTY, "still code");
        // The other mode now stores on the fast path (no slow-path call would be needed).
        assert!(cpu
            .common
            .try_store_fast(page + 16, 7, LOAD, u32::from(m_mxr)));
        assert_eq!(read_u64(&cpu, page + 16), 7);
        // A page-crossing store whose second half is code writes both halves and reports it.
        cpu.common.insn_limit = u64::MAX;
        cpu.mem_store(other - 4, u64::MAX, LOAD, u32::from(MMU_IDX_M))
            .unwrap();
        assert_eq!(cpu.common.insn_limit, 0);
        assert_eq!(cpu.code_map.take_dirty(), vec![other]);
        assert_eq!(read_u64(&cpu, other - 8), 0xffff_ffff_0000_0000);
        assert_eq!(read_u64(&cpu, other) & 0xffff_ffff, 0xffff_ffff);
        assert_eq!(tag(&cpu, MMU_IDX_M, other), other);
    }

    /// Misaligned accesses inside a page finish through the TLB entry on RAM, and still reach
    /// the device on an MMIO page.
    #[test]
    fn misaligned_in_page_accesses_on_ram_and_mmio() {
        let mut bus = Bus::new();
        bus.add_device(0x1000_0000, 16, Arc::new(Mutex::new(Reg(0))))
            .unwrap();
        let mut cpu = test_cpu_with(bus);
        let m = u32::from(MMU_IDX_M);
        let half = MemOp::new(1, true, false);
        let ram = TEST_RAM_BASE + 0x6000;
        cpu.mem_store(ram + 0x11, 0x8081, half, m).unwrap();
        assert_eq!(cpu.mem_load(ram + 0x11, half, m), Ok(0xffff_ffff_ffff_8081));
        assert_eq!(read_u64(&cpu, ram + 0x10), 0x80_8100);
        assert_eq!(
            cpu.common.insn_limit,
            u64::MAX,
            "RAM: no exit from generated code"
        );
        cpu.mem_store(0x1000_0001, 0x1234, half, m).unwrap();
        assert_eq!(
            cpu.common.insn_limit, 0,
            "a device store leaves generated code"
        );
        // The test device keeps the low bytes of the last write, whatever its offset.
        assert_eq!(cpu.mem_load(0x1000_0003, half, m), Ok(0x1234));
    }

    struct Reg(u64);
    impl BusDevice for Reg {
        fn read(&mut self, _offset: u64, data: &mut [u8]) {
            let b = self.0.to_le_bytes();
            let n = data.len().min(8);
            data[..n].copy_from_slice(&b[..n]);
        }
        fn write(&mut self, _offset: u64, data: &[u8]) {
            let mut b = [0u8; 8];
            let n = data.len().min(8);
            b[..n].copy_from_slice(&data[..n]);
            self.0 = u64::from_le_bytes(b);
        }
    }

    #[test]
    fn mmio_unmapped_and_pmp() {
        let mut bus = Bus::new();
        bus.add_device(0x1000_0000, 8, Arc::new(Mutex::new(Reg(0x55))))
            .unwrap();
        let mut cpu = test_cpu_with(bus);
        let m = u32::from(MMU_IDX_M);
        assert_eq!(cpu.mem_load(0x1000_0000, LOAD, m), Ok(0x55));
        assert_eq!(
            cpu.common.tlb[3][tlb_index(0x1000_0000)].addr_read,
            0x1000_0000 | TLB_MMIO
        );
        cpu.mem_store(0x1000_0000, 0x66, LOAD, m).unwrap();
        assert_eq!(cpu.common.load(0x1000_0000, LOAD, MMU_IDX_M), 0x66);
        assert_eq!(
            cpu.mem_load(0x2000_0000, LOAD, m),
            Err(Exception::LoadAccessFault(0x2000_0000))
        );
        // PMP: S may only read RAM's first 64 KiB.
        cpu.csr.pmp.write_addr(0, (TEST_RAM_BASE | 0x7fff) >> 2);
        cpu.csr.pmp.write_cfg(
            0,
            (super::super::pmp::PMP_A_NAPOT << 3) | super::super::pmp::PMP_R,
        );
        cpu.tlb_flush_all();
        let s = s_idx();
        assert_eq!(cpu.mem_load(TEST_RAM_BASE + 8, LOAD, s), Ok(0));
        assert_eq!(
            cpu.mem_store(TEST_RAM_BASE + 8, 0, LOAD, s),
            Err(Exception::StoreAmoAccessFault(TEST_RAM_BASE + 8))
        );
        assert_eq!(
            cpu.mem_load(TEST_RAM_BASE + 0x1_0000, LOAD, s),
            Err(Exception::LoadAccessFault(TEST_RAM_BASE + 0x1_0000))
        );
        cpu.privilege = Privilege::Supervisor as u64;
        cpu.common.pc = TEST_RAM_BASE;
        assert!(cpu.block_key().is_none(), "no X permission");
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (1, TEST_RAM_BASE));
        // Page-table reads are checked too: access fault, not page fault.
        cpu.csr.satp = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | ((TEST_RAM_BASE + 0x2_0000) >> 12);
        assert_eq!(
            cpu.mem_load(0x1000, LOAD, s),
            Err(Exception::LoadAccessFault(0x1000))
        );
    }

    /// PTEs are read from plain RAM directly; anywhere else the walk goes through the bus: a
    /// device answers the read, and an unmapped table is an access fault of the original
    /// access type.
    #[test]
    fn page_tables_outside_plain_ram() {
        const IO_TABLE: u64 = 0x1000_0000;
        const RAM_IO_TABLE: u64 = TEST_RAM_BASE + 0x3_0000;
        // A 1 GiB leaf for VA 0 onto RAM's base, dirty and accessed unless masked.
        let leaf = ((TEST_RAM_BASE >> 12) << PTE_PPN_SHIFT) | LEAF_RWX;
        let io = Arc::new(Mutex::new(Reg(leaf)));
        let ram_io = Arc::new(Mutex::new(Reg(leaf)));
        let mut bus = Bus::new();
        bus.add_device(IO_TABLE, 0x1000, io.clone()).unwrap();
        bus.add_device(RAM_IO_TABLE, 0x1000, ram_io.clone())
            .unwrap();
        let mut cpu = test_cpu_with(bus);
        write_u64(&cpu, TEST_RAM_BASE + 0x10, 77);
        cpu.privilege = Privilege::Supervisor as u64;
        let s = s_idx();
        let use_root = |cpu: &mut RiscvCpu, root: u64| {
            cpu.csr.satp = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | (root >> 12);
            cpu.tlb_flush_all();
        };
        use_root(&mut cpu, 0x2000_0000);
        assert_eq!(
            cpu.mem_load(0x10, LOAD, s),
            Err(Exception::LoadAccessFault(0x10))
        );
        assert_eq!(
            cpu.mem_store(0x10, 1, LOAD, s),
            Err(Exception::StoreAmoAccessFault(0x10))
        );
        assert_eq!(
            translate_fetch(&mut cpu, 0x10),
            Err(Exception::InstructionAccessFault(0x10))
        );
        for (root, dev) in [(IO_TABLE, &io), (RAM_IO_TABLE, &ram_io)] {
            use_root(&mut cpu, root);
            dev.lock().0 = leaf;
            assert_eq!(cpu.mem_load(0x10, LOAD, s), Ok(77), "root {root:#x}");
            // The A bit cannot be set in a device's PTE: page fault, as in QEMU.
            dev.lock().0 = leaf & !PTE_A;
            cpu.tlb_flush_all();
            assert_eq!(
                cpu.mem_load(0x10, LOAD, s),
                Err(Exception::LoadPageFault(0x10)),
                "root {root:#x}"
            );
        }
        // The RAM under the in-RAM device was neither the table nor updated.
        let under = cpu
            .bus
            .ram_at(RAM_IO_TABLE, 8)
            .and_then(|r| r.read_u64(RAM_IO_TABLE));
        assert_eq!(under, Some(0));
    }

    #[test]
    fn block_key_carries_translation_flags() {
        let mut cpu = test_cpu();
        cpu.csr.mstatus |= 3 << MSTATUS_FS_SHIFT;
        let key = cpu.block_key().unwrap();
        assert_eq!((key.pc, key.phys_pc), (TEST_RAM_BASE, TEST_RAM_BASE));
        let f = super::super::lift::TransFlags::from_key_flags(key.flags);
        assert_eq!(f.privilege, 3);
        assert_eq!(f.mmu_idx, MMU_IDX_M);
        assert!(f.fp_enabled && f.fs_dirty);
        cpu.common.pc = 0x100;
        assert!(cpu.block_key().is_none());
        assert_eq!(cpu.pending_cause, 1);
    }
}

#[cfg(test)]
mod sfence_tests {
    use super::super::cpu::{test_cpu, TEST_RAM_BASE};
    use super::*;
    use emu_jit::env::TlbEntry;

    const LOAD: MemOp = MemOp::new(3, false, false);
    const ROOT: u64 = TEST_RAM_BASE + 0x10_000;
    const L1: u64 = TEST_RAM_BASE + 0x11_000;
    const L0: u64 = TEST_RAM_BASE + 0x12_000;
    const RWXAD: u64 = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;

    fn pte(pa: u64, flags: u64) -> [u8; 8] {
        (((pa >> 12) << PTE_PPN_SHIFT) | flags).to_le_bytes()
    }

    /// sfence.vma with rs1 = x1 (the address form).
    const SFENCE_X1: u64 = 0x1200_0073 | (1 << 15);

    #[test]
    fn address_sfence_flushes_one_page_or_a_superpage() {
        let mut cpu = test_cpu();
        let bus = cpu.bus.clone();
        // VA 0x4000_0000: 1 GiB superpage; VA 0x1000, 0x2000: 4 KiB pages via L1/L0.
        bus.write(ROOT + 8, &pte(TEST_RAM_BASE, RWXAD)).unwrap();
        bus.write(ROOT, &pte(L1, PTE_V)).unwrap();
        bus.write(L1, &pte(L0, PTE_V)).unwrap();
        bus.write(L0 + 8, &pte(TEST_RAM_BASE + 0x1000, RWXAD))
            .unwrap();
        bus.write(L0 + 16, &pte(TEST_RAM_BASE + 0x2000, RWXAD))
            .unwrap();
        cpu.csr.satp = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | (ROOT >> 12);
        cpu.privilege = Privilege::Supervisor as u64;
        let s = u32::from(MMU_IDX_S);
        for va in [0x1000, 0x2000] {
            cpu.mem_load(va, LOAD, s).unwrap();
        }
        let filled = |cpu: &RiscvCpu, va: u64| cpu.common.tlb[1][tlb_index(va)] != TlbEntry::EMPTY;
        assert!(filled(&cpu, 0x1000) && filled(&cpu, 0x2000));
        assert_eq!(cpu.large_pages, None);
        cpu.sfence_vma(0x1000, SFENCE_X1).unwrap();
        assert!(
            !filled(&cpu, 0x1000) && filled(&cpu, 0x2000),
            "only the named page goes"
        );
        // A superpage entry: flushing any address inside it flushes everything.
        cpu.mem_load(0x4000_5000, LOAD, s).unwrap();
        assert_eq!(cpu.large_pages, Some((0x4000_0000, 0x7fff_ffff)));
        cpu.sfence_vma(0x4003_0000, SFENCE_X1).unwrap();
        assert!(!filled(&cpu, 0x4000_5000) && !filled(&cpu, 0x2000));
        assert_eq!(cpu.large_pages, None);
        // rs1 = x0 flushes everything.
        cpu.mem_load(0x2000, LOAD, s).unwrap();
        cpu.sfence_vma(0x9999_0000, 0x1200_0073).unwrap();
        assert!(!filled(&cpu, 0x2000));
    }
}
