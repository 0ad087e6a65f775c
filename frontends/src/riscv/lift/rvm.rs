//! "M" extension for integer multiplication and division (Unprivileged ISA ch. 13).
//! The IR's division is total with exactly the RISC-V results for division by zero and
//! signed overflow (§13.2, Table 13.1), so each instruction is one IR op.

use emu_jit::ir::BinOp;

use super::{gen_arith, gen_arith_w, LiftCtx, Lifted};
use crate::riscv::decode::{InsnPattern, MASK_R};

pub static RV64M: &[InsnPattern] = &[
    InsnPattern::new("mul", MASK_R, 0x0200_0033, lift_mul),
    InsnPattern::new("mulh", MASK_R, 0x0200_1033, lift_mulh),
    InsnPattern::new("mulhsu", MASK_R, 0x0200_2033, lift_mulhsu),
    InsnPattern::new("mulhu", MASK_R, 0x0200_3033, lift_mulhu),
    InsnPattern::new("div", MASK_R, 0x0200_4033, lift_div),
    InsnPattern::new("divu", MASK_R, 0x0200_5033, lift_divu),
    InsnPattern::new("rem", MASK_R, 0x0200_6033, lift_rem),
    InsnPattern::new("remu", MASK_R, 0x0200_7033, lift_remu),
    InsnPattern::new("mulw", MASK_R, 0x0200_003b, lift_mulw),
    InsnPattern::new("divw", MASK_R, 0x0200_403b, lift_divw),
    InsnPattern::new("divuw", MASK_R, 0x0200_503b, lift_divuw),
    InsnPattern::new("remw", MASK_R, 0x0200_603b, lift_remw),
    InsnPattern::new("remuw", MASK_R, 0x0200_703b, lift_remuw),
];

fn lift_mul(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Mul)
}
fn lift_mulh(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MulHs)
}
/// mulhsu: rs1 signed × rs2 unsigned.
fn lift_mulhsu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MulHsu)
}
fn lift_mulhu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MulHu)
}
fn lift_div(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::DivS)
}
fn lift_divu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::DivU)
}
fn lift_rem(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::RemS)
}
fn lift_remu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::RemU)
}
fn lift_mulw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Mul)
}
/// The W divisions operate on the low 32 bits and sign-extend the 32-bit result, including
/// divuw/remuw (§13.2).
fn lift_divw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::DivS)
}
fn lift_divuw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::DivU)
}
fn lift_remw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::RemS)
}
fn lift_remuw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::RemU)
}

#[cfg(test)]
mod tests {
    use crate::riscv::translate::testutil::rr;

    const MIN: u64 = i64::MIN as u64;
    const NEG1: u64 = u64::MAX;

    #[test]
    fn multiply() {
        assert_eq!(rr("mul", 7, NEG1), (-7i64) as u64);
        assert_eq!(rr("mulh", MIN, MIN), 1 << 62);
        assert_eq!(rr("mulh", NEG1, 5), NEG1);
        assert_eq!(rr("mulhu", NEG1, NEG1), NEG1 - 1);
        // signed rs1 × unsigned rs2: -1 × (2^64 - 1) = -(2^64 - 1) → high half -1.
        assert_eq!(rr("mulhsu", NEG1, NEG1), NEG1);
        assert_eq!(rr("mulhsu", 2, NEG1), 1);
        assert_eq!(rr("mulw", 0x8000_0000, 2), 0);
        assert_eq!(rr("mulw", 0x4000_0000, 2), 0xffff_ffff_8000_0000);
    }

    /// Unprivileged ISA Table 13.1: division by zero and overflow.
    #[test]
    fn divide_edge_cases() {
        assert_eq!(rr("div", 7, 0), NEG1);
        assert_eq!(rr("divu", 7, 0), NEG1);
        assert_eq!(rr("rem", 7, 0), 7);
        assert_eq!(rr("remu", 7, 0), 7);
        assert_eq!(rr("div", MIN, NEG1), MIN);
        assert_eq!(rr("rem", MIN, NEG1), 0);
        assert_eq!(rr("div", (-7i64) as u64, 2), (-3i64) as u64);
        assert_eq!(rr("rem", (-7i64) as u64, 2), NEG1);
        assert_eq!(rr("divu", NEG1, 2), NEG1 >> 1);
        assert_eq!(rr("remu", 7, 3), 1);
    }

    #[test]
    fn divide_word() {
        assert_eq!(rr("divw", 7, 0), NEG1);
        assert_eq!(rr("divuw", 7, 0), NEG1);
        assert_eq!(rr("remw", 0xffff_ffff_0000_0007, 0), 7);
        assert_eq!(rr("remuw", 0x1_8000_0000, 0), 0xffff_ffff_8000_0000);
        assert_eq!(rr("divw", 0x8000_0000, 0xffff_ffff), 0xffff_ffff_8000_0000);
        assert_eq!(rr("remw", 0x8000_0000, 0xffff_ffff), 0);
        // divuw sign-extends its 32-bit result.
        assert_eq!(rr("divuw", 0xffff_fffe, 1), 0xffff_ffff_ffff_fffe);
        assert_eq!(rr("divuw", 0x1_0000_0010, 3), 5);
    }
}
