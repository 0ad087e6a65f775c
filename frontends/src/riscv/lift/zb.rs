//! Bit manipulation: Zba (address generation), Zbb (basic bit manipulation), Zbc (carry-less
//! multiplication) and Zbs (single-bit instructions), from "RISC-V Bit-Manipulation ISA
//! extensions" v1.0.0, ch. 2 (instruction encodings as in ch. 3).

use emu_jit::env::CpuCommon;
use emu_jit::helper::HelperDef;
use emu_jit::ir::{BinOp, Builder, HelperEffects, Type, UnOp, Value};

use super::{
    gen_arith, gen_arith_imm_val, gen_arith_imm_w, gen_arith_w, gen_rr, gen_unary, gen_zext_w,
    shamt5, shamt6, LiftCtx, Lifted,
};
use crate::riscv::decode::{InsnPattern, MASK_R, MASK_R_RS2, MASK_SHIFT64};

pub static ZBA: &[InsnPattern] = &[
    InsnPattern::new("add.uw", MASK_R, 0x0800_003b, lift_add_uw),
    InsnPattern::new("sh1add", MASK_R, 0x2000_2033, lift_sh1add),
    InsnPattern::new("sh2add", MASK_R, 0x2000_4033, lift_sh2add),
    InsnPattern::new("sh3add", MASK_R, 0x2000_6033, lift_sh3add),
    InsnPattern::new("sh1add.uw", MASK_R, 0x2000_203b, lift_sh1add_uw),
    InsnPattern::new("sh2add.uw", MASK_R, 0x2000_403b, lift_sh2add_uw),
    InsnPattern::new("sh3add.uw", MASK_R, 0x2000_603b, lift_sh3add_uw),
    InsnPattern::new("slli.uw", MASK_SHIFT64, 0x0800_101b, lift_slli_uw),
];

pub static ZBB: &[InsnPattern] = &[
    InsnPattern::new("andn", MASK_R, 0x4000_7033, lift_andn),
    InsnPattern::new("orn", MASK_R, 0x4000_6033, lift_orn),
    InsnPattern::new("xnor", MASK_R, 0x4000_4033, lift_xnor),
    InsnPattern::new("clz", MASK_R_RS2, 0x6000_1013, lift_clz),
    InsnPattern::new("clzw", MASK_R_RS2, 0x6000_101b, lift_clzw),
    InsnPattern::new("ctz", MASK_R_RS2, 0x6010_1013, lift_ctz),
    InsnPattern::new("ctzw", MASK_R_RS2, 0x6010_101b, lift_ctzw),
    InsnPattern::new("cpop", MASK_R_RS2, 0x6020_1013, lift_cpop),
    InsnPattern::new("cpopw", MASK_R_RS2, 0x6020_101b, lift_cpopw),
    InsnPattern::new("max", MASK_R, 0x0a00_6033, lift_max),
    InsnPattern::new("maxu", MASK_R, 0x0a00_7033, lift_maxu),
    InsnPattern::new("min", MASK_R, 0x0a00_4033, lift_min),
    InsnPattern::new("minu", MASK_R, 0x0a00_5033, lift_minu),
    InsnPattern::new("sext.b", MASK_R_RS2, 0x6040_1013, lift_sext_b),
    InsnPattern::new("sext.h", MASK_R_RS2, 0x6050_1013, lift_sext_h),
    InsnPattern::new("zext.h", MASK_R_RS2, 0x0800_403b, lift_zext_h),
    InsnPattern::new("rol", MASK_R, 0x6000_1033, lift_rol),
    InsnPattern::new("rolw", MASK_R, 0x6000_103b, lift_rolw),
    InsnPattern::new("ror", MASK_R, 0x6000_5033, lift_ror),
    InsnPattern::new("rorw", MASK_R, 0x6000_503b, lift_rorw),
    InsnPattern::new("rori", MASK_SHIFT64, 0x6000_5013, lift_rori),
    InsnPattern::new("roriw", MASK_R, 0x6000_501b, lift_roriw),
    InsnPattern::new("orc.b", MASK_R_RS2, 0x2870_5013, lift_orc_b),
    InsnPattern::new("rev8", MASK_R_RS2, 0x6b80_5013, lift_rev8),
];

