//! RV64I base integer instruction set (Unprivileged ISA ch. 2 "RV32I" and ch. 4 "RV64I";
//! encodings from ch. 34 "RV32/64G Instruction Set Listings"). fence, fence.i and the
//! environment-call instructions live in `system.rs`.

use emu_jit::ir::{BinOp, Cond, Terminal, Type};

use super::{
    gen_address, gen_arith, gen_arith_imm, gen_arith_imm_val, gen_arith_imm_w, gen_arith_w,
    gen_branch, gen_load, gen_setcond, gen_setcond_imm, gen_store, shamt5, shamt6, LiftCtx, Lifted,
};
use crate::riscv::decode::{
    imm_i, imm_j, imm_u, rd, rs1, InsnPattern, MASK_I, MASK_R, MASK_SHIFT64, MASK_U,
};

pub static RV64I: &[InsnPattern] = &[
    InsnPattern::new("lui", MASK_U, 0x0000_0037, lift_lui),
    InsnPattern::new("auipc", MASK_U, 0x0000_0017, lift_auipc),
    InsnPattern::new("jal", MASK_U, 0x0000_006f, lift_jal),
    InsnPattern::new("jalr", MASK_I, 0x0000_0067, lift_jalr),
    InsnPattern::new("beq", MASK_I, 0x0000_0063, lift_beq),
    InsnPattern::new("bne", MASK_I, 0x0000_1063, lift_bne),
    InsnPattern::new("blt", MASK_I, 0x0000_4063, lift_blt),
    InsnPattern::new("bge", MASK_I, 0x0000_5063, lift_bge),
    InsnPattern::new("bltu", MASK_I, 0x0000_6063, lift_bltu),
    InsnPattern::new("bgeu", MASK_I, 0x0000_7063, lift_bgeu),
    InsnPattern::new("lb", MASK_I, 0x0000_0003, lift_lb),
    InsnPattern::new("lh", MASK_I, 0x0000_1003, lift_lh),
    InsnPattern::new("lw", MASK_I, 0x0000_2003, lift_lw),
    InsnPattern::new("ld", MASK_I, 0x0000_3003, lift_ld),
    InsnPattern::new("lbu", MASK_I, 0x0000_4003, lift_lbu),
    InsnPattern::new("lhu", MASK_I, 0x0000_5003, lift_lhu),
    InsnPattern::new("lwu", MASK_I, 0x0000_6003, lift_lwu),
    InsnPattern::new("sb", MASK_I, 0x0000_0023, lift_sb),
    InsnPattern::new("sh", MASK_I, 0x0000_1023, lift_sh),
    InsnPattern::new("sw", MASK_I, 0x0000_2023, lift_sw),
    InsnPattern::new("sd", MASK_I, 0x0000_3023, lift_sd),
    InsnPattern::new("addi", MASK_I, 0x0000_0013, lift_addi),
    InsnPattern::new("slti", MASK_I, 0x0000_2013, lift_slti),
    InsnPattern::new("sltiu", MASK_I, 0x0000_3013, lift_sltiu),
    InsnPattern::new("xori", MASK_I, 0x0000_4013, lift_xori),
    InsnPattern::new("ori", MASK_I, 0x0000_6013, lift_ori),
    InsnPattern::new("andi", MASK_I, 0x0000_7013, lift_andi),
    InsnPattern::new("slli", MASK_SHIFT64, 0x0000_1013, lift_slli),
    InsnPattern::new("srli", MASK_SHIFT64, 0x0000_5013, lift_srli),
    InsnPattern::new("srai", MASK_SHIFT64, 0x4000_5013, lift_srai),
    InsnPattern::new("add", MASK_R, 0x0000_0033, lift_add),
    InsnPattern::new("sub", MASK_R, 0x4000_0033, lift_sub),
    InsnPattern::new("sll", MASK_R, 0x0000_1033, lift_sll),
    InsnPattern::new("slt", MASK_R, 0x0000_2033, lift_slt),
    InsnPattern::new("sltu", MASK_R, 0x0000_3033, lift_sltu),
    InsnPattern::new("xor", MASK_R, 0x0000_4033, lift_xor),
    InsnPattern::new("srl", MASK_R, 0x0000_5033, lift_srl),
    InsnPattern::new("sra", MASK_R, 0x4000_5033, lift_sra),
    InsnPattern::new("or", MASK_R, 0x0000_6033, lift_or),
    InsnPattern::new("and", MASK_R, 0x0000_7033, lift_and),
    InsnPattern::new("addiw", MASK_I, 0x0000_001b, lift_addiw),
    InsnPattern::new("slliw", MASK_R, 0x0000_101b, lift_slliw),
    InsnPattern::new("srliw", MASK_R, 0x0000_501b, lift_srliw),
    InsnPattern::new("sraiw", MASK_R, 0x4000_501b, lift_sraiw),
    InsnPattern::new("addw", MASK_R, 0x0000_003b, lift_addw),
    InsnPattern::new("subw", MASK_R, 0x4000_003b, lift_subw),
    InsnPattern::new("sllw", MASK_R, 0x0000_103b, lift_sllw),
    InsnPattern::new("srlw", MASK_R, 0x0000_503b, lift_srlw),
    InsnPattern::new("sraw", MASK_R, 0x4000_503b, lift_sraw),
];

