//! "A" extension for atomic instructions (Unprivileged ISA ch. 14): LR/SC and AMOs, word and
//! doubleword. A single hart runs at a time, so the aq/rl bits (26:25) need no fences and are
//! accepted by the table masks.
//!
//! Each instruction is an aligned IR load (a store-intent load for SC/AMOs, so permissions and
//! fault causes are those of a store), the computation, and an aligned store: a misaligned
//! address raises load (LR) or store/AMO (SC, AMO) address-misaligned, as QEMU does.
//! SC follows QEMU: it fails without touching memory when the address differs from the
//! reservation, otherwise succeeds iff memory still holds the value LR loaded; either way the
//! reservation is cleared. Unlike QEMU 7.2 (and like Spike), a misaligned SC raises
//! store/AMO address-misaligned even when it has no reservation.

use emu_jit::ir::{BinOp, Builder, Cond, ExitReason, MemOp, Terminal, Type, Value};

use super::{gen_get_gpr, gen_set_gpr, LiftCtx, Lifted};
use crate::riscv::cpu::{OFFSET_RESERVATION, OFFSET_RESERVATION_VALUE};
use crate::riscv::decode::{rd, rs1, rs2, InsnPattern};
use crate::riscv::trap::HELPER_RAISE;

/// Store/AMO address misaligned (Privileged ISA Table 3.6).
const CAUSE_STORE_AMO_MISALIGNED: u64 = 6;

/// funct5, funct3 and opcode; aq/rl and the register fields are free.
const MASK_AMO: u32 = 0xf800_707f;
/// As `MASK_AMO`, plus rs2 = 0 for LR.
const MASK_LR: u32 = 0xf9f0_707f;

pub static RV64A: &[InsnPattern] = &[
    InsnPattern::new("lr.w", MASK_LR, 0x1000_202f, lift_lr_w),
    InsnPattern::new("sc.w", MASK_AMO, 0x1800_202f, lift_sc_w),
    InsnPattern::new("amoswap.w", MASK_AMO, 0x0800_202f, lift_amoswap_w),
    InsnPattern::new("amoadd.w", MASK_AMO, 0x0000_202f, lift_amoadd_w),
    InsnPattern::new("amoxor.w", MASK_AMO, 0x2000_202f, lift_amoxor_w),
    InsnPattern::new("amoand.w", MASK_AMO, 0x6000_202f, lift_amoand_w),
    InsnPattern::new("amoor.w", MASK_AMO, 0x4000_202f, lift_amoor_w),
    InsnPattern::new("amomin.w", MASK_AMO, 0x8000_202f, lift_amomin_w),
    InsnPattern::new("amomax.w", MASK_AMO, 0xa000_202f, lift_amomax_w),
    InsnPattern::new("amominu.w", MASK_AMO, 0xc000_202f, lift_amominu_w),
    InsnPattern::new("amomaxu.w", MASK_AMO, 0xe000_202f, lift_amomaxu_w),
    InsnPattern::new("lr.d", MASK_LR, 0x1000_302f, lift_lr_d),
    InsnPattern::new("sc.d", MASK_AMO, 0x1800_302f, lift_sc_d),
    InsnPattern::new("amoswap.d", MASK_AMO, 0x0800_302f, lift_amoswap_d),
    InsnPattern::new("amoadd.d", MASK_AMO, 0x0000_302f, lift_amoadd_d),
    InsnPattern::new("amoxor.d", MASK_AMO, 0x2000_302f, lift_amoxor_d),
    InsnPattern::new("amoand.d", MASK_AMO, 0x6000_302f, lift_amoand_d),
    InsnPattern::new("amoor.d", MASK_AMO, 0x4000_302f, lift_amoor_d),
    InsnPattern::new("amomin.d", MASK_AMO, 0x8000_302f, lift_amomin_d),
    InsnPattern::new("amomax.d", MASK_AMO, 0xa000_302f, lift_amomax_d),
    InsnPattern::new("amominu.d", MASK_AMO, 0xc000_302f, lift_amominu_d),
    InsnPattern::new("amomaxu.d", MASK_AMO, 0xe000_302f, lift_amomaxu_d),
];

/// Word (size_log2 2, results sign-extended, §14.2) or doubleword (3).
const W: u8 = 2;
const D: u8 = 3;

fn lr(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8) -> Lifted {
    let addr = gen_get_gpr(ctx.b, rs1(insn));
    let mem = MemOp::new(size_log2, true, true);
    let v = ctx.b.load(Type::I64, mem, ctx.flags.mmu_idx, addr);
    ctx.b.store_global(Type::I64, OFFSET_RESERVATION, addr);
    ctx.b.store_global(Type::I64, OFFSET_RESERVATION_VALUE, v);
    gen_set_gpr(ctx.b, rd(insn), v);
    Lifted::Continue
}

