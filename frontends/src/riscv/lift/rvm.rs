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