fn lift_lui(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let v = ctx.imm(imm_u(insn) as u64);
    ctx.set_gpr(rd(insn), v);
    Lifted::Continue
}

fn lift_auipc(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let v = ctx.imm(ctx.pc.wrapping_add(imm_u(insn) as u64));
    ctx.set_gpr(rd(insn), v);
    Lifted::Continue
}

/// jal: a direct jump, a chainable `Goto` (§2.5.1; targets are 2-byte aligned with C).
fn lift_jal(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let link = ctx.imm(ctx.next_pc());
    ctx.set_gpr(rd(insn), link);
    ctx.b.goto(ctx.pc.wrapping_add(imm_j(insn) as u64));
    Lifted::EndBlock
}

/// jalr: target `(rs1 + imm) & !1`, computed before rd is written (rd may be rs1).
fn lift_jalr(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    let sum = gen_address(ctx, rs1(insn), imm_i(insn));
    let target = ctx.b.binary_imm(BinOp::And, Type::I64, sum, !1u64);
    let link = ctx.imm(ctx.next_pc());
    ctx.set_gpr(rd(insn), link);
    ctx.b.exit(Terminal::Indirect { pc: target });
    Lifted::EndBlock
}

fn lift_beq(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_branch(ctx, insn, Cond::Eq)
}
fn lift_bne(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_branch(ctx, insn, Cond::Ne)
}
fn lift_blt(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_branch(ctx, insn, Cond::Lt)
}
fn lift_bge(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_branch(ctx, insn, Cond::Ge)
}
fn lift_bltu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_branch(ctx, insn, Cond::Ltu)
}
fn lift_bgeu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_branch(ctx, insn, Cond::Geu)
}

fn lift_lb(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 0, true)
}
fn lift_lh(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 1, true)
}
fn lift_lw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 2, true)
}
fn lift_ld(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 3, true)
}
fn lift_lbu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 0, false)
}
fn lift_lhu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 1, false)
}
fn lift_lwu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_load(ctx, insn, 2, false)
}

fn lift_sb(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_store(ctx, insn, 0)
}
fn lift_sh(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_store(ctx, insn, 1)
}
fn lift_sw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_store(ctx, insn, 2)
}
fn lift_sd(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_store(ctx, insn, 3)
}

fn lift_addi(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm(ctx, insn, BinOp::Add)
}
fn lift_slti(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_setcond_imm(ctx, insn, Cond::Lt)
}
/// sltiu compares against the sign-extended immediate as unsigned (§2.4.1).
fn lift_sltiu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_setcond_imm(ctx, insn, Cond::Ltu)
}
fn lift_xori(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm(ctx, insn, BinOp::Xor)
}
fn lift_ori(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm(ctx, insn, BinOp::Or)
}
fn lift_andi(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm(ctx, insn, BinOp::And)
}
fn lift_slli(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::Shl, shamt6(insn))
}
fn lift_srli(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::Shr, shamt6(insn))
}
fn lift_srai(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_val(ctx, insn, BinOp::Sar, shamt6(insn))
}

fn lift_add(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Add)
}
fn lift_sub(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Sub)
}
/// Register shifts use rs2[5:0] (§4.2.2); the IR takes the amount modulo 64.
fn lift_sll(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Shl)
}
fn lift_slt(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_setcond(ctx, insn, Cond::Lt)
}
fn lift_sltu(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_setcond(ctx, insn, Cond::Ltu)
}
fn lift_xor(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Xor)
}
fn lift_srl(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Shr)
}
fn lift_sra(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Sar)
}
fn lift_or(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::Or)
}
fn lift_and(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith(ctx, insn, BinOp::And)
}

