//! "F" and "D" standard extensions (Unprivileged ISA ch. 20 and 21): loads/stores, arithmetic,
//! conversions, moves and compares on the floating-point registers.
//!
//! Arithmetic is a helper call into `riscv::fp` (exact IEEE-754 with fflags); moves, loads and
//! stores are plain IR. Every instruction is illegal while mstatus.FS is Off (Privileged ISA
//! §3.1.6.6), and one with a reserved static rounding mode (5, 6) is illegal (§20.2); a dynamic
//! rm with a reserved `frm` is checked at run time by the helper. While the block's flags say
//! mstatus.FS is not Dirty, an instruction that writes FP state (registers or fflags) first
//! calls the helper that makes it Dirty (Privileged ISA §3.1.6.6), after any check that may
//! trap, so a trapping instruction leaves FS as it was.

use emu_jit::helper::HelperDef;
use emu_jit::ir::{BinOp, Cond, MemOp, Type, Value};

use super::{gen_get_gpr, gen_set_gpr, gen_sext_w, gen_zext_w, LiftCtx, Lifted};
use crate::riscv::cpu::freg_offset;
use crate::riscv::csr::HELPER_MARK_FS_DIRTY;
use crate::riscv::decode::{funct3, imm_i, imm_s, rd, rs1, rs2, rs3, InsnPattern};
use crate::riscv::fp::*;

/// Upper 32 bits of a NaN-boxed f32 (§21.2).
const BOX: u64 = 0xffff_ffff_0000_0000;

fn get_freg(ctx: &mut LiftCtx<'_>, r: u32) -> Value {
    ctx.b.load_global(Type::I64, freg_offset(r))
}

/// Mark mstatus.FS Dirty unless the block's flags say it already is.
fn mark_fs_dirty(ctx: &mut LiftCtx<'_>) {
    if !ctx.flags.fs_dirty {
        ctx.b.call(&HELPER_MARK_FS_DIRTY, &[]);
        ctx.flags.fs_dirty = true;
    }
}

fn set_freg(ctx: &mut LiftCtx<'_>, r: u32, v: Value) {
    mark_fs_dirty(ctx);
    ctx.b.store_global(Type::I64, freg_offset(r), v);
}

/// The rm field is a rounding mode or DYN; 5 and 6 are reserved (§20.2, Table 20.1).
fn rm_valid(insn: u32) -> bool {
    !matches!(funct3(insn), 5 | 6)
}

/// flw / fld (§20.5, §21.3): misaligned accesses are performed (the slow path handles them).
fn gen_fp_load(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8) -> Lifted {
    if !ctx.flags.fp_enabled {
        return Lifted::Illegal;
    }
    let base = gen_get_gpr(ctx.b, rs1(insn));
    let addr = ctx
        .b
        .binary_imm(BinOp::Add, Type::I64, base, imm_i(insn) as u64);
    let mem = MemOp::new(size_log2, false, false);
    let mut v = ctx.b.load(Type::I64, mem, ctx.flags.mmu_idx, addr);
    if size_log2 == 2 {
        v = ctx.b.binary_imm(BinOp::Or, Type::I64, v, BOX);
    }
    set_freg(ctx, rd(insn), v);
    Lifted::Continue
}

/// fsw / fsd: fsw stores the low 32 bits whatever the boxing (§21.2).
fn gen_fp_store(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8) -> Lifted {
    if !ctx.flags.fp_enabled {
        return Lifted::Illegal;
    }
    let base = gen_get_gpr(ctx.b, rs1(insn));
    let addr = ctx
        .b
        .binary_imm(BinOp::Add, Type::I64, base, imm_s(insn) as u64);
    let v = get_freg(ctx, rs2(insn));
    let mem = MemOp::new(size_log2, false, false);
    ctx.b.store(Type::I64, mem, ctx.flags.mmu_idx, v, addr);
    Lifted::Continue
}

/// Where a helper's operands come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Srcs {
    /// f[rs1]
    F1,
    /// f[rs1], f[rs2]
    F2,
    /// f[rs1], f[rs2], f[rs3]
    F3,
    /// x[rs1]
    X1,
}

/// Where a helper's result goes, and whether the helper writes fflags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dst {
    /// f[rd] (and fflags).
    F,
    /// x[rd] and fflags.
    XFlags,
    /// x[rd] only (fclass).
    X,
}

/// `dst = helper(srcs.., insn if the helper rounds)`. The helper takes the raw instruction when
/// it has one argument more than its sources: its rm field, and the trap value if DYN meets a
/// reserved `frm`.
fn gen_helper(
    ctx: &mut LiftCtx<'_>,
    insn: u32,
    h: &'static HelperDef,
    srcs: Srcs,
    dst: Dst,
) -> Lifted {
    if !ctx.flags.fp_enabled {
        return Lifted::Illegal;
    }
    let regs: &[u32] = match srcs {
        Srcs::F1 | Srcs::X1 => &[rs1(insn)],
        Srcs::F2 => &[rs1(insn), rs2(insn)],
        Srcs::F3 => &[rs1(insn), rs2(insn), rs3(insn)],
    };
    let rounds = usize::from(h.args) > regs.len();
    // (Every FP helper returns a value; checking here keeps a table mistake from emitting half
    // an instruction.)
    if !h.ret || (rounds && !rm_valid(insn)) {
        return Lifted::Illegal;
    }
    let mut args = Vec::with_capacity(4);
    for &r in regs {
        args.push(if srcs == Srcs::X1 {
            gen_get_gpr(ctx.b, r)
        } else {
            get_freg(ctx, r)
        });
    }
    if rounds {
        args.push(ctx.b.iconst(Type::I64, u64::from(insn)));
    }
    let Some(r) = ctx.b.call(h, &args) else {
        return Lifted::Illegal;
    };
    match dst {
        Dst::F => set_freg(ctx, rd(insn), r),
        Dst::XFlags => {
            mark_fs_dirty(ctx);
            gen_set_gpr(ctx.b, rd(insn), r);
        }
        Dst::X => gen_set_gpr(ctx.b, rd(insn), r),
    }
    Lifted::Continue
}

