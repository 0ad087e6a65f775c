//! Zicond: integer conditional operations (Unprivileged ISA ch. "Zicond", v1.0).

use emu_jit::ir::{Builder, Cond, Type, Value};

use super::{gen_rr, LiftCtx, Lifted};
use crate::riscv::decode::{InsnPattern, MASK_R};

pub static ZICOND: &[InsnPattern] = &[
    InsnPattern::new("czero.eqz", MASK_R, 0x0e00_5033, lift_czero_eqz),
    InsnPattern::new("czero.nez", MASK_R, 0x0e00_7033, lift_czero_nez),
];

/// `rd = (rs2 cond 0) ? 0 : rs1`.
fn czero(b: &mut Builder, a: Value, c: Value, cond: Cond) -> Value {
    let zero = b.iconst(Type::I64, 0);
    let t = b.set_cond(cond, Type::I64, c, zero);
    b.select(Type::I64, t, zero, a)
}

fn lift_czero_eqz(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| czero(b, a, c, Cond::Eq))
}
fn lift_czero_nez(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| czero(b, a, c, Cond::Ne))
}

#[cfg(test)]
mod tests {
    use crate::riscv::translate::testutil::rr;

    #[test]
    fn czero() {
        assert_eq!(rr("czero.eqz", 42, 0), 0);
        assert_eq!(rr("czero.eqz", 42, 1 << 63), 42);
        assert_eq!(rr("czero.nez", 42, 0), 42);
        assert_eq!(rr("czero.nez", 42, 7), 0);
    }
}
