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
        &csr::HELPER_CSR_WRITTEN,
        &csr::HELPER_MARK_FS_DIRTY,
        &trap::HELPER_RAISE,
        &trap::HELPER_ILLEGAL,
        &trap::HELPER_UNIMPLEMENTED,
        &trap::HELPER_MRET,
        &trap::HELPER_SRET,
        &trap::HELPER_WFI,
        &trap::HELPER_SFENCE_VMA,
    ];
    v.extend_from_slice(super::fp::HELPERS);
    v.extend_from_slice(super::lift::zb::HELPERS);
    v
}

impl Guest for RiscvCpu {
    fn helpers(&self) -> Vec<&'static HelperDef> {
        riscv_helpers()
    }

    // Inlined into the engine's dispatch loop, which asks several times per block lookup.
    #[inline]
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
            self.report_guest_error(|| {
                format!("fetch from non-RAM physical address {phys:#x} (pc {pc:#x})")
            });
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
        // This hart marks the page itself; if it is the only page added since the last sync,
        // the hart is up to date without dropping its write entries.
        let generation = self.code_map.generation();
        if generation == self.code_generation_seen.wrapping_add(1) {
            self.code_generation_seen = generation;
        }
        let page = phys_page & emu_jit::env::PAGE_MASK;
        for idx in 0..NB_MMU_MODES {
            // Only entries filled since the last flush can be valid (env.rs `tlb_filled`).
            let filled: Vec<usize> = self.common.tlb_filled_indices(idx).collect();
            for i in filled {
                let (Some(e), Some(&p)) =
                    (self.common.tlb[idx].get_mut(i), self.tlb_phys[idx].get(i))
                else {
                    continue;
                };
                if p == page && e.addr_write & TLB_INVALID == 0 {
                    e.addr_write |= TLB_NOTDIRTY;
                }
            }
        }
    }

    /// The run loops do nothing at a yield but deliver a deliverable interrupt
    /// (`check_interrupts`) and re-arm the budget, so only a pending, enabled interrupt
    /// needs them: then the interrupt is taken at the same instruction as before.
    fn yield_needs_run_loop(&mut self) -> bool {
        self.pending_interrupt().is_some()
    }

    fn sync_code_pages(&mut self) {
        let generation = self.code_map.generation();
        if generation != self.code_generation_seen {
            // Another hart translated code in pages this hart may hold writable entries for:
            // drop every write tag, so the next store refills through the slow path, which
            // marks code pages NOTDIRTY (mmu.rs).
            for idx in 0..NB_MMU_MODES {
                let filled: Vec<usize> = self.common.tlb_filled_indices(idx).collect();
                for i in filled {
                    if let Some(e) = self.common.tlb[idx].get_mut(i) {
                        e.addr_write = TLB_INVALID;
                    }
                }
            }
            self.code_generation_seen = generation;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Two harts sharing one engine and code map: a page that becomes code while hart A runs
    /// must not stay writable on hart B's fast path (stores would skip SMC detection).
    #[test]
    fn another_harts_code_page_drops_this_harts_write_entries() {
        use crate::riscv::cpu::{test_cpu, TEST_RAM_BASE};
        use emu_jit::ir::MemOp;
        let mut b = test_cpu();
        let mut a = test_cpu();
        a.code_map = b.code_map.clone();
        a.bus = b.bus.clone();
        let page = TEST_RAM_BASE + 0x4000;
        let dword = MemOp::new(3, false, false);
        // Hart B stores into the page while it holds no code: the TLB gets a write entry.
        b.common.store(page, 1, dword, 3);
        assert_eq!(b.common.exception_pending, 0);
        let idx = emu_jit::env::tlb_index(page);
        assert_eq!(b.common.tlb[3][idx].addr_write, page);
        // Hart A translates code in it: A itself stays in sync without dropping anything.
        assert!(a.code_map.add_page(page));
        a.code_page_added(page);
        a.sync_code_pages();
        assert_eq!(a.code_generation_seen, a.code_map.generation());
        // Hart B, on its next run, drops its write entries; its next store takes the slow
        // path and reports the page (which asks the hart to leave generated code).
        b.sync_code_pages();
        assert_eq!(b.common.tlb[3][idx].addr_write, TLB_INVALID);
        b.common.insn_limit = u64::MAX;
        b.common.store(page, 2, dword, 3);
        assert_eq!(b.common.insn_limit, 0, "store into code must be noticed");
        assert!(!b.code_map.page_has_code(page));
    }

    /// Helper definitions in a source file: `static NAME: HelperDef` items and `helper!(NAME`
    /// macro uses (fp.rs's form).
    fn defined_in(src: &str) -> usize {
        let statics = src.matches("pub static HELPER_").count();
        let macro_uses = src.matches("helper!(").count();
        statics + macro_uses
    }

    #[test]
    fn helper_table_lists_every_helper_once() {
        let all = riscv_helpers();
        let names: HashSet<&str> = all.iter().map(|h| h.name).collect();
        assert_eq!(names.len(), all.len(), "helper names are unique");
        // Refreshed from the tree: a helper added without being listed fails here.
        let sources = [
            include_str!("csr.rs"),
            include_str!("trap.rs"),
            include_str!("fp.rs"),
            include_str!("lift/zb.rs"),
        ];
        let defined: usize = sources.iter().map(|s| defined_in(s)).sum();
        assert_eq!(all.len(), defined);
    }
}

/// Privileged behaviour through translation and both executors (C's lifter test harness).
#[cfg(test)]
mod exec_tests {
    use super::*;
    use crate::riscv::cpu::Privilege;
    use crate::riscv::csr::{SATP_MODE_SHIFT, SATP_MODE_SV39};
    use crate::riscv::mmu::{PTE_A, PTE_D, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X};
    use crate::riscv::translate::testutil::*;
    use emu_jit::env::TLB_NOTDIRTY;

    const ROOT: u64 = RAM_BASE + 0x10_000;
    const VBASE: u64 = 0x4000_0000;
    const ECALL: u32 = 0x0000_0073;

    /// Sv39 with one 1 GiB page: VA 0x4000_0000 → RAM_BASE, with extra PTE bits `flags`.
    fn paged_hart(flags: u64) -> Box<RiscvCpu> {
        let mut cpu = hart();
        let leaf = ((RAM_BASE >> 12) << 10) | PTE_V | PTE_A | PTE_D | flags;
        poke(&cpu, ROOT + 8, &leaf.to_le_bytes());
        cpu.csr.satp = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | (ROOT >> 12);
        cpu.csr.mtvec = RAM_BASE + 0x8000;
        cpu
    }

    #[test]
    fn s_mode_program_runs_through_the_page_table() {
        for tier in [Tier::Interp, Tier::Native] {
            let mut cpu = paged_hart(PTE_R | PTE_W | PTE_X);
            load_words(
                &cpu,
                RAM_BASE + 0x1000,
                &[i_type("ld", 5, 6, 0), s_type("sd", 6, 5, 8), ECALL],
            );
            poke(&cpu, RAM_BASE + 0x2000, &0x1234_5678u64.to_le_bytes());
            cpu.x[6] = VBASE + 0x2000;
            cpu.privilege = Privilege::Supervisor as u64;
            cpu.common.pc = VBASE + 0x1000;
            let key = cpu.block_key().unwrap();
            assert_eq!(key.phys_pc, RAM_BASE + 0x1000);
            run_to_on(&mut cpu, 0, tier);
            assert_eq!(cpu.common.exception_pending, 1);
            assert_eq!(cpu.pending_cause, 9, "ecall from S");
            assert_eq!(cpu.common.pc, VBASE + 0x1008);
            assert_eq!(peek_u64(&cpu, RAM_BASE + 0x2008), 0x1234_5678);
            cpu.deliver_exception();
            assert_eq!(
                (cpu.priv_level(), cpu.common.pc),
                (Privilege::Machine, RAM_BASE + 0x8000)
            );
            assert_eq!(cpu.csr.mepc, VBASE + 0x1008);
        }
    }

    #[test]
    fn faults_inside_a_block_are_precise() {
        for tier in [Tier::Interp, Tier::Native] {
            // A supervisor page: U-mode loads fault, with tval = the address.
            let mut cpu = paged_hart(PTE_R | PTE_W | PTE_X | PTE_U);
            load_words(
                &cpu,
                RAM_BASE + 0x1000,
                &[
                    i_type("addi", 7, 0, 1),
                    i_type("ld", 5, 6, 0),
                    i_type("addi", 7, 0, 2),
                ],
            );
            cpu.x[6] = 0x1000; // unmapped
            cpu.privilege = Privilege::User as u64;
            cpu.common.pc = VBASE + 0x1000;
            run_to_on(&mut cpu, 0, tier);
            assert_eq!((cpu.pending_cause, cpu.pending_tval), (13, 0x1000));
            assert_eq!(cpu.common.pc, VBASE + 0x1004);
            assert_eq!(
                cpu.x[7], 1,
                "the instruction before retired, the one after did not"
            );
        }
    }

    #[test]
    fn fetch_faults_come_from_block_key() {
        // No U bit: U-mode cannot execute the page.
        let mut cpu = paged_hart(PTE_R | PTE_X);
        cpu.privilege = Privilege::User as u64;
        cpu.common.pc = VBASE + 0x1000;
        assert!(cpu.block_key().is_none());
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (12, VBASE + 0x1000));
        cpu.common.exception_pending = 0;
        // Not executable at all, in S.
        let mut cpu = paged_hart(PTE_R | PTE_W);
        cpu.privilege = Privilege::Supervisor as u64;
        cpu.common.pc = VBASE;
        assert!(cpu.block_key().is_none());
        assert_eq!(cpu.pending_cause, 12);
    }

    #[test]
    fn stores_into_translated_code_leave_generated_code() {
        for tier in [Tier::Interp, Tier::Native] {
            let mut cpu = hart();
            load_words(
                &cpu,
                RAM_BASE,
                &[s_type("sd", 6, 0, 0), i_type("addi", 7, 0, 1)],
            );
            cpu.x[6] = RAM_BASE + 0x100;
            // First store fills the TLB with a clean write tag.
            cpu.common.store(
                RAM_BASE + 0x200,
                0,
                emu_jit::ir::MemOp::new(3, false, false),
                3,
            );
            cpu.code_map.add_page(RAM_BASE);
            cpu.code_page_added(RAM_BASE);
            let e = cpu.common.tlb[3][emu_jit::env::tlb_index(RAM_BASE)];
            assert_ne!(e.addr_write & TLB_NOTDIRTY, 0);
            step_on(&mut cpu, 1, tier);
            assert_eq!(cpu.common.insn_limit, 0, "the slow path asked the vCPU out");
            assert_eq!(cpu.code_map.take_dirty(), vec![RAM_BASE]);
        }
    }
}