pub static ZBC: &[InsnPattern] = &[
    InsnPattern::new("clmul", MASK_R, 0x0a00_1033, lift_clmul),
    InsnPattern::new("clmulr", MASK_R, 0x0a00_2033, lift_clmulr),
    InsnPattern::new("clmulh", MASK_R, 0x0a00_3033, lift_clmulh),
];

pub static ZBS: &[InsnPattern] = &[
    InsnPattern::new("bclr", MASK_R, 0x4800_1033, lift_bclr),
    InsnPattern::new("bclri", MASK_SHIFT64, 0x4800_1013, lift_bclri),
    InsnPattern::new("bext", MASK_R, 0x4800_5033, lift_bext),
    InsnPattern::new("bexti", MASK_SHIFT64, 0x4800_5013, lift_bexti),
    InsnPattern::new("binv", MASK_R, 0x6800_1033, lift_binv),
    InsnPattern::new("binvi", MASK_SHIFT64, 0x6800_1013, lift_binvi),
    InsnPattern::new("bset", MASK_R, 0x2800_1033, lift_bset),
    InsnPattern::new("bseti", MASK_SHIFT64, 0x2800_1013, lift_bseti),
];

// Zba

/// `rs2 + (zext32(rs1) if uw) << sh`.
fn shadd(b: &mut Builder, a: Value, c: Value, sh: u64, uw: bool) -> Value {
    let a = if uw { gen_zext_w(b, a) } else { a };
    let a = if sh == 0 {
        a
    } else {
        b.binary_imm(BinOp::Shl, Type::I64, a, sh)
    };
    b.binary(BinOp::Add, Type::I64, c, a)
}

fn lift_add_uw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 0, true))
}
fn lift_sh1add(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 1, false))
}
fn lift_sh2add(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 2, false))
}
fn lift_sh3add(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 3, false))
}
fn lift_sh1add_uw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 1, true))
}
fn lift_sh2add_uw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 2, true))
}
fn lift_sh3add_uw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| shadd(b, a, c, 3, true))
}
fn lift_slli_uw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let sh = shamt6(insn);
    gen_unary(ctx, insn, |b, a| {
        let a = gen_zext_w(b, a);
        b.binary_imm(BinOp::Shl, Type::I64, a, sh)
    })
}

// Zbb

fn lift_andn(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::AndNot)
}
fn lift_orn(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::OrNot)
}
fn lift_xnor(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::XorNot)
}

/// A count on the full register.
fn count64(ctx: &mut LiftCtx<'_>, insn: u32, op: UnOp) -> Lifted {
    gen_unary(ctx, insn, |b, a| b.unary(op, Type::I64, a))
}

/// A count on the low word; the result (0..=32) is zero-extended.
fn count32(ctx: &mut LiftCtx<'_>, insn: u32, op: UnOp) -> Lifted {
    gen_unary(ctx, insn, |b, a| {
        let w = b.trunc(Type::I64, Type::I32, a);
        let r = b.unary(op, Type::I32, w);
        b.zext(Type::I32, Type::I64, r)
    })
}

fn lift_clz(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    count64(ctx, insn, UnOp::Clz)
}
fn lift_clzw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    count32(ctx, insn, UnOp::Clz)
}
fn lift_ctz(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    count64(ctx, insn, UnOp::Ctz)
}
fn lift_ctzw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    count32(ctx, insn, UnOp::Ctz)
}
fn lift_cpop(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    count64(ctx, insn, UnOp::Popcnt)
}
fn lift_cpopw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    count32(ctx, insn, UnOp::Popcnt)
}
fn lift_max(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MaxS)
}
fn lift_maxu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MaxU)
}
fn lift_min(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MinS)
}
fn lift_minu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::MinU)
}

fn extend(ctx: &mut LiftCtx<'_>, insn: u32, from: Type, signed: bool) -> Lifted {
    gen_unary(ctx, insn, |b, a| {
        let t = b.trunc(Type::I64, from, a);
        if signed {
            b.sext(from, Type::I64, t)
        } else {
            b.zext(from, Type::I64, t)
        }
    })
}

fn lift_sext_b(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    extend(ctx, insn, Type::I8, true)
}
fn lift_sext_h(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    extend(ctx, insn, Type::I16, true)
}
fn lift_zext_h(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    extend(ctx, insn, Type::I16, false)
}
fn lift_rol(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Rotl)
}
fn lift_rolw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Rotl)
}
fn lift_ror(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Rotr)
}
fn lift_rorw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Rotr)
}
fn lift_rori(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::Rotr, shamt6(insn))
}
fn lift_roriw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_w(ctx, insn, BinOp::Rotr, shamt5(insn))
}