fn lift_addiw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_w(ctx, insn, BinOp::Add, imm_i(insn) as u64)
}
fn lift_slliw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_w(ctx, insn, BinOp::Shl, shamt5(insn))
}
fn lift_srliw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_w(ctx, insn, BinOp::Shr, shamt5(insn))
}
fn lift_sraiw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_imm_w(ctx, insn, BinOp::Sar, shamt5(insn))
}
fn lift_addw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Add)
}
fn lift_subw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Sub)
}
fn lift_sllw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Shl)
}
fn lift_srlw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Shr)
}
fn lift_sraw(ctx: &mut LiftCtx<'_>, insn: u32) -> Lifted {
    gen_arith_w(ctx, insn, BinOp::Sar)
}

#[cfg(test)]
mod tests {
    use crate::riscv::translate::testutil::*;
    use emu_jit::exec::BlockExit;

    const NEG1: u64 = u64::MAX;

    #[test]
    fn register_alu() {
        assert_eq!(rr("add", NEG1, 2), 1);
        assert_eq!(rr("sub", 1, 2), NEG1);
        assert_eq!(rr("sll", 1, 65), 2);
        assert_eq!(rr("srl", 1 << 63, 63), 1);
        assert_eq!(rr("sra", 1 << 63, 127), NEG1);
        assert_eq!(rr("slt", NEG1, 0), 1);
        assert_eq!(rr("sltu", NEG1, 0), 0);
        assert_eq!(rr("xor", 0xf0, 0xff), 0x0f);
        assert_eq!(rr("or", 0xf0, 0x0f), 0xff);
        assert_eq!(rr("and", 0xf0, 0x3c), 0x30);
    }

    #[test]
    fn word_alu() {
        assert_eq!(rr("addw", 0x7fff_ffff, 1), 0xffff_ffff_8000_0000);
        assert_eq!(rr("subw", 0, 1), NEG1);
        assert_eq!(rr("sllw", 1, 31 + 32), 0xffff_ffff_8000_0000);
        assert_eq!(rr("srlw", 0xffff_ffff_8000_0000, 31), 1);
        assert_eq!(rr("srlw", 0x8000_0000, 0), 0xffff_ffff_8000_0000);
        assert_eq!(rr("sraw", 0x8000_0000, 4), 0xffff_ffff_f800_0000);
    }

    #[test]
    fn immediate_alu() {
        assert_eq!(ri("addi", 5, -6), NEG1);
        assert_eq!(ri("slti", NEG1, 0), 1);
        // sltiu compares with the sign-extended immediate: x < 0xffff...ffff.
        assert_eq!(ri("sltiu", 5, -1), 1);
        assert_eq!(ri("xori", 0, -1), NEG1);
        assert_eq!(ri("ori", 0x100, 0x0ff), 0x1ff);
        assert_eq!(ri("andi", NEG1, 0x7ff), 0x7ff);
        assert_eq!(ri("slli", 1, 63), 1 << 63);
        assert_eq!(ri("srli", NEG1, 60), 0xf);
        assert_eq!(ri("srai", 1 << 63, 0x400 | 63), NEG1);
        assert_eq!(ri("addiw", 0x7fff_ffff, 1), 0xffff_ffff_8000_0000);
        assert_eq!(ri("slliw", 1, 31), 0xffff_ffff_8000_0000);
        assert_eq!(ri("srliw", NEG1, 28), 0xf);
        assert_eq!(ri("sraiw", 0x8000_0000, 0x400 | 31), NEG1);
    }

    #[test]
    fn upper_immediates() {
        assert_eq!(
            exec1(bits_of("lui") | 3 << 7 | 0x8000_0000, 0, 0),
            0xffff_ffff_8000_0000
        );
        let auipc = bits_of("auipc") | 3 << 7 | 0x0000_1000;
        assert_eq!(exec1(auipc, 0, 0), RAM_BASE + 0x1000);
    }

