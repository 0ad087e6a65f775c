//! "Zicsr" control and status register instructions (Unprivileged ISA ch. 7). The access itself
//! (existence, privilege, read-only checks, side effects) is D1's `csr::HELPER_CSR`; the lifter
//! only decides which halves happen (§7.1: csrrw with rd = x0 does not read, csrrs/csrrc with
//! rs1 = x0 and the immediate forms with uimm = 0 do not write).

use emu_jit::ir::{Cond, ExitReason, Terminal, Type};

use super::{LiftCtx, Lifted};
use crate::riscv::csr::{
    csr_write_always_ends_block, CSR_NO_READ, CSR_NO_WRITE, HELPER_CSR, HELPER_CSR_WRITTEN,
};
use crate::riscv::decode::{funct3, rd, rs1, InsnPattern, MASK_I};

pub static ZICSR: &[InsnPattern] = &[
    InsnPattern::new("csrrw", MASK_I, 0x0000_1073, lift_csr),
    InsnPattern::new("csrrs", MASK_I, 0x0000_2073, lift_csr),
    InsnPattern::new("csrrc", MASK_I, 0x0000_3073, lift_csr),
    InsnPattern::new("csrrwi", MASK_I, 0x0000_5073, lift_csr),
    InsnPattern::new("csrrsi", MASK_I, 0x0000_6073, lift_csr),
    InsnPattern::new("csrrci", MASK_I, 0x0000_7073, lift_csr),
];

/// fflags, frm and fcsr: writing them changes no translation state, so the block continues.
const CSR_FFLAGS: u32 = 0x001;
const CSR_FCSR: u32 = 0x003;

/// The CSR number, bits 31:20.
pub const fn csr_num(insn: u32) -> u32 {
    insn >> 20
}

/// All six instructions: funct3 bit 2 selects the immediate form, bits 1:0 the operation
/// (1 RW, 2 RS, 3 RC) as the helper expects.
fn lift_csr(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let csr = csr_num(insn);
    let op = funct3(insn) & 3;
    let uses_imm = funct3(insn) & 4 != 0;
    let src_field = rs1(insn);
    let no_read = op == 1 && rd(insn) == 0;
    let no_write = op != 1 && src_field == 0;
    let arg = u64::from(csr)
        | u64::from(op) << 12
        | if no_read { CSR_NO_READ } else { 0 }
        | if no_write { CSR_NO_WRITE } else { 0 };
    let arg = ctx.imm(arg);
    let src = if uses_imm {
        ctx.imm(u64::from(src_field))
    } else {
        ctx.get_gpr(src_field)
    };
    let raw = ctx.imm(u64::from(ctx.raw));
    let old = match ctx.b.call(&HELPER_CSR, &[arg, src, raw]) {
        Some(v) => v,
        // Unreachable: HELPER_CSR returns the old value.
        None => ctx.b.iconst(Type::I64, 0),
    };
    ctx.set_gpr(rd(insn), old);
    if no_write || (CSR_FFLAGS..=CSR_FCSR).contains(&csr) {
        Lifted::Continue
    } else if csr_write_always_ends_block(csr as u16) {
        ctx.exit_next(ExitReason::Yield)
    } else {
        // A CSR write may change the block's translation flags or make an interrupt
        // deliverable: leave with a `Yield` then (and when the budget is spent, as the next
        // block's entry would), else go on. Linux's interrupt disable/enable (`csrc`/`csrs
        // sstatus, SIE`) and its trap entry's sscratch/sepc writes mostly go on.
        let flags = ctx.imm(u64::from(ctx.flags.to_key_flags()));
        let end = match ctx.b.call(&HELPER_CSR_WRITTEN, &[flags]) {
            Some(v) => v,
            // Unreachable: the helper returns a value.
            None => ctx.b.iconst(Type::I64, 1),
        };
        let zero = ctx.imm(0);
        let go_on = ctx.b.new_label();
        ctx.b.br_cond(Cond::Eq, Type::I64, end, zero, go_on);
        let pc = ctx.next_pc();
        ctx.b.exit(Terminal::Exit {
            reason: ExitReason::Yield,
            pc,
        });
        ctx.b.label(go_on);
        Lifted::Continue
    }
}

#[cfg(test)]
mod tests {
    use crate::riscv::cpu::Privilege;
    use crate::riscv::csr::{MIP_SSIP, MSTATUS_FS, MSTATUS_MPP_SHIFT, MSTATUS_MPRV, MSTATUS_SIE};
    use crate::riscv::translate::testutil::*;
    use emu_jit::exec::BlockExit;
    use emu_jit::ir::ExitReason;

    const SSTATUS: i32 = 0x100;
    const SATP: i32 = 0x180;
    const MSTATUS: i32 = 0x300;
    const MSCRATCH: i32 = 0x340;
    const FFLAGS: i32 = 0x001;
    const SIE: u32 = 2;

    const TIERS: [Tier; 2] = [Tier::Interp, Tier::Native];

