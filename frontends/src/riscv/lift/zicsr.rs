//! "Zicsr" control and status register instructions (Unprivileged ISA ch. 7). The access itself
//! (existence, privilege, read-only checks, side effects) is D1's `csr::HELPER_CSR`; the lifter
//! only decides which halves happen (§7.1: csrrw with rd = x0 does not read, csrrs/csrrc with
//! rs1 = x0 and the immediate forms with uimm = 0 do not write).

use emu_jit::ir::{ExitReason, Type};

use super::{LiftCtx, Lifted};
use crate::riscv::csr::{CSR_NO_READ, CSR_NO_WRITE, HELPER_CSR};
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
    } else {
        // A CSR write may change privilege-dependent translation state or enable interrupts.
        ctx.exit_next(ExitReason::Yield)
    }
}

#[cfg(test)]
mod tests {
    use crate::riscv::translate::testutil::*;
    use emu_jit::exec::BlockExit;
    use emu_jit::ir::ExitReason;

    const MSCRATCH: i32 = 0x340;
    const FFLAGS: i32 = 0x001;

    #[test]
    fn csr_write_ends_the_block_read_does_not() {
        let mut cpu = hart();
        let end = program(
            &cpu,
            &[
                i_type("csrrw", 3, 1, MSCRATCH),  // x3 = old mscratch, mscratch = x1
                i_type("csrrs", 4, 0, MSCRATCH),  // read only: the block continues
                i_type("csrrci", 5, 0, MSCRATCH), // uimm = 0: read only
            ],
        );
        cpu.x[1] = 0x55;
        assert_eq!(step(&mut cpu, 64), BlockExit::Exit(ExitReason::Yield));
        assert_eq!((cpu.x[3], cpu.common.pc), (0, RAM_BASE + 4));
        let block = translate(&mut cpu, 64);
        assert_eq!(block.insn_count, 3);
        run_to(&mut cpu, end);
        assert_eq!((cpu.x[4], cpu.x[5]), (0x55, 0x55));
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