/// fmv.x.w (sign-extends the low 32 bits, §20.9) and fmv.x.d (§21.7).
fn gen_fmv_x(ctx: &mut LiftCtx<'_>, insn: u32, double: bool) -> Lifted {
    if !ctx.flags.fp_enabled {
        return Lifted::Illegal;
    }
    let mut v = get_freg(ctx, rs1(insn));
    if !double {
        v = gen_sext_w(ctx.b, v);
    }
    gen_set_gpr(ctx.b, rd(insn), v);
    Lifted::Continue
}

/// fmv.w.x (boxes the low 32 bits) and fmv.d.x.
fn gen_fmv_f(ctx: &mut LiftCtx<'_>, insn: u32, double: bool) -> Lifted {
    if !ctx.flags.fp_enabled {
        return Lifted::Illegal;
    }
    let mut v = gen_get_gpr(ctx.b, rs1(insn));
    if !double {
        v = gen_zext_w(ctx.b, v);
        v = ctx.b.binary_imm(BinOp::Or, Type::I64, v, BOX);
    }
    set_freg(ctx, rd(insn), v);
    Lifted::Continue
}

/// An f32 operand as the arithmetic sees it, still in its boxed 64-bit form: the register if
/// properly NaN-boxed, else the boxed canonical NaN (§21.2).
fn gen_unbox_s(ctx: &mut LiftCtx<'_>, v: Value) -> Value {
    let hi = ctx.b.binary_imm(BinOp::Shr, Type::I64, v, 32);
    let all_ones = ctx.b.iconst(Type::I64, 0xffff_ffff);
    let boxed = ctx.b.set_cond(Cond::Eq, Type::I64, hi, all_ones);
    let nan = ctx.b.iconst(Type::I64, BOX | BINARY32.canonical_nan());
    ctx.b.select(Type::I64, boxed, v, nan)
}

/// fsgnj/fsgnjn/fsgnjx (§20.7, §21.6) in IR: only the sign bit changes, no flags, no rounding,
/// so no helper call (`fmv`, `fneg` and `fabs` are these instructions).
fn gen_sgnj(ctx: &mut LiftCtx<'_>, insn: u32, op: SgnjOp, double: bool) -> Lifted {
    if !ctx.flags.fp_enabled {
        return Lifted::Illegal;
    }
    let mut a = get_freg(ctx, rs1(insn));
    let mut b = get_freg(ctx, rs2(insn));
    if !double {
        // The boxed operands keep their all-ones upper half, so the result is boxed too.
        a = gen_unbox_s(ctx, a);
        b = gen_unbox_s(ctx, b);
    }
    let sign_bit = if double { 1u64 << 63 } else { 1 << 31 };
    let sign = ctx.b.iconst(Type::I64, sign_bit);
    let r = match op {
        SgnjOp::Sgnj | SgnjOp::Sgnjn => {
            let mag = ctx.b.binary(BinOp::AndNot, Type::I64, a, sign);
            let s = if op == SgnjOp::Sgnj {
                ctx.b.binary(BinOp::And, Type::I64, b, sign)
            } else {
                ctx.b.binary(BinOp::AndNot, Type::I64, sign, b)
            };
            ctx.b.binary(BinOp::Or, Type::I64, mag, s)
        }
        SgnjOp::Sgnjx => {
            let s = ctx.b.binary(BinOp::And, Type::I64, b, sign);
            ctx.b.binary(BinOp::Xor, Type::I64, a, s)
        }
    };
    set_freg(ctx, rd(insn), r);
    Lifted::Continue
}

// Encodings (Unprivileged ISA ch. 34, RV32F/RV64F/RV32D/RV64D tables).
const OP_FP: u32 = 0b101_0011;
const LOAD_FP: u32 = 0b000_0111;
const STORE_FP: u32 = 0b010_0111;
const MADD: u32 = 0b100_0011;
const MSUB: u32 = 0b100_0111;
const NMSUB: u32 = 0b100_1011;
const NMADD: u32 = 0b100_1111;

/// funct3 + opcode (loads, stores).
const M_F3: u32 = 0x0000_707f;
/// fmt (bits 26:25) + opcode (R4-type).
const M_R4: u32 = 0x0600_007f;
/// funct7 + opcode (rm in funct3).
const M_F7: u32 = 0xfe00_007f;
/// funct7 + rs2 + opcode.
const M_F7_RS2: u32 = 0xfff0_007f;
/// funct7 + funct3 + opcode.
const M_F7_F3: u32 = 0xfe00_707f;
/// funct7 + rs2 + funct3 + opcode.
const M_F7_RS2_F3: u32 = 0xfff0_707f;