/// orc.b: each byte becomes 0xff if non-zero, else 0. Adding 0x7f to the low seven bits of a
/// byte carries into its top bit iff they are non-zero; OR with the byte itself makes the top
/// bit "byte != 0". Multiplying the isolated flags (now at bit 0 of each byte) by 0xff fills
/// each byte without carries between bytes.
fn lift_orc_b(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    gen_unary(ctx, insn, |b, a| {
        let low = b.binary_imm(BinOp::And, Type::I64, a, LOW7);
        let carried = b.binary_imm(BinOp::Add, Type::I64, low, LOW7);
        let any = b.binary(BinOp::Or, Type::I64, carried, a);
        let top = b.binary_imm(BinOp::And, Type::I64, any, !LOW7);
        let flags = b.binary_imm(BinOp::Shr, Type::I64, top, 7);
        b.binary_imm(BinOp::Mul, Type::I64, flags, 0xff)
    })
}

fn lift_rev8(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_unary(ctx, insn, |b, a| b.unary(UnOp::Bswap, Type::I64, a))
}

// Zbc: carry-less multiplication as pure helpers.

/// The 128-bit carry-less product of `a` and `b`: the host's own carry-less multiply where it
/// has one (x86-64 PCLMULQDQ), the definition's shift-and-xor otherwise.
pub fn clmul128(a: u64, b: u64) -> u128 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("pclmulqdq") {
        // SAFETY: the CPU has PCLMULQDQ (checked just above; the answer is cached by std).
        return unsafe { clmul128_pclmul(a, b) };
    }
    clmul128_soft(a, b)
}

/// [`clmul128`] as the definition computes it (Bitmanip §2.3): XOR of `a` shifted by every set
/// bit of `b`.
pub fn clmul128_soft(a: u64, b: u64) -> u128 {
    (0..64)
        .filter(|i| (b >> i) & 1 != 0)
        .fold(0u128, |acc, i| acc ^ (u128::from(a) << i))
}

/// [`clmul128`] with PCLMULQDQ (the low quadwords of both operands, immediate 0).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
fn clmul128_pclmul(a: u64, b: u64) -> u128 {
    use std::arch::x86_64::{_mm_clmulepi64_si128, _mm_cvtsi64_si128, _mm_storeu_si128};
    let product = _mm_clmulepi64_si128(_mm_cvtsi64_si128(a as i64), _mm_cvtsi64_si128(b as i64), 0);
    let mut out = [0u8; 16];
    // SAFETY: `out` is 16 writable bytes; the store has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), product) };
    u128::from_le_bytes(out)
}

extern "C" fn helper_clmul(_: *mut CpuCommon, a: u64, b: u64, _: u64, _: u64) -> u64 {
    clmul128(a, b) as u64
}

extern "C" fn helper_clmulh(_: *mut CpuCommon, a: u64, b: u64, _: u64, _: u64) -> u64 {
    (clmul128(a, b) >> 64) as u64
}

/// clmulr: bits 126..63 of the product (the bit-reversed clmul of the reversed operands).
extern "C" fn helper_clmulr(_: *mut CpuCommon, a: u64, b: u64, _: u64, _: u64) -> u64 {
    (clmul128(a, b) >> 63) as u64
}

const PURE: HelperEffects = HelperEffects {
    reads_state: false,
    writes_state: false,
    may_raise: false,
};

pub static HELPER_CLMUL: HelperDef = HelperDef {
    name: "clmul",
    func: helper_clmul,
    args: 2,
    ret: true,
    effects: PURE,
};
pub static HELPER_CLMULH: HelperDef = HelperDef {
    name: "clmulh",
    func: helper_clmulh,
    args: 2,
    ret: true,
    effects: PURE,
};
pub static HELPER_CLMULR: HelperDef = HelperDef {
    name: "clmulr",
    func: helper_clmulr,
    args: 2,
    ret: true,
    effects: PURE,
};

/// Every helper of this module, for the guest's helper table.
pub static HELPERS: &[&HelperDef] = &[&HELPER_CLMUL, &HELPER_CLMULH, &HELPER_CLMULR];

