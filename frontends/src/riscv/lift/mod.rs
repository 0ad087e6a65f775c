//! Lifting RISC-V instructions into emu IR. One file per extension / manual chapter; each
//! `lift_*` function is a short call into the shared emitters of this module (after QEMU's
//! `trans_*` functions over `gen_*` emitters).

pub mod rva;
pub mod rvfd;
pub mod rvi;
pub mod rvm;
pub mod system;
pub mod zb;
pub mod zicond;
pub mod zicsr;

use emu_jit::ir::{BinOp, Builder, Cond, ExitReason, MemOp, Terminal, Type, Value};

use super::cpu::xreg_offset;
use super::decode::{imm_b, imm_i, imm_s, rd, rs1, rs2};

/// Translation-time facts about the block being lifted (all part of the block key's flags, so a
/// translation is only reused where they hold).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransFlags {
    /// Privilege level the code runs at (0 U, 1 S, 3 M).
    pub privilege: u8,
    /// MMU index for ordinary loads/stores (mstatus.MPRV/MPP, SUM, MXR folded in).
    pub mmu_idx: u8,
    /// mstatus.FS != Off: F/D instructions are legal.
    pub fp_enabled: bool,
    /// mstatus.FS == Dirty already; otherwise an instruction that writes FP state first calls
    /// the helper that marks FS Dirty (Privileged ISA §3.1.6.6).
    pub fs_dirty: bool,
}

/// The state a lifter sees for one instruction.
pub struct LiftCtx<'a> {
    pub b: &'a mut Builder,
    /// Virtual PC of the instruction being lifted.
    pub pc: u64,
    /// Length of the instruction in bytes: 2 (compressed, already expanded) or 4.
    pub len: u64,
    /// The original encoding (16-bit ones zero-extended), for tval of illegal instructions.
    pub raw: u32,
    pub flags: TransFlags,
}

/// What a lifter did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifted {
    /// The instruction was lifted; the block may continue with the next one.
    Continue,
    /// The instruction was lifted and ended the block (every path has an `Exit`).
    EndBlock,
    /// The encoding is reserved or illegal in this state: the caller raises the
    /// illegal-instruction exception (and emits nothing for it).
    Illegal,
}

/// A lifter: gets the (expanded) 32-bit instruction word. A lifter that returns
/// [`Lifted::Illegal`] must decide so *before* emitting any op: the `Builder` cannot drop ops,
/// so `translate_block` appends the illegal-instruction trap after whatever was emitted.
pub type LiftFn = fn(&mut LiftCtx<'_>, u32) -> Lifted;

impl TransFlags {
    /// Pack into the block key's `flags`: bits 0..2 privilege, 2..5 mmu_idx, bit 5 fp_enabled,
    /// bit 6 fs_dirty.
    pub fn to_key_flags(self) -> u32 {
        u32::from(self.privilege & 3)
            | (u32::from(self.mmu_idx & 7) << 2)
            | (u32::from(self.fp_enabled) << 5)
            | (u32::from(self.fs_dirty) << 6)
    }

    /// Inverse of [`TransFlags::to_key_flags`].
    pub fn from_key_flags(flags: u32) -> TransFlags {
        TransFlags {
            privilege: (flags & 3) as u8,
            mmu_idx: ((flags >> 2) & 7) as u8,
            fp_enabled: flags & (1 << 5) != 0,
            fs_dirty: flags & (1 << 6) != 0,
        }
    }
}

/// Read integer register `reg` as an I64; x0 reads as the constant 0.
pub fn gen_get_gpr(b: &mut Builder, reg: u32) -> Value {
    if reg == 0 {
        b.iconst(Type::I64, 0)
    } else {
        b.load_global(Type::I64, xreg_offset(reg))
    }
}

/// Write an I64 to integer register `reg`; writes to x0 are dropped.
pub fn gen_set_gpr(b: &mut Builder, reg: u32, v: Value) {
    if reg != 0 {
        b.store_global(Type::I64, xreg_offset(reg), v);
    }
}

impl LiftCtx<'_> {
    /// Address of the next instruction.
    pub fn next_pc(&self) -> u64 {
        self.pc.wrapping_add(self.len)
    }

    pub fn get_gpr(&mut self, reg: u32) -> Value {
        gen_get_gpr(self.b, reg)
    }

    pub fn set_gpr(&mut self, reg: u32, v: Value) {
        gen_set_gpr(self.b, reg, v)
    }

    /// An I64 constant.
    pub fn imm(&mut self, v: u64) -> Value {
        self.b.iconst(Type::I64, v)
    }

    /// End the block with `Exit { reason, pc: next instruction }`.
    pub fn exit_next(&mut self, reason: ExitReason) -> Lifted {
        let pc = self.next_pc();
        self.b.exit(Terminal::Exit { reason, pc });
        Lifted::EndBlock
    }
}