fn sc(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8) -> Lifted {
    let b = &mut *ctx.b;
    let mmu_idx = ctx.flags.mmu_idx;
    let addr = gen_get_gpr(b, rs1(insn));
    let src = gen_get_gpr(b, rs2(insn));
    let fail = b.new_label();
    let done = b.new_label();
    // Alignment is checked before the reservation (as Spike does, and the spec requires: a
    // misaligned SC raises even when it would fail).
    let aligned = b.new_label();
    let low = b.binary_imm(BinOp::And, Type::I64, addr, (1u64 << size_log2) - 1);
    let zero = b.iconst(Type::I64, 0);
    b.br_cond(Cond::Eq, Type::I64, low, zero, aligned);
    let cause = b.iconst(Type::I64, CAUSE_STORE_AMO_MISALIGNED);
    b.call(&HELPER_RAISE, &[cause, addr]);
    b.exit(Terminal::Exit {
        reason: ExitReason::Exception,
        pc: ctx.pc,
    });
    b.label(aligned);
    let reserved = b.load_global(Type::I64, OFFSET_RESERVATION);
    b.br_cond(Cond::Ne, Type::I64, addr, reserved, fail);
    let mem = MemOp::new(size_log2, true, true);
    let current = b.load(Type::I64, mem.with_store_intent(), mmu_idx, addr);
    let expected = b.load_global(Type::I64, OFFSET_RESERVATION_VALUE);
    b.br_cond(Cond::Ne, Type::I64, current, expected, fail);
    b.store(Type::I64, mem, mmu_idx, src, addr);
    gen_set_gpr(b, rd(insn), zero);
    b.br(done);
    b.label(fail);
    let one = b.iconst(Type::I64, 1);
    gen_set_gpr(b, rd(insn), one);
    b.label(done);
    let none = b.iconst(Type::I64, u64::MAX);
    b.store_global(Type::I64, OFFSET_RESERVATION, none);
    Lifted::Continue
}

/// `rd = mem[rs1]; mem[rs1] = f(mem[rs1], rs2)`. For words `f` works on I32 values (so
/// signed/unsigned min/max compare 32-bit quantities) and rd gets the sign-extended old word.
fn amo(
    ctx: &mut LiftCtx<'_>,
    insn: u32,
    size_log2: u8,
    f: impl FnOnce(&mut Builder, Type, Value, Value) -> Value,
) -> Lifted {
    let b = &mut *ctx.b;
    let mmu_idx = ctx.flags.mmu_idx;
    let addr = gen_get_gpr(b, rs1(insn));
    let src = gen_get_gpr(b, rs2(insn));
    let mem = MemOp::new(size_log2, true, true);
    let old = b.load(Type::I64, mem.with_store_intent(), mmu_idx, addr);
    if size_log2 == W {
        let a = b.trunc(Type::I64, Type::I32, old);
        let c = b.trunc(Type::I64, Type::I32, src);
        let new = f(b, Type::I32, a, c);
        b.store(Type::I32, mem, mmu_idx, new, addr);
    } else {
        let new = f(b, Type::I64, old, src);
        b.store(Type::I64, mem, mmu_idx, new, addr);
    }
    gen_set_gpr(b, rd(insn), old);
    Lifted::Continue
}

fn amo_op(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8, op: BinOp) -> Lifted {
    amo(ctx, insn, size_log2, |b, ty, a, c| b.binary(op, ty, a, c))
}

fn lift_lr_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    lr(ctx, insn, W)
}
fn lift_sc_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    sc(ctx, insn, W)
}
fn lift_amoswap_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo(ctx, insn, W, |_, _, _, c| c)
}
fn lift_amoadd_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::Add)
}
fn lift_amoxor_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::Xor)
}
fn lift_amoand_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::And)
}
fn lift_amoor_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::Or)
}
fn lift_amomin_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::MinS)
}
fn lift_amomax_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::MaxS)
}
fn lift_amominu_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::MinU)
}
fn lift_amomaxu_w(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, W, BinOp::MaxU)
}
fn lift_lr_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    lr(ctx, insn, D)
}
fn lift_sc_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    sc(ctx, insn, D)
}
fn lift_amoswap_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo(ctx, insn, D, |_, _, _, c| c)
}
fn lift_amoadd_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::Add)
}
fn lift_amoxor_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::Xor)
}
fn lift_amoand_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::And)
}
fn lift_amoor_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::Or)
}
fn lift_amomin_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::MinS)
}
fn lift_amomax_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::MaxS)
}
fn lift_amominu_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::MinU)
}
fn lift_amomaxu_d(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    amo_op(ctx, insn, D, BinOp::MaxU)
}

#[cfg(test)]
mod tests {
    use crate::riscv::translate::testutil::*;

    const DATA: u64 = RAM_BASE + 0x1000;

    /// `name rd, rs2, (rs1)` with aq/rl set (they are accepted and ignored).
    fn amo(name: &str, rd: u32, rs1: u32, rs2: u32) -> u32 {
        r_type(name, rd, rs1, rs2) | 3 << 25
    }