fn clmul_call(ctx: &mut LiftCtx<'_>, insn: u32, def: &'static HelperDef) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| match b.call(def, &[a, c]) {
        Some(r) => r,
        // Unreachable: the helpers are declared with a result.
        None => b.iconst(Type::I64, 0),
    })
}

fn lift_clmul(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    clmul_call(ctx, insn, &HELPER_CLMUL)
}
fn lift_clmulh(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    clmul_call(ctx, insn, &HELPER_CLMULH)
}
fn lift_clmulr(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    clmul_call(ctx, insn, &HELPER_CLMULR)
}

// Zbs: the bit index is rs2 / shamt modulo 64.

/// `1 << index`.
fn bit(b: &mut Builder, index: Value) -> Value {
    let one = b.iconst(Type::I64, 1);
    b.binary(BinOp::Shl, Type::I64, one, index)
}

fn lift_bclr(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| {
        let m = bit(b, c);
        b.binary(BinOp::AndNot, Type::I64, a, m)
    })
}
fn lift_bclri(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::And, !(1u64 << shamt6(insn)))
}
fn lift_bext(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| {
        let s = b.binary(BinOp::Shr, Type::I64, a, c);
        b.binary_imm(BinOp::And, Type::I64, s, 1)
    })
}
fn lift_bexti(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let sh = shamt6(insn);
    gen_unary(ctx, insn, |b, a| {
        let s = b.binary_imm(BinOp::Shr, Type::I64, a, sh);
        b.binary_imm(BinOp::And, Type::I64, s, 1)
    })
}
fn lift_binv(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| {
        let m = bit(b, c);
        b.binary(BinOp::Xor, Type::I64, a, m)
    })
}
fn lift_binvi(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::Xor, 1u64 << shamt6(insn))
}
fn lift_bset(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_rr(ctx, insn, |b, a, c| {
        let m = bit(b, c);
        b.binary(BinOp::Or, Type::I64, a, m)
    })
}
fn lift_bseti(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::Or, 1u64 << shamt6(insn))
}

#[cfg(test)]
mod tests {
    use super::{clmul128, clmul128_soft};
    use crate::riscv::translate::testutil::{ri, rr};

    const NEG1: u64 = u64::MAX;

    #[test]
    fn zba() {
        assert_eq!(rr("add.uw", 0xffff_ffff_8000_0000, 1), 0x8000_0001);
        assert_eq!(rr("sh1add", 3, 1), 7);
        assert_eq!(rr("sh2add", 3, 1), 13);
        assert_eq!(rr("sh3add", NEG1, 0), (-8i64) as u64);
        assert_eq!(rr("sh1add.uw", 0xffff_ffff_0000_0001, 1), 3);
        assert_eq!(rr("sh2add.uw", 0x1_8000_0000, 0), 0x2_0000_0000);
        assert_eq!(rr("sh3add.uw", NEG1, 8), 0x7_ffff_fff8 + 8);
        assert_eq!(ri("slli.uw", NEG1, 4), 0xf_ffff_fff0);
        assert_eq!(ri("slli.uw", NEG1, 63), 1 << 63);
    }

    #[test]
    fn zbb_logic_and_counts() {
        assert_eq!(rr("andn", 0xff, 0x0f), 0xf0);
        assert_eq!(rr("orn", 0, NEG1 - 1), 1);
        assert_eq!(rr("xnor", 0x0f, 0xff), !0xf0);
        assert_eq!(ri("clz", 0, 0), 64);
        assert_eq!(ri("clz", 1, 0), 63);
        assert_eq!(ri("clzw", 0xffff_ffff_0000_0000, 0), 32);
        assert_eq!(ri("clzw", 0x8000_0000, 0), 0);
        assert_eq!(ri("ctz", 0, 0), 64);
        assert_eq!(ri("ctz", 1 << 40, 0), 40);
        assert_eq!(ri("ctzw", 1 << 40, 0), 32);
        assert_eq!(ri("ctzw", 0x8000_0000, 0), 31);
        assert_eq!(ri("cpop", NEG1, 0), 64);
        assert_eq!(ri("cpopw", NEG1, 0), 32);
    }

