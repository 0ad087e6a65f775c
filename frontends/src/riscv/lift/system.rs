//! System instructions: fence and Zifencei's fence.i (Unprivileged ISA ch. 2.7 and ch. 6),
//! ecall/ebreak (§2.8), and the privileged mret, sret, wfi and sfence.vma (Privileged ISA
//! §3.3, §4.2.1). Their effects are D1's helpers in `trap.rs`.

use emu_jit::ir::{ExitReason, Terminal, Type};

use super::{LiftCtx, Lifted};
use crate::riscv::decode::{rs1, rs2, InsnPattern, MASK_ALL, MASK_I};
use crate::riscv::trap::{HELPER_MRET, HELPER_RAISE, HELPER_SFENCE_VMA, HELPER_SRET, HELPER_WFI};

/// sfence.vma: funct7, rd = 0, funct3 = 0, opcode; rs1 and rs2 free.
const MASK_SFENCE_VMA: u32 = 0xfe00_7fff;

pub static SYSTEM: &[InsnPattern] = &[
    // Every FENCE encoding (including fence.tso, pause and reserved fm/rs1/rd values, which the
    // spec says execute as a plain fence).
    InsnPattern::new("fence", MASK_I, 0x0000_000f, lift_fence),
    InsnPattern::new("fence.i", MASK_I, 0x0000_100f, lift_fence_i),
    InsnPattern::new("ecall", MASK_ALL, 0x0000_0073, lift_ecall),
    InsnPattern::new("ebreak", MASK_ALL, 0x0010_0073, lift_ebreak),
    InsnPattern::new("sret", MASK_ALL, 0x1020_0073, lift_sret),
    InsnPattern::new("mret", MASK_ALL, 0x3020_0073, lift_mret),
    InsnPattern::new("wfi", MASK_ALL, 0x1050_0073, lift_wfi),
    InsnPattern::new("sfence.vma", MASK_SFENCE_VMA, 0x1200_0073, lift_sfence_vma),
];

/// Exception codes (Privileged ISA Table 3.6).
const CAUSE_BREAKPOINT: u64 = 3;
const CAUSE_ECALL_FROM_U: u64 = 8;

/// One hart and no weaker-than-program-order memory: fence orders nothing.
fn lift_fence(_: &mut LiftCtx<'_>, _: u32) -> Lifted {
    Lifted::Continue
}

/// fence.i ends the block; stores into translated code were already caught by the TLB's
/// NOTDIRTY pages, so the next block is fetched afresh.
fn lift_fence_i(ctx: &mut LiftCtx<'_>, _: u32) -> Lifted {
    ctx.exit_next(ExitReason::Yield)
}

/// `raise(cause, tval)` then leave with the exception pending at this instruction.
fn gen_raise(ctx: &mut LiftCtx<'_>, cause: u64, tval: u64) -> Lifted {
    let cause = ctx.imm(cause);
    let tval = ctx.imm(tval);
    ctx.b.call(&HELPER_RAISE, &[cause, tval]);
    ctx.b.exit(Terminal::Exit {
        reason: ExitReason::Exception,
        pc: ctx.pc,
    });
    Lifted::EndBlock
}

/// ecall: environment call from the current privilege (codes 8, 9, 11).
fn lift_ecall(ctx: &mut LiftCtx<'_>, _: u32) -> Lifted {
    let cause = CAUSE_ECALL_FROM_U + u64::from(ctx.flags.privilege);
    gen_raise(ctx, cause, 0)
}

/// ebreak: breakpoint with tval = the instruction's address.
fn lift_ebreak(ctx: &mut LiftCtx<'_>, _: u32) -> Lifted {
    let pc = ctx.pc;
    gen_raise(ctx, CAUSE_BREAKPOINT, pc)
}

/// mret/sret: the helper checks privilege, updates mstatus and privilege and returns xepc.
fn gen_xret(ctx: &mut LiftCtx<'_>, def: &'static emu_jit::helper::HelperDef) -> Lifted {
    let raw = ctx.imm(u64::from(ctx.raw));
    let pc = match ctx.b.call(def, &[raw]) {
        Some(v) => v,
        // Unreachable: both helpers return the new pc.
        None => ctx.b.iconst(Type::I64, 0),
    };
    ctx.b.exit(Terminal::ExitDynamic {
        reason: ExitReason::Yield,
        pc,
    });
    Lifted::EndBlock
}