    /// Run `words` with x1 = DATA, x2 = `src`, memory at DATA = `mem`; returns (x3, mem).
    fn run_amo(words: &[u32], mem: u64, src: u64) -> (u64, u64) {
        let mut cpu = hart();
        poke(&cpu, DATA, &mem.to_le_bytes());
        let end = program(&cpu, words);
        cpu.x[1] = DATA;
        cpu.x[2] = src;
        run_to(&mut cpu, end);
        assert_eq!(
            cpu.common.exception_pending, 0,
            "cause {}",
            cpu.pending_cause
        );
        (cpu.x[3], peek_u64(&cpu, DATA))
    }

    #[test]
    fn amo_doubleword() {
        let m = 0x8000_0000_0000_0005u64;
        let one = |name| run_amo(&[amo(name, 3, 1, 2)], m, 7);
        assert_eq!(one("amoswap.d"), (m, 7));
        assert_eq!(one("amoadd.d"), (m, m + 7));
        assert_eq!(one("amoxor.d"), (m, m ^ 7));
        assert_eq!(one("amoand.d"), (m, 5));
        assert_eq!(one("amoor.d"), (m, m | 7));
        assert_eq!(one("amomin.d"), (m, m));
        assert_eq!(one("amomax.d"), (m, 7));
        assert_eq!(one("amominu.d"), (m, 7));
        assert_eq!(one("amomaxu.d"), (m, m));
    }

    #[test]
    fn amo_word_sign_extends_and_keeps_upper_word() {
        let m = 0x1111_1111_8000_0005u64;
        let one = |name, src| run_amo(&[amo(name, 3, 1, 2)], m, src);
        let old = 0xffff_ffff_8000_0005;
        assert_eq!(one("amoswap.w", 7), (old, 0x1111_1111_0000_0007));
        assert_eq!(one("amoadd.w", 0x8000_0000), (old, 0x1111_1111_0000_0005));
        // Signed 32-bit compare: 0x80000005 is negative, 0x1_00000007 has low word 7.
        assert_eq!(one("amomin.w", 0x1_0000_0007), (old, m));
        assert_eq!(one("amomax.w", 0x1_0000_0007), (old, 0x1111_1111_0000_0007));
        assert_eq!(one("amominu.w", 7), (old, 0x1111_1111_0000_0007));
        assert_eq!(one("amomaxu.w", 7), (old, m));
        assert_eq!(
            one("amoand.w", 0xffff_ffff_0000_00ff),
            (old, 0x1111_1111_0000_0005)
        );
    }

    #[test]
    fn lr_sc_pairs() {
        // lr.d x4, (x1); sc.d x3, x2, (x1): succeeds.
        let (rd, mem) = run_amo(&[amo("lr.d", 4, 1, 0), amo("sc.d", 3, 1, 2)], 9, 42);
        assert_eq!((rd, mem), (0, 42));
        // sc.d without a reservation fails and leaves memory alone.
        assert_eq!(run_amo(&[amo("sc.d", 3, 1, 2)], 9, 42), (1, 9));
        // A second sc.d fails: the first cleared the reservation.
        let words = [
            amo("lr.d", 4, 1, 0),
            amo("sc.d", 5, 1, 2),
            amo("sc.d", 3, 1, 0),
        ];
        assert_eq!(run_amo(&words, 9, 42), (1, 42));
        // lr.w sign-extends; sc.w stores the low word only.
        let words = [amo("lr.w", 3, 1, 0), amo("sc.w", 4, 1, 2)];
        let (rd, mem) = run_amo(&words, 0x5555_5555_8000_0000, 0x1234_5678_9abc_def0);
        assert_eq!((rd, mem), (0xffff_ffff_8000_0000, 0x5555_5555_9abc_def0));
    }

    #[test]
    fn sc_fails_when_memory_changed_since_lr() {
        let words = [
            amo("lr.d", 4, 1, 0),
            s_type("sd", 1, 0, 0), // store 0: memory no longer holds the loaded value
            amo("sc.d", 3, 1, 2),
        ];
        assert_eq!(run_amo(&words, 9, 42), (1, 0));
    }

    #[test]
    fn misaligned_amo_raises_store_amo_misaligned() {
        let mut cpu = hart();
        let end = program(&cpu, &[amo("amoadd.d", 3, 1, 2)]);
        cpu.x[1] = DATA + 4;
        run_to(&mut cpu, end);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (6, DATA + 4));
        assert_eq!(cpu.common.pc, RAM_BASE);

        // sc.d to a misaligned address without a matching reservation still raises.
        let mut cpu = hart();
        let end = program(&cpu, &[amo("lr.d", 4, 1, 0), amo("sc.d", 3, 5, 2)]);
        cpu.x[1] = DATA;
        cpu.x[5] = DATA + 4;
        run_to(&mut cpu, end);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (6, DATA + 4));
        assert_eq!((cpu.common.pc, cpu.x[3]), (RAM_BASE + 4, 0));
        assert_eq!(peek_u64(&cpu, DATA), 0);

        let mut cpu = hart();
        let end = program(&cpu, &[amo("lr.w", 3, 1, 0)]);
        cpu.x[1] = DATA + 2;
        run_to(&mut cpu, end);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (4, DATA + 2));
    }
}
