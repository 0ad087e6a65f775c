//! The engine's view of a RISC-V hart (`emu_jit::guest::Guest`): block keys from the hart's
//! translation state, block translation, helper table, and self-modifying-code tracking.

use emu_jit::env::{CpuCommon, NB_MMU_MODES, TLB_INVALID, TLB_NOTDIRTY};
use emu_jit::guest::{BlockKey, Guest};
use emu_jit::helper::HelperDef;
use emu_jit::ir::Builder;

use super::cpu::RiscvCpu;
use super::csr::{self, FS_DIRTY, FS_OFF, MSTATUS_FS, MSTATUS_FS_SHIFT};
use super::lift::TransFlags;
use super::trap::{self, Exception};
use super::{mmu, translate};

impl RiscvCpu {
    /// The translation-time facts of the hart's current state (part of every block key).
    pub fn trans_flags(&self) -> TransFlags {
        let fs = (self.csr.mstatus & MSTATUS_FS) >> MSTATUS_FS_SHIFT;
        TransFlags {
            privilege: self.privilege as u8,
            mmu_idx: self.data_mmu_idx(),
            fp_enabled: fs != FS_OFF,
            fs_dirty: fs == FS_DIRTY,
        }
    }
}

/// Every helper the RISC-V lifters call (so the IR text parser can resolve names).
fn riscv_helpers() -> Vec<&'static HelperDef> {
    let mut v: Vec<&'static HelperDef> = vec![
        &csr::HELPER_CSR,
        &csr::HELPER_MARK_FS_DIRTY,
        &trap::HELPER_RAISE,
        &trap::HELPER_ILLEGAL,
        &trap::HELPER_UNIMPLEMENTED,
        &trap::HELPER_MRET,
        &trap::HELPER_SRET,
        &trap::HELPER_WFI,
        &trap::HELPER_SFENCE_VMA,
    ];
    v.extend_from_slice(&fp_helpers());
    v
}

/// D2's floating-point helpers (fp.rs).
fn fp_helpers() -> Vec<&'static HelperDef> {
    use super::fp::*;
    vec![
        &HELPER_FADD_S,
        &HELPER_FSUB_S,
        &HELPER_FMUL_S,
        &HELPER_FDIV_S,
        &HELPER_FADD_D,
        &HELPER_FSUB_D,
        &HELPER_FMUL_D,
        &HELPER_FDIV_D,
        &HELPER_FSQRT_S,
        &HELPER_FSQRT_D,
    ]
}

impl Guest for RiscvCpu {
    fn helpers(&self) -> Vec<&'static HelperDef> {
        riscv_helpers()
    }

    fn common(&mut self) -> &mut CpuCommon {
        &mut self.common
    }

    /// Translate the pc for fetch (page walk and PMP X); code must come from RAM.
    fn block_key(&mut self) -> Option<BlockKey> {
        let pc = self.common.pc;
        let phys = match mmu::translate_fetch(self, pc) {
            Ok(p) => p,
            Err(e) => {
                self.raise(e);
                return None;
            }
        };
        if self.bus.ram_at(phys, 2).is_none() {
            self.raise(Exception::InstructionAccessFault(pc));
            return None;
        }
        Some(BlockKey {
            pc,
            phys_pc: phys,
            flags: self.trans_flags().to_key_flags(),
        })
    }

    fn translate(&mut self, key: &BlockKey, max_insns: u32, b: &mut Builder) {
        translate::translate_block(self, key, max_insns, b);
    }

    /// Mark every TLB write entry that maps `phys_page` NOTDIRTY, in every MMU index.
    fn code_page_added(&mut self, phys_page: u64) {
        let page = phys_page & emu_jit::env::PAGE_MASK;
        for idx in 0..NB_MMU_MODES {
            for (e, &p) in self.common.tlb[idx]
                .iter_mut()
                .zip(self.tlb_phys[idx].iter())
            {
                if p == page && e.addr_write & TLB_INVALID == 0 {
                    e.addr_write |= TLB_NOTDIRTY;
                }
            }
        }
    }
}