const fn op_fp(funct7: u32, rs2: u32, funct3: u32) -> u32 {
    (funct7 << 25) | (rs2 << 20) | (funct3 << 12) | OP_FP
}

const fn r4(opcode: u32, fmt: u32) -> u32 {
    (fmt << 25) | opcode
}

const fn ls(opcode: u32, width: u32) -> u32 {
    (width << 12) | opcode
}

macro_rules! h {
    ($name:literal, $mask:expr, $bits:expr, $h:ident, $srcs:ident, $dst:ident) => {
        InsnPattern::new($name, $mask, $bits, |ctx, insn| {
            gen_helper(ctx, insn, &$h, Srcs::$srcs, Dst::$dst)
        })
    };
}

/// RV32F + RV64F instructions (ch. 20).
pub static RV64F: &[InsnPattern] = &[
    InsnPattern::new("flw", M_F3, ls(LOAD_FP, 2), |c, i| gen_fp_load(c, i, 2)),
    InsnPattern::new("fsw", M_F3, ls(STORE_FP, 2), |c, i| gen_fp_store(c, i, 2)),
    h!("fmadd.s", M_R4, r4(MADD, 0), HELPER_FMADD_S, F3, F),
    h!("fmsub.s", M_R4, r4(MSUB, 0), HELPER_FMSUB_S, F3, F),
    h!("fnmsub.s", M_R4, r4(NMSUB, 0), HELPER_FNMSUB_S, F3, F),
    h!("fnmadd.s", M_R4, r4(NMADD, 0), HELPER_FNMADD_S, F3, F),
    h!("fadd.s", M_F7, op_fp(0x00, 0, 0), HELPER_FADD_S, F2, F),
    h!("fsub.s", M_F7, op_fp(0x04, 0, 0), HELPER_FSUB_S, F2, F),
    h!("fmul.s", M_F7, op_fp(0x08, 0, 0), HELPER_FMUL_S, F2, F),
    h!("fdiv.s", M_F7, op_fp(0x0c, 0, 0), HELPER_FDIV_S, F2, F),
    h!(
        "fsqrt.s",
        M_F7_RS2,
        op_fp(0x2c, 0, 0),
        HELPER_FSQRT_S,
        F1,
        F
    ),
    InsnPattern::new("fsgnj.s", M_F7_F3, op_fp(0x10, 0, 0), |c, i| {
        gen_sgnj(c, i, SgnjOp::Sgnj, false)
    }),
    InsnPattern::new("fsgnjn.s", M_F7_F3, op_fp(0x10, 0, 1), |c, i| {
        gen_sgnj(c, i, SgnjOp::Sgnjn, false)
    }),
    InsnPattern::new("fsgnjx.s", M_F7_F3, op_fp(0x10, 0, 2), |c, i| {
        gen_sgnj(c, i, SgnjOp::Sgnjx, false)
    }),
    h!("fmin.s", M_F7_F3, op_fp(0x14, 0, 0), HELPER_FMIN_S, F2, F),
    h!("fmax.s", M_F7_F3, op_fp(0x14, 0, 1), HELPER_FMAX_S, F2, F),
    h!(
        "fcvt.w.s",
        M_F7_RS2,
        op_fp(0x60, 0, 0),
        HELPER_FCVT_W_S,
        F1,
        XFlags
    ),
    h!(
        "fcvt.wu.s",
        M_F7_RS2,
        op_fp(0x60, 1, 0),
        HELPER_FCVT_WU_S,
        F1,
        XFlags
    ),
    h!(
        "fcvt.l.s",
        M_F7_RS2,
        op_fp(0x60, 2, 0),
        HELPER_FCVT_L_S,
        F1,
        XFlags
    ),
    h!(
        "fcvt.lu.s",
        M_F7_RS2,
        op_fp(0x60, 3, 0),
        HELPER_FCVT_LU_S,
        F1,
        XFlags
    ),
    InsnPattern::new("fmv.x.w", M_F7_RS2_F3, op_fp(0x70, 0, 0), |c, i| {
        gen_fmv_x(c, i, false)
    }),
    h!(
        "feq.s",
        M_F7_F3,
        op_fp(0x50, 0, 2),
        HELPER_FEQ_S,
        F2,
        XFlags
    ),
    h!(
        "flt.s",
        M_F7_F3,
        op_fp(0x50, 0, 1),
        HELPER_FLT_S,
        F2,
        XFlags
    ),
    h!(
        "fle.s",
        M_F7_F3,
        op_fp(0x50, 0, 0),
        HELPER_FLE_S,
        F2,
        XFlags
    ),
    h!(
        "fclass.s",
        M_F7_RS2_F3,
        op_fp(0x70, 0, 1),
        HELPER_FCLASS_S,
        F1,
        X
    ),
    h!(
        "fcvt.s.w",
        M_F7_RS2,
        op_fp(0x68, 0, 0),
        HELPER_FCVT_S_W,
        X1,
        F
    ),
    h!(
        "fcvt.s.wu",
        M_F7_RS2,
        op_fp(0x68, 1, 0),
        HELPER_FCVT_S_WU,
        X1,
        F
    ),
    h!(
        "fcvt.s.l",
        M_F7_RS2,
        op_fp(0x68, 2, 0),
        HELPER_FCVT_S_L,
        X1,
        F
    ),
    h!(
        "fcvt.s.lu",
        M_F7_RS2,
        op_fp(0x68, 3, 0),
        HELPER_FCVT_S_LU,
        X1,
        F
    ),
    InsnPattern::new("fmv.w.x", M_F7_RS2_F3, op_fp(0x78, 0, 0), |c, i| {
        gen_fmv_f(c, i, false)
    }),
];