    #[test]
    fn loads_and_stores() {
        let mut cpu = hart();
        let data = RAM_BASE + 0x800;
        poke(&cpu, data, &0x8182_8384_8586_8788u64.to_le_bytes());
        let end = program(
            &cpu,
            &[
                i_type("lb", 3, 1, 0),
                i_type("lbu", 4, 1, 0),
                i_type("lh", 5, 1, 2),
                i_type("lhu", 6, 1, 2),
                i_type("lw", 7, 1, 4),
                i_type("lwu", 8, 1, 4),
                i_type("ld", 9, 1, 0),
                s_type("sd", 1, 9, 8),
                s_type("sw", 1, 9, 16),
                s_type("sh", 1, 9, 24),
                s_type("sb", 1, 9, -8),
                // Misaligned loads are performed (as QEMU does), not trapped.
                i_type("ld", 10, 1, 1),
            ],
        );
        cpu.x[1] = data;
        run_to(&mut cpu, end);
        assert_eq!(
            cpu.common.exception_pending, 0,
            "cause {} tval {:#x} pc {:#x}",
            cpu.pending_cause, cpu.pending_tval, cpu.common.pc
        );
        assert_eq!(cpu.x[3], 0xffff_ffff_ffff_ff88);
        assert_eq!(cpu.x[4], 0x88);
        assert_eq!(cpu.x[5], 0xffff_ffff_ffff_8586);
        assert_eq!(cpu.x[6], 0x8586);
        assert_eq!(cpu.x[7], 0xffff_ffff_8182_8384);
        assert_eq!(cpu.x[8], 0x8182_8384);
        assert_eq!(cpu.x[9], 0x8182_8384_8586_8788);
        assert_eq!(peek_u64(&cpu, data + 8), 0x8182_8384_8586_8788);
        assert_eq!(peek_u64(&cpu, data + 16), 0x8586_8788);
        assert_eq!(peek_u64(&cpu, data + 24), 0x8788);
        assert_eq!(peek_u64(&cpu, data - 8) & 0xff, 0x88);
        // The byte after the doubleword is the low byte of the `sd` at data + 8.
        assert_eq!(cpu.x[10], 0x8881_8283_8485_8687);
    }

    #[test]
    fn branches_leave_by_a_side_exit_when_taken_and_go_on_when_not() {
        for (name, a, b, taken) in [
            ("beq", 1, 1, true),
            ("beq", 1, 2, false),
            ("bne", 1, 2, true),
            ("blt", NEG1, 0, true),
            ("bltu", NEG1, 0, false),
            ("bge", 0, NEG1, true),
            ("bgeu", 0, NEG1, false),
        ] {
            let mut cpu = hart();
            load_words(&cpu, RAM_BASE, &[b_type(name, 1, 2, -16)]);
            cpu.x[1] = a;
            cpu.x[2] = b;
            // A one-instruction block: the taken side exit is the first Goto, the block's
            // end (the instruction limit) the second.
            let exit = step(&mut cpu, 1);
            let (slot, pc) = if taken {
                (0, RAM_BASE - 16)
            } else {
                (1, RAM_BASE + 4)
            };
            assert_eq!(
                (exit, cpu.common.pc, cpu.common.insn_count),
                (BlockExit::Goto { slot }, pc, 1),
                "{name}"
            );
            // Not taken, the block goes on with the next instruction (an addi here).
            let mut cpu = hart();
            load_words(
                &cpu,
                RAM_BASE,
                &[b_type(name, 1, 2, -16), i_type("addi", 5, 0, 7)],
            );
            cpu.x[1] = a;
            cpu.x[2] = b;
            let exit = step(&mut cpu, 8);
            if taken {
                assert_eq!((exit, cpu.x[5]), (BlockExit::Goto { slot: 0 }, 0), "{name}");
            } else {
                assert_eq!(
                    cpu.x[5], 7,
                    "{name}: the fall-through ran in the same block"
                );
                // Branch and addi retire; the zeros after them (c.unimp) raise.
                assert_eq!(cpu.common.insn_count, 2, "{name}");
            }
        }
    }

    #[test]
    fn jumps_link_and_clear_bit_zero() {
        let mut cpu = hart();
        // jal x1, +8
        load_words(&cpu, RAM_BASE, &[bits_of("jal") | 1 << 7 | (8 >> 1) << 21]);
        assert_eq!(step(&mut cpu, 8), BlockExit::Goto { slot: 0 });
        assert_eq!((cpu.common.pc, cpu.x[1]), (RAM_BASE + 8, RAM_BASE + 4));
        // jalr x5, 3(x5): target computed from the old x5, bit 0 cleared.
        load_words(&cpu, RAM_BASE + 8, &[i_type("jalr", 5, 5, 3)]);
        cpu.x[5] = RAM_BASE + 0x100;
        assert_eq!(step(&mut cpu, 8), BlockExit::Indirect);
        assert_eq!((cpu.common.pc, cpu.x[5]), (RAM_BASE + 0x102, RAM_BASE + 12));
    }

    #[test]
    fn x0_is_hardwired() {
        let mut cpu = hart();
        let end = program(&cpu, &[i_type("addi", 0, 0, 5), i_type("addi", 3, 0, 7)]);
        run_to(&mut cpu, end);
        assert_eq!((cpu.x[0], cpu.x[3]), (0, 7));
    }
}