    #[test]
    fn csr_write_goes_on_in_the_block() {
        for tier in TIERS {
            let mut cpu = hart();
            let end = program(
                &cpu,
                &[
                    i_type("csrrw", 3, 1, MSCRATCH),  // x3 = old mscratch, mscratch = x1
                    i_type("csrrs", 4, 0, MSCRATCH),  // read only
                    i_type("csrrci", 5, 0, MSCRATCH), // uimm = 0: read only
                ],
            );
            cpu.x[1] = 0x55;
            assert_eq!(step_on(&mut cpu, 64, tier), BlockExit::Goto { slot: 0 });
            assert_eq!(cpu.common.pc, end);
            assert_eq!((cpu.x[3], cpu.x[4], cpu.x[5]), (0, 0x55, 0x55));
            // The three and the end marker's `j .`, in one block.
            assert_eq!(cpu.common.insn_count, 4);
        }
    }

    /// Where the next block's entry would find the budget spent, the write ends the block.
    #[test]
    fn csr_write_that_spends_the_budget_ends_the_block() {
        for tier in TIERS {
            let mut cpu = hart();
            program(
                &cpu,
                &[i_type("csrrw", 0, 1, MSCRATCH), i_type("addi", 6, 0, 1)],
            );
            cpu.common.insn_limit = 1;
            assert_eq!(
                step_on(&mut cpu, 64, tier),
                BlockExit::Exit(ExitReason::Yield)
            );
            assert_eq!((cpu.common.pc, cpu.common.insn_count), (RAM_BASE + 4, 1));
            assert_eq!(cpu.x[6], 0);
        }
    }

    /// `csrs sstatus, SIE` with a pending, delegated, enabled interrupt ends the block at the
    /// next instruction (where the interrupt is taken); `csrc` goes on.
    #[test]
    fn enabling_a_pending_interrupt_ends_the_block() {
        for tier in TIERS {
            for (name, ends) in [("csrrsi", true), ("csrrci", false)] {
                let mut cpu = hart();
                let end = program(&cpu, &[i_type(name, 0, SIE, SSTATUS)]);
                cpu.privilege = Privilege::Supervisor as u64;
                cpu.csr.mideleg = MIP_SSIP;
                cpu.csr.mie = MIP_SSIP;
                cpu.csr.mip = MIP_SSIP;
                cpu.csr.mstatus &= !MSTATUS_SIE;
                let exit = step_on(&mut cpu, 64, tier);
                assert_eq!(cpu.common.pc, end, "{name} {tier:?}");
                if ends {
                    assert_eq!(exit, BlockExit::Exit(ExitReason::Yield));
                    assert!(cpu.pending_interrupt().is_some());
                } else {
                    assert_eq!(exit, BlockExit::Goto { slot: 0 });
                }
            }
        }
    }

    /// A write that changes the translation flags (FS off; MPRV with MPP = S) ends the block;
    /// one that writes the same flags goes on.
    #[test]
    fn changing_the_translation_flags_ends_the_block() {
        for tier in TIERS {
            for (csr, clear, set, ends) in [
                (SSTATUS, MSTATUS_FS, 0, true),
                (MSTATUS, 0, MSTATUS_MPRV | 1 << MSTATUS_MPP_SHIFT, true),
                (MSTATUS, 0, 0, false),
            ] {
                let mut cpu = hart();
                let end = program(&cpu, &[i_type("csrrw", 0, 1, csr)]);
                cpu.csr.mstatus |= MSTATUS_FS;
                cpu.x[1] = (cpu.csr.mstatus & !clear) | set;
                let exit = step_on(&mut cpu, 64, tier);
                assert_eq!(cpu.common.pc, end);
                let want = if ends {
                    BlockExit::Exit(ExitReason::Yield)
                } else {
                    BlockExit::Goto { slot: 0 }
                };
                assert_eq!(exit, want, "csr {csr:#x} = {:#x} on {tier:?}", cpu.x[1]);
            }
        }
    }

    #[test]
    fn satp_write_always_ends_the_block() {
        let mut cpu = hart();
        program(&cpu, &[i_type("csrrw", 0, 0, SATP)]);
        assert_eq!(step(&mut cpu, 64), BlockExit::Exit(ExitReason::Yield));
        assert_eq!(translate(&mut cpu, 64).insn_count, 1);
    }

    #[test]
    fn set_and_clear_with_immediates() {
        let mut cpu = hart();
        let end = program(
            &cpu,
            &[
                i_type("csrrsi", 0, 0b1010, MSCRATCH),
                i_type("csrrci", 0, 0b0010, MSCRATCH),
                i_type("csrrs", 6, 0, MSCRATCH),
            ],
        );
        run_to(&mut cpu, end);
        assert_eq!(cpu.x[6], 0b1000);
    }

    #[test]
    fn fflags_write_continues_the_block() {
        let mut cpu = hart();
        program(
            &cpu,
            &[i_type("csrrwi", 0, 0x1f, FFLAGS), i_type("addi", 1, 0, 1)],
        );
        assert_eq!(translate(&mut cpu, 64).insn_count, 3);
    }

    #[test]
    fn unknown_csr_raises_illegal_with_the_encoding() {
        let mut cpu = hart();
        let insn = i_type("csrrs", 1, 0, 0x7ff);
        program(&cpu, &[insn]);
        step(&mut cpu, 64);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (2, u64::from(insn)));
    }
}