    #[test]
    fn zbb_min_max_extend_rotate() {
        assert_eq!(rr("max", NEG1, 1), 1);
        assert_eq!(rr("maxu", NEG1, 1), NEG1);
        assert_eq!(rr("min", NEG1, 1), NEG1);
        assert_eq!(rr("minu", NEG1, 1), 1);
        assert_eq!(ri("sext.b", 0x80, 0), 0xffff_ffff_ffff_ff80);
        assert_eq!(ri("sext.h", 0x1_7fff, 0), 0x7fff);
        assert_eq!(ri("sext.h", 0x8000, 0), 0xffff_ffff_ffff_8000);
        assert_eq!(ri("zext.h", NEG1, 0), 0xffff);
        assert_eq!(rr("rol", 1 << 63, 1), 1);
        assert_eq!(rr("ror", 1, 65), 1 << 63);
        assert_eq!(rr("rolw", 0x8000_0000, 1), 1);
        assert_eq!(rr("rorw", 1, 1), 0xffff_ffff_8000_0000);
        assert_eq!(ri("rori", 0x10, 4), 1);
        assert_eq!(ri("rori", 1, 63), 2);
        assert_eq!(ri("roriw", 1, 31), 2);
        assert_eq!(ri("roriw", 2, 2), 0xffff_ffff_8000_0000);
    }

    #[test]
    fn zbb_orc_b_and_rev8() {
        assert_eq!(ri("orc.b", 0x0001_0080_0000_7f00, 0), 0x00ff_00ff_0000_ff00);
        assert_eq!(ri("orc.b", NEG1, 0), NEG1);
        assert_eq!(ri("orc.b", 0, 0), 0);
        assert_eq!(ri("orc.b", 0x8000_0000_0000_0001, 0), 0xff00_0000_0000_00ff);
        assert_eq!(ri("rev8", 0x0102_0304_0506_0708, 0), 0x0807_0605_0403_0201);
    }

    #[test]
    fn zbs() {
        assert_eq!(rr("bclr", NEG1, 64 + 3), !8);
        assert_eq!(ri("bclri", NEG1, 63), NEG1 >> 1);
        assert_eq!(rr("bext", 1 << 40, 40), 1);
        assert_eq!(ri("bexti", 1 << 40, 39), 0);
        assert_eq!(rr("binv", 0, 63), 1 << 63);
        assert_eq!(ri("binvi", 1, 0), 0);
        assert_eq!(rr("bset", 0, 5), 32);
        assert_eq!(ri("bseti", 0, 33), 1 << 33);
    }

    /// Reference carry-less multiply: the definition's loop, bit by bit (Bitmanip §2.3).
    fn clmul_ref(a: u64, b: u64) -> (u64, u64, u64) {
        let (mut lo, mut hi, mut rev) = (0u64, 0u64, 0u64);
        for i in 0..64 {
            if (b >> i) & 1 != 0 {
                lo ^= a << i;
                if i > 0 {
                    hi ^= a >> (64 - i);
                }
                rev ^= a >> (63 - i);
            }
        }
        (lo, hi, rev)
    }

    #[test]
    fn zbc_against_reference_loop() {
        let cases = [
            (0u64, 0u64),
            (1, NEG1),
            (NEG1, NEG1),
            (0x8000_0000_0000_0001, 0x8000_0000_0000_0001),
            (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
            (3, 3),
        ];
        for (a, b) in cases {
            let (lo, hi, rev) = clmul_ref(a, b);
            assert_eq!(clmul128(a, b) as u64, lo);
            assert_eq!(rr("clmul", a, b), lo, "clmul {a:#x} {b:#x}");
            assert_eq!(rr("clmulh", a, b), hi, "clmulh {a:#x} {b:#x}");
            assert_eq!(rr("clmulr", a, b), rev, "clmulr {a:#x} {b:#x}");
        }
        assert_eq!(rr("clmul", 3, 3), 5);
    }

    /// The host instruction and the definition give the same product (on a host without
    /// PCLMULQDQ both sides are the definition and this checks nothing).
    #[test]
    fn clmul128_host_matches_definition() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xc1c1);
        for _ in 0..10_000 {
            let (a, b): (u64, u64) = (rng.gen(), rng.gen());
            assert_eq!(clmul128(a, b), clmul128_soft(a, b), "{a:#x} {b:#x}");
        }
        assert_eq!(clmul128(NEG1, NEG1), clmul128_soft(NEG1, NEG1));
    }
}