fn lift_mret(ctx: &mut LiftCtx<'_>, _: u32) -> Lifted {
    gen_xret(ctx, &HELPER_MRET)
}

fn lift_sret(ctx: &mut LiftCtx<'_>, _: u32) -> Lifted {
    gen_xret(ctx, &HELPER_SRET)
}

/// wfi: the helper applies mstatus.TW; the hart then sleeps until an interrupt is pending.
fn lift_wfi(ctx: &mut LiftCtx<'_>, _: u32) -> Lifted {
    let raw = ctx.imm(u64::from(ctx.raw));
    ctx.b.call(&HELPER_WFI, &[raw]);
    ctx.exit_next(ExitReason::Halt)
}

/// sfence.vma rs1 (vaddr), rs2 (asid): the helper checks privilege/TVM and flushes the TLB.
fn lift_sfence_vma(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let vaddr = ctx.get_gpr(rs1(insn));
    let asid = ctx.get_gpr(rs2(insn));
    let raw = ctx.imm(u64::from(ctx.raw));
    ctx.b.call(&HELPER_SFENCE_VMA, &[vaddr, asid, raw]);
    ctx.exit_next(ExitReason::Yield)
}

#[cfg(test)]
mod tests {
    use crate::riscv::translate::testutil::*;
    use emu_jit::exec::BlockExit;
    use emu_jit::ir::ExitReason;

    /// Run the single instruction at RAM_BASE.
    fn run1(insn: u32) -> (Box<crate::riscv::cpu::RiscvCpu>, BlockExit) {
        let mut cpu = hart();
        program(&cpu, &[insn]);
        let exit = step(&mut cpu, 64);
        (cpu, exit)
    }

    #[test]
    fn ecall_and_ebreak_raise() {
        let (cpu, _) = run1(bits_of("ecall"));
        assert_eq!(cpu.common.exception_pending, 1);
        // The test hart runs in M-mode: environment call from M-mode.
        assert_eq!(
            (cpu.pending_cause, cpu.common.pc, cpu.common.insn_count),
            (11, RAM_BASE, 0)
        );
        let (cpu, _) = run1(bits_of("ebreak"));
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (3, RAM_BASE));
    }

    #[test]
    fn fences() {
        let mut cpu = hart();
        let end = program(&cpu, &[0x0ff0_000f, i_type("addi", 1, 0, 1)]);
        assert_eq!(translate(&mut cpu, 64).insn_count, 3);
        run_to(&mut cpu, end);
        assert_eq!(cpu.x[1], 1);
        let (cpu, exit) = run1(bits_of("fence.i"));
        assert_eq!(
            (exit, cpu.common.pc),
            (BlockExit::Exit(ExitReason::Yield), RAM_BASE + 4)
        );
    }

    #[test]
    fn wfi_halts_at_the_next_instruction() {
        let (cpu, exit) = run1(bits_of("wfi"));
        assert_eq!(cpu.common.exception_pending, 0);
        assert_eq!(
            (exit, cpu.common.pc),
            (BlockExit::Exit(ExitReason::Halt), RAM_BASE + 4)
        );
    }

    #[test]
    fn mret_continues_at_mepc() {
        let mut cpu = hart();
        // csrrw x0, mepc, x1; mret
        load_words(
            &cpu,
            RAM_BASE,
            &[i_type("csrrw", 0, 1, 0x341), bits_of("mret")],
        );
        cpu.x[1] = RAM_BASE + 0x40;
        // The mepc write goes on in the block (zicsr.rs), the mret ends it.
        assert_eq!(step(&mut cpu, 64), BlockExit::Exit(ExitReason::Yield));
        assert_eq!(cpu.common.insn_count, 2);
        assert_eq!(cpu.common.exception_pending, 0);
        assert_eq!(cpu.common.pc, RAM_BASE + 0x40);
    }

    #[test]
    fn sfence_vma_yields() {
        let (cpu, exit) = run1(r_type("sfence.vma", 0, 1, 2));
        assert_eq!(cpu.common.exception_pending, 0);
        assert_eq!(
            (exit, cpu.common.pc),
            (BlockExit::Exit(ExitReason::Yield), RAM_BASE + 4)
        );
    }
}