/// Sign-extend the low 32 bits of an I64 value to 64 (the RV64 "W" result rule, Unprivileged
/// ISA §4.2).
pub fn gen_sext_w(b: &mut Builder, v: Value) -> Value {
    let lo = b.trunc(Type::I64, Type::I32, v);
    b.sext(Type::I32, Type::I64, lo)
}

/// Zero-extend the low 32 bits of an I64 value to 64.
pub fn gen_zext_w(b: &mut Builder, v: Value) -> Value {
    let lo = b.trunc(Type::I64, Type::I32, v);
    b.zext(Type::I32, Type::I64, lo)
}

/// R-type `rd = rs1 op rs2` on 64 bits.
pub fn gen_arith(ctx: &mut LiftCtx<'_>, insn: u32, op: BinOp) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let c = ctx.get_gpr(rs2(insn));
    let r = ctx.b.binary(op, Type::I64, a, c);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// R-type `rd = sext32(rs1[31:0] op rs2[31:0])` (the W forms; shifts take the amount modulo
/// 32 as the IR does for I32).
pub fn gen_arith_w(ctx: &mut LiftCtx<'_>, insn: u32, op: BinOp) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let c = ctx.get_gpr(rs2(insn));
    let a = ctx.b.trunc(Type::I64, Type::I32, a);
    let c = ctx.b.trunc(Type::I64, Type::I32, c);
    let r = ctx.b.binary(op, Type::I32, a, c);
    let r = ctx.b.sext(Type::I32, Type::I64, r);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// `rd = f(rs1, rs2)` for operations built from several IR ops.
pub fn gen_rr(
    ctx: &mut LiftCtx<'_>,
    insn: u32,
    f: impl FnOnce(&mut Builder, Value, Value) -> Value,
) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let c = ctx.get_gpr(rs2(insn));
    let r = f(ctx.b, a, c);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// `rd = f(rs1)`.
pub fn gen_unary(
    ctx: &mut LiftCtx<'_>,
    insn: u32,
    f: impl FnOnce(&mut Builder, Value) -> Value,
) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let r = f(ctx.b, a);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// I-type `rd = rs1 op sext(imm12)`.
pub fn gen_arith_imm(ctx: &mut LiftCtx<'_>, insn: u32, op: BinOp) -> Lifted {
    gen_arith_imm_val(ctx, insn, op, imm_i(insn) as u64)
}

/// `rd = rs1 op imm` with an already extracted immediate (shift amounts, Zbs bit numbers).
pub fn gen_arith_imm_val(ctx: &mut LiftCtx<'_>, insn: u32, op: BinOp, imm: u64) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let r = ctx.b.binary_imm(op, Type::I64, a, imm);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// `rd = sext32(rs1[31:0] op imm[31:0])` (addiw, slliw, srliw, sraiw, roriw).
pub fn gen_arith_imm_w(ctx: &mut LiftCtx<'_>, insn: u32, op: BinOp, imm: u64) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let a = ctx.b.trunc(Type::I64, Type::I32, a);
    let r = ctx.b.binary_imm(op, Type::I32, a, imm);
    let r = ctx.b.sext(Type::I32, Type::I64, r);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// Shift amount of a 64-bit immediate shift (shamt, bits 25:20).
pub const fn shamt6(insn: u32) -> u64 {
    ((insn >> 20) & 0x3f) as u64
}

/// Shift amount of a 32-bit (W) immediate shift (shamt, bits 24:20).
pub const fn shamt5(insn: u32) -> u64 {
    ((insn >> 20) & 0x1f) as u64
}

/// `rd = (rs1 cond rs2) ? 1 : 0` (slt, sltu).
pub fn gen_setcond(ctx: &mut LiftCtx<'_>, insn: u32, cond: Cond) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let c = ctx.get_gpr(rs2(insn));
    let r = ctx.b.set_cond(cond, Type::I64, a, c);
    let r = ctx.b.zext(Type::I8, Type::I64, r);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// `rd = (rs1 cond sext(imm12)) ? 1 : 0` (slti, sltiu).
pub fn gen_setcond_imm(ctx: &mut LiftCtx<'_>, insn: u32, cond: Cond) -> Lifted {
    let a = ctx.get_gpr(rs1(insn));
    let c = ctx.imm(imm_i(insn) as u64);
    let r = ctx.b.set_cond(cond, Type::I64, a, c);
    let r = ctx.b.zext(Type::I8, Type::I64, r);
    ctx.set_gpr(rd(insn), r);
    Lifted::Continue
}

/// Effective address `rs1 + offset`.
pub fn gen_address(ctx: &mut LiftCtx<'_>, base: u32, offset: i64) -> Value {
    let a = ctx.get_gpr(base);
    if offset == 0 {
        a
    } else {
        ctx.b.binary_imm(BinOp::Add, Type::I64, a, offset as u64)
    }
}

/// `rd = load(rs1 + imm12)` through the hart's memory mode. Misaligned addresses are performed
/// by the slow path (as QEMU does), so the MemOp is not `aligned`.
pub fn gen_load(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8, signed: bool) -> Lifted {
    let addr = gen_address(ctx, rs1(insn), imm_i(insn));
    let mem = MemOp::new(size_log2, signed, false);
    let v = ctx.b.load(Type::I64, mem, ctx.flags.mmu_idx, addr);
    ctx.set_gpr(rd(insn), v);
    Lifted::Continue
}

/// `store(rs1 + imm_s, rs2)` of the low `1 << size_log2` bytes.
pub fn gen_store(ctx: &mut LiftCtx<'_>, insn: u32, size_log2: u8) -> Lifted {
    let addr = gen_address(ctx, rs1(insn), imm_s(insn));
    let v = ctx.get_gpr(rs2(insn));
    let mem = MemOp::new(size_log2, false, false);
    ctx.b.store(Type::I64, mem, ctx.flags.mmu_idx, v, addr);
    Lifted::Continue
}

/// Conditional branch: a side exit when taken, the block goes on when not. With C, every target is 2-byte
/// aligned (the B immediate is even), so RV64GC never raises instruction-address-misaligned.
pub fn gen_branch(ctx: &mut LiftCtx<'_>, insn: u32, cond: Cond) -> Lifted {
    // The taken path leaves through a side exit (a chainable `Goto`) at the branch itself, so
    // its retired-instruction count and pc are those of the branch; the not-taken path goes on
    // in the same block (a superblock): guest registers stay in host registers across the
    // branch, and the block ends where `translate_block` ends any block (length, page end,
    // an instruction that ends it).
    let a = ctx.get_gpr(rs1(insn));
    let c = ctx.get_gpr(rs2(insn));
    let not_taken = ctx.b.new_label();
    ctx.b.br_cond(cond.inverse(), Type::I64, a, c, not_taken);
    ctx.b.goto(ctx.pc.wrapping_add(imm_b(insn) as u64));
    ctx.b.label(not_taken);
    Lifted::Continue
}
