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
    tlb_index, AccessKind, CpuCommon, PAGE_MASK, PAGE_SIZE, TLB_INVALID, TLB_MMIO, TLB_NOTDIRTY,
};
use emu_jit::helper::state_of;
use emu_jit::ir::MemOp;

use super::cpu::{Privilege, RiscvCpu};
use super::csr::*;
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
}

fn page_fault(kind: AccessKind, vaddr: u64) -> Exception {
    match kind {
        AccessKind::Load => Exception::LoadPageFault(vaddr),
        AccessKind::Store => Exception::StoreAmoPageFault(vaddr),
        AccessKind::Fetch => Exception::InstructionPageFault(vaddr),
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

    fn read_pte(&self, addr: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        self.bus.read(addr, &mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// Virtual → physical for one access (§4.3.2 for Sv39; Sv48/Sv57 add levels). Checks
    /// page permissions and sets A/D with an atomic compare-and-swap, restarting the walk if
    /// the PTE changed meanwhile (QEMU 7.2).
    fn translate(
        &self,
        vaddr: u64,
        kind: AccessKind,
        mode: MmuMode,
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
                let pte = self.read_pte(pte_addr).ok_or(access_fault(kind, vaddr))?;
                if pte & PTE_V == 0 || (pte & PTE_R == 0 && pte & PTE_W != 0) {
                    return Err(fault);
                }
                if pte & !(PTE_PPN_MASK | 0x3ff) != 0 {
                    return Err(fault);
                }
                let ppn = (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT;
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
                if updated != pte {
                    let Some(ram) = self.bus.ram_at(pte_addr, 8) else {
                        // A/D bits in ROM or MMIO cannot be set (QEMU: page fault).
                        return Err(fault);
                    };
                    match ram.compare_exchange_u64(pte_addr, pte, updated) {
                        Some(old) if old == pte => {}
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
        let mode = MmuMode::from_idx(idx);
        let t = self.translate(vaddr, kind, mode)?;
        if !self.csr.pmp.check(t.phys, size, kind, mode.prv) {
            return Err(access_fault(kind, vaddr));
        }
        self.tlb_fill(slot, vaddr, t, mode.prv);
        Ok(t.phys)
    }

    /// Fill the TLB entry for `vaddr`'s page (env.rs rules): RAM pages with no device get a
    /// host addend; other pages are cached with `TLB_MMIO`. Pages whose PMP permissions are
    /// not uniform are not cached.
    fn tlb_fill(&mut self, slot: usize, vaddr: u64, t: Translation, prv: Privilege) {
        let ppage = t.phys & PAGE_MASK;
        let vpage = vaddr & PAGE_MASK;
        let pmp = &self.csr.pmp;
        if !pmp.page_uniform(ppage, PAGE_SIZE) {
            return;
        }
        let host = self.bus.ram_page_host_ptr(ppage, PAGE_SIZE);
        let flags = if host.is_some() { 0 } else { TLB_MMIO };
        let tag = |ok: bool, kind: AccessKind| {
            if ok && pmp.check(ppage, PAGE_SIZE, kind, prv) {
                vpage | flags
            } else {
                TLB_INVALID
            }
        };
        let addr_read = tag(t.read, AccessKind::Load);
        let mut addr_write = tag(t.write, AccessKind::Store);
        let addr_code = tag(t.exec, AccessKind::Fetch);
        if addr_write != TLB_INVALID && self.code_map.page_has_code(ppage) {
            addr_write |= TLB_NOTDIRTY;
        }
        let addend = host.map_or(0, |h| (h as u64).wrapping_sub(vpage));
        let ti = tlb_index(vaddr);
        self.common.tlb[slot][ti] = emu_jit::env::TlbEntry {
            addr_read,
            addr_write,
            addr_code,
            addend,
        };
        self.tlb_phys[slot][ti] = ppage;
    }

    /// Read `buf.len()` bytes (inside one page) at `vaddr`.
    fn load_bytes(
        &mut self,
        vaddr: u64,
        buf: &mut [u8],
        kind: AccessKind,
        idx: u32,
    ) -> Result<(), Exception> {
        let phys = self.translate_access(vaddr, buf.len() as u64, kind, idx)?;
        self.publish_time();
        self.bus
            .read(phys, buf)
            .map_err(|_| access_fault(kind, vaddr))
    }

    /// Write `data` (inside one page) at `vaddr`, telling the code map (self-modifying code).
    fn store_bytes(&mut self, vaddr: u64, data: &[u8], idx: u32) -> Result<(), Exception> {
        let phys = self.translate_access(vaddr, data.len() as u64, AccessKind::Store, idx)?;
        if self.code_map.note_write(phys) {
            self.common.insn_limit = 0;
        }
        self.publish_time();
        self.bus
            .write(phys, data)
            .map_err(|_| Exception::StoreAmoAccessFault(vaddr))
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
        let mut buf = [0u8; 8];
        let bytes = buf.get_mut(..size as usize).unwrap_or_default();
        let first = (PAGE_SIZE - (vaddr & !PAGE_MASK)).min(size) as usize;
        let (a, b) = bytes.split_at_mut(first);
        if b.is_empty() {
            self.load_bytes(vaddr, a, kind, idx)?;
        } else {
            // Page-crossing: translate both halves before touching either (QEMU).
            let second = vaddr.wrapping_add(first as u64);
            self.translate_access(vaddr, a.len() as u64, kind, idx)?;
            self.translate_access(second, b.len() as u64, kind, idx)?;
            self.load_bytes(vaddr, a, kind, idx)?;
            self.load_bytes(second, b, kind, idx)?;
        }
        let raw = u64::from_le_bytes(buf);
        Ok(match (mem.size_log2, mem.signed) {
            (0, true) => raw as i8 as i64 as u64,
            (1, true) => raw as i16 as i64 as u64,
            (2, true) => raw as i32 as i64 as u64,
            _ => raw,
        })
    }

    /// The slow-path store.
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
        let buf = val.to_le_bytes();
        let bytes = buf.get(..size as usize).unwrap_or_default();
        let first = (PAGE_SIZE - (vaddr & !PAGE_MASK)).min(size) as usize;
        let (a, b) = bytes.split_at(first);
        if b.is_empty() {
            self.store_bytes(vaddr, a, idx)
        } else {
            let second = vaddr.wrapping_add(first as u64);
            self.translate_access(vaddr, a.len() as u64, AccessKind::Store, idx)?;
            self.translate_access(second, b.len() as u64, AccessKind::Store, idx)?;
            self.store_bytes(vaddr, a, idx)?;
            self.store_bytes(second, b, idx)
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