/// RV32D + RV64D instructions (ch. 21).
pub static RV64D: &[InsnPattern] = &[
    InsnPattern::new("fld", M_F3, ls(LOAD_FP, 3), |c, i| gen_fp_load(c, i, 3)),
    InsnPattern::new("fsd", M_F3, ls(STORE_FP, 3), |c, i| gen_fp_store(c, i, 3)),
    h!("fmadd.d", M_R4, r4(MADD, 1), HELPER_FMADD_D, F3, F),
    h!("fmsub.d", M_R4, r4(MSUB, 1), HELPER_FMSUB_D, F3, F),
    h!("fnmsub.d", M_R4, r4(NMSUB, 1), HELPER_FNMSUB_D, F3, F),
    h!("fnmadd.d", M_R4, r4(NMADD, 1), HELPER_FNMADD_D, F3, F),
    h!("fadd.d", M_F7, op_fp(0x01, 0, 0), HELPER_FADD_D, F2, F),
    h!("fsub.d", M_F7, op_fp(0x05, 0, 0), HELPER_FSUB_D, F2, F),
    h!("fmul.d", M_F7, op_fp(0x09, 0, 0), HELPER_FMUL_D, F2, F),
    h!("fdiv.d", M_F7, op_fp(0x0d, 0, 0), HELPER_FDIV_D, F2, F),
    h!(
        "fsqrt.d",
        M_F7_RS2,
        op_fp(0x2d, 0, 0),
        HELPER_FSQRT_D,
        F1,
        F
    ),
    InsnPattern::new("fsgnj.d", M_F7_F3, op_fp(0x11, 0, 0), |c, i| {
        gen_sgnj(c, i, SgnjOp::Sgnj, true)
    }),
    InsnPattern::new("fsgnjn.d", M_F7_F3, op_fp(0x11, 0, 1), |c, i| {
        gen_sgnj(c, i, SgnjOp::Sgnjn, true)
    }),
    InsnPattern::new("fsgnjx.d", M_F7_F3, op_fp(0x11, 0, 2), |c, i| {
        gen_sgnj(c, i, SgnjOp::Sgnjx, true)
    }),
    h!("fmin.d", M_F7_F3, op_fp(0x15, 0, 0), HELPER_FMIN_D, F2, F),
    h!("fmax.d", M_F7_F3, op_fp(0x15, 0, 1), HELPER_FMAX_D, F2, F),
    h!(
        "fcvt.s.d",
        M_F7_RS2,
        op_fp(0x20, 1, 0),
        HELPER_FCVT_S_D,
        F1,
        F
    ),
    h!(
        "fcvt.d.s",
        M_F7_RS2,
        op_fp(0x21, 0, 0),
        HELPER_FCVT_D_S,
        F1,
        F
    ),
    h!(
        "feq.d",
        M_F7_F3,
        op_fp(0x51, 0, 2),
        HELPER_FEQ_D,
        F2,
        XFlags
    ),
    h!(
        "flt.d",
        M_F7_F3,
        op_fp(0x51, 0, 1),
        HELPER_FLT_D,
        F2,
        XFlags
    ),
    h!(
        "fle.d",
        M_F7_F3,
        op_fp(0x51, 0, 0),
        HELPER_FLE_D,
        F2,
        XFlags
    ),
    h!(
        "fclass.d",
        M_F7_RS2_F3,
        op_fp(0x71, 0, 1),
        HELPER_FCLASS_D,
        F1,
        X
    ),
    h!(
        "fcvt.w.d",
        M_F7_RS2,
        op_fp(0x61, 0, 0),
        HELPER_FCVT_W_D,
        F1,
        XFlags
    ),
    h!(
        "fcvt.wu.d",
        M_F7_RS2,
        op_fp(0x61, 1, 0),
        HELPER_FCVT_WU_D,
        F1,
        XFlags
    ),
    h!(
        "fcvt.l.d",
        M_F7_RS2,
        op_fp(0x61, 2, 0),
        HELPER_FCVT_L_D,
        F1,
        XFlags
    ),
    h!(
        "fcvt.lu.d",
        M_F7_RS2,
        op_fp(0x61, 3, 0),
        HELPER_FCVT_LU_D,
        F1,
        XFlags
    ),
    h!(
        "fcvt.d.w",
        M_F7_RS2,
        op_fp(0x69, 0, 0),
        HELPER_FCVT_D_W,
        X1,
        F
    ),
    h!(
        "fcvt.d.wu",
        M_F7_RS2,
        op_fp(0x69, 1, 0),
        HELPER_FCVT_D_WU,
        X1,
        F
    ),
    h!(
        "fcvt.d.l",
        M_F7_RS2,
        op_fp(0x69, 2, 0),
        HELPER_FCVT_D_L,
        X1,
        F
    ),
    h!(
        "fcvt.d.lu",
        M_F7_RS2,
        op_fp(0x69, 3, 0),
        HELPER_FCVT_D_LU,
        X1,
        F
    ),
    InsnPattern::new("fmv.x.d", M_F7_RS2_F3, op_fp(0x71, 0, 0), |c, i| {
        gen_fmv_x(c, i, true)
    }),
    InsnPattern::new("fmv.d.x", M_F7_RS2_F3, op_fp(0x79, 0, 0), |c, i| {
        gen_fmv_f(c, i, true)
    }),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riscv::lift::TransFlags;
    use emu_jit::ir::{Builder, Op};

    fn find(insn: u32) -> Vec<&'static InsnPattern> {
        RV64F
            .iter()
            .chain(RV64D.iter())
            .filter(|p| p.matches(insn))
            .collect()
    }

    fn lift(insn: u32, flags: TransFlags) -> (Lifted, Vec<Op>) {
        let mut b = Builder::new(0x1000);
        let pats = find(insn);
        assert_eq!(pats.len(), 1, "{insn:#010x} matches {}", pats.len());
        let r = {
            let mut ctx = LiftCtx {
                b: &mut b,
                pc: 0x1000,
                len: 4,
                raw: insn,
                flags,
            };
            (pats[0].lift)(&mut ctx, insn)
        };
        (r, b.finish().ops)
    }

    const ON: TransFlags = TransFlags {
        privilege: 3,
        mmu_idx: 3,
        fp_enabled: true,
        fs_dirty: false,
    };

    #[test]
    fn encodings_decode_to_their_mnemonic() {
        // Assembled with riscv64-unknown-elf-as.
        let cases = [
            (0x0005_2087u32, "flw"),   // flw ft1, 0(a0)
            (0x0015_3027, "fsd"),      // fsd ft1, 0(a0)
            (0x0020_f0d3, "fadd.s"),   // fadd.s ft1, ft1, ft2
            (0x0220_70d3, "fadd.d"),   // fadd.d ft1, ft0, ft2 (dyn)
            (0x1820_f1c3, "fmadd.s"),  // fmadd.s ft3, ft1, ft2, ft3
            (0x5800_f0d3, "fsqrt.s"),  // fsqrt.s ft1, ft1
            (0xc000_1553, "fcvt.w.s"), // fcvt.w.s a0, ft0, rtz
            (0xd220_7053, "fcvt.d.l"), // fcvt.d.l ft0, zero
            (0x4010_7053, "fcvt.s.d"), // fcvt.s.d ft0, ft0
            (0xe000_0553, "fmv.x.w"),  // fmv.x.w a0, ft0
            (0xe200_1553, "fclass.d"), // fclass.d a0, ft0
            (0xa200_2553, "feq.d"),    // feq.d a0, ft0, ft2
            (0xf000_0053, "fmv.w.x"),  // fmv.w.x ft0, zero
            (0x2800_8053, "fmin.s"),   // fmin.s ft0, ft1, ft0
        ];
        for (insn, name) in cases {
            let pats = find(insn);
            assert_eq!(pats.len(), 1, "{name}");
            assert_eq!(pats[0].name, name, "{insn:#010x}");
        }
    }

    #[test]
    fn no_overlap_within_f_and_d() {
        let all: Vec<_> = RV64F.iter().chain(RV64D.iter()).collect();
        for (i, p) in all.iter().enumerate() {
            assert_eq!(p.bits & !p.mask, 0, "{}", p.name);
            for q in &all[i + 1..] {
                let common = p.mask & q.mask;
                assert_ne!(p.bits & common, q.bits & common, "{} vs {}", p.name, q.name);
            }
        }
        assert_eq!(RV64F.len(), 30);
        assert_eq!(RV64D.len(), 32);
    }

    #[test]
    fn illegal_when_fs_off_or_static_rm_reserved() {
        let off = TransFlags {
            fp_enabled: false,
            ..ON
        };
        assert_eq!(lift(0x0020_f0d3, off).0, Lifted::Illegal);
        assert_eq!(lift(0x0005_2087, off).0, Lifted::Illegal);
        assert_eq!(lift(0xe000_0553, off).0, Lifted::Illegal);
        // fadd.s with rm = 5 and 6.
        assert_eq!(lift(0x0020_d0d3, ON).0, Lifted::Illegal);
        assert_eq!(lift(0x0020_e0d3, ON).0, Lifted::Illegal);
        // fsgnj has no rm: funct3 selects the op and is never "reserved rm".
        assert_eq!(lift(0x2020_80d3, ON).0, Lifted::Continue);
    }

    #[test]
    fn writes_mark_fs_dirty_once_and_only_when_clean() {
        let count_dirty = |ops: &[Op]| {
            ops.iter()
                .filter(|o| matches!(o, Op::Call { args, .. } if args.is_empty()))
                .count()
        };
        let (r, ops) = lift(0x0020_f0d3, ON);
        assert_eq!(r, Lifted::Continue);
        assert_eq!(count_dirty(&ops), 1);
        // The dirty mark follows the arithmetic call (a trapping rm must not dirty FS) and
        // precedes the register write.
        let call_pos: Vec<_> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Op::Call { .. }))
            .map(|(i, _)| i)
            .collect();
        let store = ops
            .iter()
            .position(|o| matches!(o, Op::StoreGlobal { offset, .. } if *offset == freg_offset(1)))
            .expect("f1 written");
        assert!(call_pos.len() == 2 && call_pos[1] < store);
        let dirty = TransFlags {
            fs_dirty: true,
            ..ON
        };
        assert_eq!(count_dirty(&lift(0x0020_f0d3, dirty).1), 0);
        // fmv.x.w and fclass write no FP state.
        assert_eq!(count_dirty(&lift(0xe000_0553, ON).1), 0);
        assert_eq!(count_dirty(&lift(0xe200_1553, ON).1), 0);
    }

    #[test]
    fn flw_boxes_and_uses_the_mmu_index() {
        let (_, ops) = lift(0x0005_2087, ON);
        assert!(ops.iter().any(|o| matches!(
            o,
            Op::Load { mem, mmu_idx: 3, .. } if mem.size_log2 == 2 && !mem.aligned
        )));
        assert!(ops
            .iter()
            .any(|o| matches!(o, Op::Const { imm, .. } if *imm == BOX)));
    }

    /// A program through decode, translation and the IR interpreter (the reference executor).
    mod end_to_end {
        use crate::riscv::csr::{MSTATUS_FS, MSTATUS_FS_SHIFT};
        use crate::riscv::translate::testutil::*;
        use emu_jit::guest::Guest;

        const DATA: u64 = RAM_BASE + 0x1000;
        const FS_INITIAL: u64 = 1 << MSTATUS_FS_SHIFT;

        /// A hart with `program` at RAM_BASE followed by `j .` (where `run_to` stops).
        fn fp_hart(program: &[u32], fs: u64) -> Box<crate::riscv::cpu::RiscvCpu> {
            let mut cpu = hart();
            let mut words = program.to_vec();
            words.push(0x0000_006f);
            load_words(&cpu, RAM_BASE, &words);
            cpu.csr.mstatus = (cpu.csr.mstatus & !MSTATUS_FS) | fs;
            cpu.x[10] = DATA;
            cpu
        }

        /// Assembled with riscv64-unknown-elf-as -march=rv64gc (see each comment).
        const PROGRAM: [u32; 19] = [
            0x0005_3007, // fld ft0, 0(a0)
            0x0085_3087, // fld ft1, 8(a0)
            0x0210_7153, // fadd.d ft2, ft0, ft1
            0x0025_3827, // fsd ft2, 16(a0)
            0xc201_15d3, // fcvt.w.d a1, ft2, rtz
            0x0185_2187, // flw ft3, 24(a0)
            0xe001_8653, // fmv.x.w a2, ft3
            0xd025_f253, // fcvt.s.l ft4, a1
            0x0045_2e27, // fsw ft4, 28(a0)
            0x1210_72c3, // fmadd.d ft5, ft0, ft1, ft2
            0x0255_3027, // fsd ft5, 32(a0)
            0xa031_a6d3, // feq.s a3, ft3, ft3
            0xe201_1753, // fclass.d a4, ft2
            0x1872_7353, // fdiv.s ft6, ft4, ft7 (ft7 = 0: not NaN-boxed)
            0xe203_07d3, // fmv.x.d a5, ft6
            0xf005_8e53, // fmv.w.x ft8, a1
            0x21ce_1ed3, // fsgnjn.s ft9, ft8, ft8
            0xe20e_8853, // fmv.x.d a6, ft9
            0xc01e_f8d3, // fcvt.wu.s a7, ft9 (dyn)
        ];

        fn program_hart() -> Box<crate::riscv::cpu::RiscvCpu> {
            let cpu = fp_hart(&PROGRAM, FS_INITIAL);
            poke(&cpu, DATA, &1.5f64.to_le_bytes());
            poke(&cpu, DATA + 8, &2.25f64.to_le_bytes());
            poke(&cpu, DATA + 24, &(-2.5f32).to_le_bytes());
            cpu
        }

        #[test]
        fn loads_arithmetic_conversions_moves_and_stores() {
            let mut cpu = program_hart();
            run_to(&mut cpu, RAM_BASE + 4 * PROGRAM.len() as u64);
            assert_eq!(cpu.common.exception_pending, 0);
            assert_eq!(peek_u64(&cpu, DATA + 16), 3.75f64.to_bits());
            assert_eq!(cpu.x[11], 3, "fcvt.w.d rtz");
            assert_eq!(cpu.x[12], 0xffff_ffff_c020_0000, "fmv.x.w sign-extends");
            assert_eq!(
                peek_u64(&cpu, DATA + 24),
                0x4040_0000_c020_0000,
                "fsw of 3.0f"
            );
            assert_eq!(peek_u64(&cpu, DATA + 32), 7.125f64.to_bits(), "fmadd.d");
            assert_eq!(cpu.x[13], 1, "feq.s");
            assert_eq!(cpu.x[14], 1 << 6, "fclass.d of a positive normal");
            assert_eq!(
                cpu.x[15], 0xffff_ffff_7fc0_0000,
                "unboxed operand is the canonical NaN"
            );
            assert_eq!(cpu.x[16], 0xffff_ffff_8000_0003, "fmv.w.x boxes, fneg.s");
            assert_eq!(cpu.x[17], 0, "negative subnormal to unsigned rounds to 0");
            assert_eq!(cpu.fflags, 0x01, "only NX (fcvt.w.d, fcvt.wu.s)");
            assert_eq!(cpu.csr.mstatus & MSTATUS_FS, MSTATUS_FS, "FS became Dirty");
        }

        #[test]
        fn fs_off_and_reserved_dynamic_rm_are_illegal() {
            let fadd_dyn = 0x0210_7153; // fadd.d ft2, ft0, ft1
            let mut cpu = fp_hart(&[fadd_dyn], 0);
            run_to(&mut cpu, RAM_BASE + 4);
            assert_eq!(cpu.common.exception_pending, 1);
            assert_eq!(
                (cpu.pending_cause, cpu.pending_tval),
                (2, u64::from(fadd_dyn))
            );
            assert_eq!(cpu.common.pc, RAM_BASE);

            let mut cpu = fp_hart(&[fadd_dyn], FS_INITIAL);
            cpu.frm = 6;
            cpu.f[2] = 0x1234;
            run_to(&mut cpu, RAM_BASE + 4);
            assert_eq!(cpu.common.exception_pending, 1);
            assert_eq!(
                (cpu.pending_cause, cpu.pending_tval),
                (2, u64::from(fadd_dyn))
            );
            assert_eq!(cpu.f[2], 0x1234, "no write-back");
            assert_eq!(cpu.csr.mstatus & MSTATUS_FS, FS_INITIAL, "FS stays Initial");
        }

        /// In compiled code too, a helper that raises mid-block (DYN with frm = 7 here, after
        /// an fadd that already wrote f3) exits at the raising instruction with the earlier
        /// results written back and nothing of the raising one.
        #[test]
        fn compiled_code_raises_at_the_instruction() {
            let program = [
                0x0010_01d3, // fadd.s ft3, ft0, ft1, rne
                0x0210_7153, // fadd.d ft2, ft0, ft1 (dyn)
            ];
            let mut cpu = fp_hart(&program, FS_INITIAL);
            cpu.frm = 7;
            cpu.f[2] = 0x1234;
            let block = translate(&mut cpu, 64);
            let code = emu_jit::backend::compile_standalone(&block).expect("block compiles");
            let state = cpu.state_ptr();
            // SAFETY: `state` is the CpuCommon at the start of this live RiscvCpu, which nothing
            // else borrows during the call; the block's globals are offsets inside RiscvCpu.
            let exit = unsafe { code.run(state) };
            assert_eq!(exit, emu_jit::exec::BlockExit::Fault);
            assert_eq!(cpu.common.exception_pending, 1);
            assert_eq!(
                (cpu.pending_cause, cpu.pending_tval),
                (2, u64::from(program[1]))
            );
            assert_eq!(cpu.common.pc, RAM_BASE + 4);
            assert_eq!(
                cpu.f[3], 0xffff_ffff_7fc0_0000,
                "f0 and f1 are 0, not boxed"
            );
            assert_eq!(cpu.f[2], 0x1234);
            assert_eq!(
                cpu.csr.mstatus & MSTATUS_FS,
                MSTATUS_FS,
                "first fadd dirtied FS"
            );
        }

        /// Tier 1 (Cranelift) must agree with the interpreter on the same translated block.
        #[test]
        fn compiled_code_matches_the_interpreter() {
            let mut interp = program_hart();
            let mut native = program_hart();
            let block = translate(&mut interp, 64);
            let code = emu_jit::backend::compile_standalone(&block).expect("block compiles");
            let state = interp.state_ptr();
            // SAFETY: `state` is the CpuCommon at the start of this live RiscvCpu, which nothing
            // else borrows during the call; the block's globals are offsets inside RiscvCpu.
            let e0 = unsafe { emu_jit::interp::run_block(&block, state) };
            let state = native.state_ptr();
            // SAFETY: as above, for the second hart; the block names only this frontend's
            // helpers and the hart's own slow path.
            let e1 = unsafe { code.run(state) };
            assert_eq!(e0, e1);
            assert_eq!(interp.common.pc, native.common.pc);
            assert_eq!(interp.x, native.x);
            assert_eq!(interp.f, native.f);
            assert_eq!(interp.fflags, native.fflags);
            assert_eq!(interp.csr.mstatus, native.csr.mstatus);
            for off in (0..48).step_by(8) {
                assert_eq!(peek_u64(&interp, DATA + off), peek_u64(&native, DATA + off));
            }
            assert_eq!(native.x[16], 0xffff_ffff_8000_0003);
        }

        /// The inline sign injection agrees with `fp::sign_inject` behind NaN-boxing, on
        /// random, boxed, unboxed and NaN operands, for `rd` distinct from and equal to `rs1`.
        #[test]
        fn inline_sign_injection_matches_the_reference() {
            use crate::riscv::fp::{box_s, sign_inject, unbox_s, SgnjOp, BINARY32, BINARY64};
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(7);
            let ops = [(SgnjOp::Sgnj, 0), (SgnjOp::Sgnjn, 1), (SgnjOp::Sgnjx, 2)];
            for _ in 0..100 {
                let mut operand = || match rng.gen_range(0..4) {
                    0 => rng.gen::<u64>(),
                    1 => box_s(rng.gen::<u64>()),
                    2 => box_s(0x7f80_0001) ^ (u64::from(rng.gen::<bool>()) << 31),
                    _ => 0x7ff0_0000_0000_0001 ^ (u64::from(rng.gen::<bool>()) << 63),
                };
                let (a, b) = (operand(), operand());
                for (op, funct3) in ops {
                    for double in [false, true] {
                        for rd in [3, 1] {
                            // fsgnj*.fmt rd, f1, f2
                            let insn = (0x10 | u32::from(double)) << 25
                                | 2 << 20
                                | 1 << 15
                                | funct3 << 12
                                | rd << 7
                                | 0x53;
                            let mut cpu = fp_hart(&[insn], FS_INITIAL);
                            cpu.f[1] = a;
                            cpu.f[2] = b;
                            run_to(&mut cpu, RAM_BASE + 4);
                            let want = if double {
                                sign_inject(BINARY64, op, a, b)
                            } else {
                                box_s(sign_inject(BINARY32, op, unbox_s(a), unbox_s(b)))
                            };
                            assert_eq!(cpu.f[rd as usize], want, "{op:?} {a:#x} {b:#x}");
                        }
                    }
                }
            }
        }

        /// Random straight-line F/D code (every non-memory instruction, random registers and
        /// rounding modes, boxed/unboxed/NaN/ordinary register contents): the compiled block
        /// and the interpreter end in the same state.
        #[test]
        fn random_fp_blocks_agree_on_both_tiers() {
            use crate::riscv::fp::box_s;
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(0xf00d);
            let patterns: Vec<_> = super::RV64F
                .iter()
                .chain(super::RV64D.iter())
                .filter(|p| !matches!(p.name, "flw" | "fsw" | "fld" | "fsd"))
                .collect();
            for _ in 0..100 {
                let mut program = Vec::new();
                for _ in 0..24 {
                    let p = patterns[rng.gen_range(0..patterns.len())];
                    // Random fields, then the pattern's fixed bits; a free rm field of 5 or 6
                    // (statically illegal: the block would end there) becomes 7 (DYN).
                    let mut insn = rng.gen::<u32>() & !p.mask | p.bits;
                    if p.mask & (7 << 12) == 0 && matches!((insn >> 12) & 7, 5 | 6) {
                        insn |= 7 << 12;
                    }
                    program.push(insn);
                }
                let mut interp = fp_hart(&program, FS_INITIAL);
                let frm = rng.gen_range(0..5);
                for i in 0..32 {
                    let f = match rng.gen_range(0..5) {
                        0 => rng.gen::<u64>(),
                        1 => box_s(u64::from(rng.gen_range(-1000.0f32..1000.0).to_bits())),
                        2 => rng.gen_range(-1e6f64..1e6).to_bits(),
                        3 => [0x7ff4_0000_0000_0000, 0xffff_ffff_7f80_0001, 0, 1 << 63][i % 4],
                        _ => box_s(u64::from(rng.gen::<u32>())),
                    };
                    interp.f[i] = f;
                    if i != 0 {
                        interp.x[i] = rng.gen::<u64>() >> rng.gen_range(0..64);
                    }
                }
                interp.frm = frm;
                let mut native = fp_hart(&program, FS_INITIAL);
                native.f = interp.f;
                native.x = interp.x;
                native.frm = frm;
                let block = translate(&mut interp, 64);
                let code = emu_jit::backend::compile_standalone(&block).expect("block compiles");
                let state = interp.state_ptr();
                // SAFETY: `state` is the CpuCommon at the start of this live RiscvCpu, which
                // nothing else borrows during the call; the block's globals lie inside it.
                let e0 = unsafe { emu_jit::interp::run_block(&block, state) };
                let state = native.state_ptr();
                // SAFETY: as above, for the second hart.
                let e1 = unsafe { code.run(state) };
                let ctx = || format!("{program:08x?}");
                assert_eq!(e0, e1, "{}", ctx());
                assert_eq!(interp.common.exception_pending, 0, "{}", ctx());
                assert_eq!(interp.common.pc, RAM_BASE + 4 * 24, "whole block ran");
                assert_eq!(interp.common.pc, native.common.pc, "{}", ctx());
                assert_eq!(interp.x, native.x, "{}", ctx());
                assert_eq!(interp.f, native.f, "{}", ctx());
                assert_eq!(interp.fflags, native.fflags, "{}", ctx());
                assert_eq!(interp.csr.mstatus, native.csr.mstatus, "{}", ctx());
            }
        }

        #[test]
        fn compressed_fld_fsd() {
            // c.fld fs0, 0(a0); c.fsd fs0, 40(a0)
            let mut cpu = fp_hart(&[0xb500_2100], FS_INITIAL);
            poke(&cpu, DATA, &(-0.0f64).to_le_bytes());
            run_to(&mut cpu, RAM_BASE + 4);
            assert_eq!(cpu.common.exception_pending, 0);
            assert_eq!(peek_u64(&cpu, DATA + 40), 1 << 63);
        }
    }
}
