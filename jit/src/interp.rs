//! The IR interpreter: the reference semantics of the IR (`ir/mod.rs`) and tier 0 of the engine.
//!
//! A block is pre-decoded once ([`InterpBlock::new`]) into a compact op list: labels become op
//! indices, values become slots of a `u64` register file (an I128 value takes two adjacent
//! slots, low half first), helper calls carry their function pointer and effects, and `Goto`
//! exits carry their chain-slot number. Running it is then one `match` per op.
//!
//! `insn` ops cost nothing at run time: every op that can exit or that exposes the instruction
//! count (loads, stores, calls, terminals) carries the position of its instruction, i.e. the
//! number of `insn` ops up to and including its own *in block order*. "Instructions before the
//! current one" is therefore a static count (tier 1 must count the same way); a
//! block whose branches skip an `insn` op would count it (no lifter does that, and the
//! optimizer keeps such numbering unchanged).
//!
//! Every register-file slot always holds its value masked to its type; the fast paths (narrow
//! zero extension as a copy, comparisons on masked values) rely on it.
//!
//! The value semantics ([`eval_binary`], [`eval_unary`], [`eval_ext`], [`eval_cond`]) are public
//! so the constant folder computes exactly what the interpreter does.

use crate::env::{read_host, tlb_hit, tlb_index, write_host, CpuCommon, NB_MMU_MODES};
use crate::exec::BlockExit;
use crate::helper::HelperFn;
use crate::ir::*;

// ---------------------------------------------------------------------------------------------
// Value semantics, on u128 bit patterns masked to the type's width.

/// Sign-extend the low `bits` bits of `x` to i128.
#[inline]
fn sx(x: u128, bits: u32) -> i128 {
    let s = 128 - bits;
    ((x << s) as i128) >> s
}

/// High half of the unsigned `bits` × `bits` product of two masked values.
fn mulhu(a: u128, b: u128, bits: u32) -> u128 {
    if bits <= 64 {
        return (a * b) >> bits;
    }
    // 128 × 128 → 256 bits, schoolbook on 64-bit halves.
    let m = u128::from(u64::MAX);
    let (a0, a1, b0, b1) = (a & m, a >> 64, b & m, b >> 64);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & m) + (p10 & m);
    p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64)
}

/// `a op b` at type `ty` (operands masked to `ty`; the result is masked). Division is total as
/// `BinOp` documents (RISC-V Unprivileged ISA §13.2).
pub fn eval_binary(op: BinOp, ty: Type, a: u128, b: u128) -> u128 {
    let bits = ty.bits();
    let mask = ty.mask();
    let (a, b) = (a & mask, b & mask);
    let min = 1u128 << (bits - 1);
    let sh = (b as u32) & (bits - 1);
    let neg_a = a & min != 0;
    let neg_b = b & min != 0;
    let r = match op {
        BinOp::Add => a.wrapping_add(b),
        BinOp::Sub => a.wrapping_sub(b),
        BinOp::Mul => a.wrapping_mul(b),
        BinOp::MulHu => mulhu(a, b, bits),
        // Signed high products from the unsigned one: subtract b (resp. a) when a (resp. b)
        // is negative, modulo 2^bits.
        BinOp::MulHs => {
            let mut h = mulhu(a, b, bits);
            if neg_a {
                h = h.wrapping_sub(b);
            }
            if neg_b {
                h = h.wrapping_sub(a);
            }
            h
        }
        BinOp::MulHsu => {
            let h = mulhu(a, b, bits);
            if neg_a {
                h.wrapping_sub(b)
            } else {
                h
            }
        }
        BinOp::DivU => a.checked_div(b).unwrap_or(mask),
        BinOp::RemU => a.checked_rem(b).unwrap_or(a),
        BinOp::DivS => {
            if b == 0 {
                mask
            } else if a == min && b == mask {
                min
            } else {
                (sx(a, bits).wrapping_div(sx(b, bits))) as u128
            }
        }
        BinOp::RemS => {
            if b == 0 {
                a
            } else if a == min && b == mask {
                0
            } else {
                (sx(a, bits).wrapping_rem(sx(b, bits))) as u128
            }
        }
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::AndNot => a & !b,
        BinOp::OrNot => a | !b,
        BinOp::XorNot => !(a ^ b),
        BinOp::Shl => a << sh,
        BinOp::Shr => a >> sh,
        BinOp::Sar => (sx(a, bits) >> sh) as u128,
        BinOp::Rotl => {
            if sh == 0 {
                a
            } else {
                (a << sh) | (a >> (bits - sh))
            }
        }
        BinOp::Rotr => {
            if sh == 0 {
                a
            } else {
                (a >> sh) | (a << (bits - sh))
            }
        }
        BinOp::MinS => {
            if sx(a, bits) <= sx(b, bits) {
                a
            } else {
                b
            }
        }
        BinOp::MaxS => {
            if sx(a, bits) >= sx(b, bits) {
                a
            } else {
                b
            }
        }
        BinOp::MinU => a.min(b),
        BinOp::MaxU => a.max(b),
    };
    r & mask
}

/// `op a` at type `ty` (for `Bitcast`, `ty` is the result type; the bits are unchanged).
pub fn eval_unary(op: UnOp, ty: Type, a: u128) -> u128 {
    let bits = ty.bits();
    let mask = ty.mask();
    let a = a & mask;
    let r = match op {
        UnOp::Not => !a,
        UnOp::Neg => a.wrapping_neg(),
        UnOp::Clz => u128::from(a.leading_zeros() - (128 - bits)),
        UnOp::Ctz => u128::from(a.trailing_zeros().min(bits)),
        UnOp::Popcnt => u128::from(a.count_ones()),
        UnOp::Bswap => a.swap_bytes() >> (128 - bits),
        UnOp::Bitcast => a,
    };
    r & mask
}

/// Width conversion of a value of type `from` to `to`.
pub fn eval_ext(kind: ExtKind, from: Type, to: Type, a: u128) -> u128 {
    let a = a & from.mask();
    match kind {
        ExtKind::Zext => a,
        ExtKind::Sext => (sx(a, from.bits()) as u128) & to.mask(),
        ExtKind::Trunc => a & to.mask(),
    }
}

/// `a cond b` at type `ty`.
pub fn eval_cond(cond: Cond, ty: Type, a: u128, b: u128) -> bool {
    let bits = ty.bits();
    let (a, b) = (a & ty.mask(), b & ty.mask());
    let (sa, sb) = (sx(a, bits), sx(b, bits));
    match cond {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Lt => sa < sb,
        Cond::Ge => sa >= sb,
        Cond::Gt => sa > sb,
        Cond::Le => sa <= sb,
        Cond::Ltu => a < b,
        Cond::Geu => a >= b,
        Cond::Gtu => a > b,
        Cond::Leu => a <= b,
    }
}

// ---------------------------------------------------------------------------------------------
// Pre-decoded form.

type Slot = u32;

/// One pre-decoded op. `wide` variants handle I128 (two slots); the others work on one u64
/// slot holding a value masked to its type.
#[derive(Clone, Copy, Debug)]
enum D {
    Const {
        d: Slot,
        imm: u64,
    },
    Const128 {
        d: Slot,
        imm: u64,
    },
    Mov {
        d: Slot,
        s: Slot,
        wide: bool,
    },
    LoadGlobal {
        d: Slot,
        off: u32,
        ty: Type,
    },
    StoreGlobal {
        s: Slot,
        off: u32,
        ty: Type,
    },
    /// The common 8-byte global access.
    LoadGlobal64 {
        d: Slot,
        off: u32,
    },
    StoreGlobal64 {
        s: Slot,
        off: u32,
    },
    /// Common 64-bit-or-narrower ops, inline.
    Add {
        d: Slot,
        a: Slot,
        b: Slot,
        mask: u64,
    },
    AddI {
        d: Slot,
        a: Slot,
        imm: u64,
        mask: u64,
    },
    Sub {
        d: Slot,
        a: Slot,
        b: Slot,
        mask: u64,
    },
    And {
        d: Slot,
        a: Slot,
        b: Slot,
    },
    Or {
        d: Slot,
        a: Slot,
        b: Slot,
    },
    Xor {
        d: Slot,
        a: Slot,
        b: Slot,
    },
    AndI {
        d: Slot,
        a: Slot,
        imm: u64,
    },
    /// Shifts of 64 bits or fewer; `bits` is the width.
    Shl {
        d: Slot,
        a: Slot,
        b: Slot,
        bits: u8,
    },
    Shr {
        d: Slot,
        a: Slot,
        b: Slot,
        bits: u8,
    },
    Sar {
        d: Slot,
        a: Slot,
        b: Slot,
        bits: u8,
    },
    /// Sign extension between widths of 64 bits or fewer: `shift` = 64 - from bits, `mask` of
    /// the result type.
    Sext {
        d: Slot,
        s: Slot,
        shift: u8,
        mask: u64,
    },
    /// Comparisons of 64 bits or fewer: `shift` = 64 - width, to sign-extend for signed
    /// conditions (operands are kept masked, so unsigned ones compare directly).
    SetCond64 {
        cond: Cond,
        shift: u8,
        d: Slot,
        a: Slot,
        b: Slot,
    },
    BrCond64 {
        cond: Cond,
        shift: u8,
        a: Slot,
        b: Slot,
        target: u32,
    },
    /// Any binary op (any width), through [`eval_binary`].
    Bin {
        op: BinOp,
        ty: Type,
        d: Slot,
        a: Slot,
        b: Slot,
    },
    Un {
        op: UnOp,
        ty: Type,
        d: Slot,
        s: Slot,
    },
    Ext {
        kind: ExtKind,
        from: Type,
        to: Type,
        d: Slot,
        s: Slot,
    },
    SetCond {
        cond: Cond,
        ty: Type,
        d: Slot,
        a: Slot,
        b: Slot,
    },
    Select {
        d: Slot,
        c: Slot,
        a: Slot,
        b: Slot,
        wide: bool,
    },
    // Ops that may exit or expose the instruction count carry `at`: the number of `insn`
    // ops up to and including the current instruction's (0 before the first), which is the
    // index of its pc in `InterpBlock::pcs`.
    Load {
        d: Slot,
        a: Slot,
        mem: MemOp,
        mmu: u8,
        ty: Type,
        at: u32,
    },
    Store {
        s: Slot,
        a: Slot,
        mem: MemOp,
        mmu: u8,
        at: u32,
    },
    Call {
        call: u32,
        at: u32,
    },
    Br {
        target: u32,
    },
    BrCond {
        cond: Cond,
        ty: Type,
        a: Slot,
        b: Slot,
        target: u32,
    },
    Goto {
        pc: u64,
        slot: u32,
        at: u32,
    },
    Indirect {
        s: Slot,
        at: u32,
    },
    Exit {
        reason: ExitReason,
        pc: u64,
        at: u32,
    },
    ExitDyn {
        reason: ExitReason,
        s: Slot,
        at: u32,
    },
}

#[derive(Clone, Copy, Debug)]
struct CallInfo {
    func: HelperFn,
    args: [Slot; 4],
    nargs: u8,
    dst: Option<Slot>,
    effects: HelperEffects,
}

/// A pre-decoded block, ready to run any number of times.
#[derive(Clone, Debug)]
pub struct InterpBlock {
    ops: Vec<D>,
    calls: Vec<CallInfo>,
    slots: usize,
    start_pc: u64,
    /// `pcs[at]`: the pc of the instruction an op with that `at` belongs to (`pcs[0]` is the
    /// block start, for ops before the first `insn`).
    pcs: Vec<u64>,
}

// The engine shares pre-decoded blocks between threads (the TB cache).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<InterpBlock>();
};

/// Register files up to this many slots live on the stack (a small and a larger size, so
/// short blocks do not pay for zeroing a big array).
const SMALL_SLOTS: usize = 24;
const STACK_SLOTS: usize = 96;

impl InterpBlock {
    /// Pre-decode `block`, which must be verified ([`crate::ir::verify::verify`]).
    pub fn new(block: &IrBlock) -> InterpBlock {
        let mut slot_of = Vec::with_capacity(block.values.len());
        let mut slots = 0usize;
        for ty in &block.values {
            slot_of.push(slots as Slot);
            slots += if *ty == Type::I128 { 2 } else { 1 };
        }
        let s = |v: Value| slot_of.get(v.0 as usize).copied().unwrap_or(0);
        // Label positions (the index of the decoded op after the label); branches hold the
        // label number until the fix-up after decoding.
        let mut label_pos = vec![0u32; block.labels as usize];
        let target = |l: Label| l.0;
        let mut ops = Vec::with_capacity(block.ops.len());
        let mut calls = Vec::new();
        let mut pcs = vec![block.start_pc];
        let mut at = 0u32;
        let mut goto_slot = 0u32;
        // Constants known at decode time, to fold `add x, const` into one op.
        let mut consts: Vec<Option<u64>> = vec![None; block.values.len()];
        for op in &block.ops {
            let d = match *op {
                // Instruction boundaries cost nothing at run time: the ops that need the
                // current instruction carry it (`at`).
                Op::InsnStart { pc, .. } => {
                    pcs.push(pc);
                    at += 1;
                    continue;
                }
                Op::Const { dst, ty, imm } => {
                    if ty == Type::I128 {
                        D::Const128 { d: s(dst), imm }
                    } else {
                        let imm = imm & ty.mask() as u64;
                        if let Some(c) = consts.get_mut(dst.0 as usize) {
                            *c = Some(imm);
                        }
                        D::Const { d: s(dst), imm }
                    }
                }
                Op::Mov { dst, ty, src } => D::Mov {
                    d: s(dst),
                    s: s(src),
                    wide: ty == Type::I128,
                },
                Op::LoadGlobal { dst, ty, offset } if ty.bytes() == 8 => D::LoadGlobal64 {
                    d: s(dst),
                    off: offset,
                },
                Op::StoreGlobal { src, ty, offset } if ty.bytes() == 8 => D::StoreGlobal64 {
                    s: s(src),
                    off: offset,
                },
                Op::LoadGlobal { dst, ty, offset } => D::LoadGlobal {
                    d: s(dst),
                    off: offset,
                    ty,
                },
                Op::StoreGlobal { src, ty, offset } => D::StoreGlobal {
                    s: s(src),
                    off: offset,
                    ty,
                },
                Op::Binary { op, ty, dst, a, b } if ty.bits() <= 64 => {
                    let (d, sa, sb) = (s(dst), s(a), s(b));
                    let mask = ty.mask() as u64;
                    let cb = consts.get(b.0 as usize).copied().flatten();
                    match (op, cb) {
                        (BinOp::Add, Some(imm)) => D::AddI {
                            d,
                            a: sa,
                            imm,
                            mask,
                        },
                        (BinOp::Add, None) => D::Add {
                            d,
                            a: sa,
                            b: sb,
                            mask,
                        },
                        (BinOp::Sub, _) => D::Sub {
                            d,
                            a: sa,
                            b: sb,
                            mask,
                        },
                        (BinOp::And, Some(imm)) => D::AndI { d, a: sa, imm },
                        (BinOp::Or, _) => D::Or { d, a: sa, b: sb },
                        (BinOp::Xor, _) => D::Xor { d, a: sa, b: sb },
                        (BinOp::And, _) => D::And { d, a: sa, b: sb },
                        (BinOp::Shl, _) => D::Shl {
                            d,
                            a: sa,
                            b: sb,
                            bits: ty.bits() as u8,
                        },
                        (BinOp::Shr, _) => D::Shr {
                            d,
                            a: sa,
                            b: sb,
                            bits: ty.bits() as u8,
                        },
                        (BinOp::Sar, _) => D::Sar {
                            d,
                            a: sa,
                            b: sb,
                            bits: ty.bits() as u8,
                        },
                        _ => D::Bin {
                            op,
                            ty,
                            d,
                            a: sa,
                            b: sb,
                        },
                    }
                }
                Op::Binary { op, ty, dst, a, b } => D::Bin {
                    op,
                    ty,
                    d: s(dst),
                    a: s(a),
                    b: s(b),
                },
                Op::Unary { op, ty, dst, src } => D::Un {
                    op,
                    ty,
                    d: s(dst),
                    s: s(src),
                },
                // Slots hold values masked to their type, so a narrow zero extension is a
                // copy and a truncation a mask.
                Op::Ext {
                    kind,
                    from,
                    to,
                    dst,
                    src,
                } if from.bits() <= 64 && to.bits() <= 64 => match kind {
                    ExtKind::Zext => D::Mov {
                        d: s(dst),
                        s: s(src),
                        wide: false,
                    },
                    ExtKind::Trunc => D::AndI {
                        d: s(dst),
                        a: s(src),
                        imm: to.mask() as u64,
                    },
                    ExtKind::Sext => D::Sext {
                        d: s(dst),
                        s: s(src),
                        shift: (64 - from.bits()) as u8,
                        mask: to.mask() as u64,
                    },
                },
                Op::Ext {
                    kind,
                    from,
                    to,
                    dst,
                    src,
                } => D::Ext {
                    kind,
                    from,
                    to,
                    d: s(dst),
                    s: s(src),
                },
                Op::SetCond {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                } if ty.bits() <= 64 => D::SetCond64 {
                    cond,
                    shift: (64 - ty.bits()) as u8,
                    d: s(dst),
                    a: s(a),
                    b: s(b),
                },
                Op::SetCond {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                } => D::SetCond {
                    cond,
                    ty,
                    d: s(dst),
                    a: s(a),
                    b: s(b),
                },
                Op::Select {
                    ty,
                    dst,
                    cond_val,
                    a,
                    b,
                } => D::Select {
                    d: s(dst),
                    c: s(cond_val),
                    a: s(a),
                    b: s(b),
                    wide: ty == Type::I128,
                },
                Op::Load {
                    ty,
                    mem,
                    mmu_idx,
                    dst,
                    addr,
                } => D::Load {
                    d: s(dst),
                    a: s(addr),
                    mem,
                    mmu: mmu_idx,
                    ty,
                    at,
                },
                Op::Store {
                    mem,
                    mmu_idx,
                    src,
                    addr,
                    ..
                } => D::Store {
                    s: s(src),
                    a: s(addr),
                    mem,
                    mmu: mmu_idx,
                    at,
                },
                Op::Call {
                    helper,
                    ref args,
                    dst,
                } => {
                    let Some(def) = block.helper(helper) else {
                        continue;
                    };
                    let mut a = [0; 4];
                    for (slot, v) in a.iter_mut().zip(args) {
                        *slot = s(*v);
                    }
                    calls.push(CallInfo {
                        func: def.func,
                        args: a,
                        nargs: args.len().min(4) as u8,
                        dst: dst.map(s),
                        effects: def.effects,
                    });
                    D::Call {
                        call: calls.len() as u32 - 1,
                        at,
                    }
                }
                Op::Label(l) => {
                    if let Some(p) = label_pos.get_mut(l.0 as usize) {
                        *p = ops.len() as u32;
                    }
                    continue;
                }
                Op::Br(l) => D::Br { target: target(l) },
                Op::BrCond {
                    cond,
                    ty,
                    a,
                    b,
                    label,
                } if ty.bits() <= 64 => D::BrCond64 {
                    cond,
                    shift: (64 - ty.bits()) as u8,
                    a: s(a),
                    b: s(b),
                    target: target(label),
                },
                Op::BrCond {
                    cond,
                    ty,
                    a,
                    b,
                    label,
                } => D::BrCond {
                    cond,
                    ty,
                    a: s(a),
                    b: s(b),
                    target: target(label),
                },
                Op::Exit(t) => match t {
                    Terminal::Goto { pc } => {
                        goto_slot += 1;
                        D::Goto {
                            pc,
                            slot: goto_slot - 1,
                            at,
                        }
                    }
                    Terminal::Indirect { pc } => D::Indirect { s: s(pc), at },
                    Terminal::Exit { reason, pc } => D::Exit { reason, pc, at },
                    Terminal::ExitDynamic { reason, pc } => D::ExitDyn {
                        reason,
                        s: s(pc),
                        at,
                    },
                },
            };
            ops.push(d);
        }
        for op in ops.iter_mut() {
            if let D::Br { target } | D::BrCond { target, .. } | D::BrCond64 { target, .. } = op {
                *target = label_pos.get(*target as usize).copied().unwrap_or(0);
            }
        }
        InterpBlock {
            ops,
            calls,
            slots,
            start_pc: block.start_pc,
            pcs,
        }
    }

    /// Run the block once.
    ///
    /// # Safety
    /// `state` points to a live guest state starting with [`CpuCommon`] (the
    /// [`crate::helper::GuestState`] contract), exclusively borrowed for the call, and every
    /// global offset of the block lies inside that state.
    pub unsafe fn run(&self, state: *mut CpuCommon) -> BlockExit {
        if self.slots <= SMALL_SLOTS {
            let mut regs = [0u64; SMALL_SLOTS];
            // SAFETY: forwarded caller contract.
            unsafe { self.exec(state, &mut regs) }
        } else if self.slots <= STACK_SLOTS {
            let mut regs = [0u64; STACK_SLOTS];
            // SAFETY: forwarded caller contract.
            unsafe { self.exec(state, &mut regs) }
        } else {
            let mut regs = vec![0u64; self.slots + 1];
            // SAFETY: forwarded caller contract.
            unsafe { self.exec(state, &mut regs) }
        }
    }

    /// # Safety
    /// As [`InterpBlock::run`].
    unsafe fn exec(&self, st: *mut CpuCommon, r: &mut [u64]) -> BlockExit {
        // SAFETY: (whole function) `st` is valid and exclusively ours (caller contract); fields
        // are accessed through the raw pointer, never through a long-lived reference, so
        // helpers and the slow path may use the same pointer (with the whole state's
        // provenance) in between.
        unsafe {
            if (*st).insn_count >= (*st).insn_limit {
                (*st).pc = self.start_pc;
                return BlockExit::Budget;
            }
            let base = (*st).insn_count;
            let mut ip = 0usize;
            macro_rules! get {
                ($s:expr) => {
                    r[$s as usize]
                };
            }
            macro_rules! get128 {
                ($s:expr) => {
                    u128::from(r[$s as usize]) | (u128::from(r[$s as usize + 1]) << 64)
                };
            }
            macro_rules! set128 {
                ($s:expr, $v:expr) => {{
                    let v: u128 = $v;
                    r[$s as usize] = v as u64;
                    r[$s as usize + 1] = (v >> 64) as u64;
                }};
            }
            // Instructions retired before the one at `at` (which is the 1-based count of
            // instructions started), and that instruction's pc.
            let before = |at: u32| u64::from(at.saturating_sub(1));
            let pc_of = |at: u32| self.pcs.get(at as usize).copied().unwrap_or(self.start_pc);
            macro_rules! fault {
                ($at:expr) => {{
                    (*st).pc = pc_of($at);
                    (*st).insn_count = base + before($at);
                    return BlockExit::Fault;
                }};
            }
            // Reads a value of type `ty` as u128.
            let read = |r: &[u64], s: Slot, ty: Type| -> u128 {
                let i = s as usize;
                if ty == Type::I128 {
                    u128::from(r[i]) | (u128::from(r[i + 1]) << 64)
                } else {
                    u128::from(r[i])
                }
            };
            let write = |r: &mut [u64], s: Slot, ty: Type, v: u128| {
                let i = s as usize;
                r[i] = v as u64;
                if ty == Type::I128 {
                    r[i + 1] = (v >> 64) as u64;
                }
            };
            loop {
                let Some(op) = self.ops.get(ip) else {
                    // Unreachable for a verified block (its last op is an exit or a branch).
                    fault!(0);
                };
                ip += 1;
                match *op {
                    D::Const { d, imm } => r[d as usize] = imm,
                    D::Const128 { d, imm } => set128!(d, u128::from(imm)),
                    D::Mov { d, s, wide } => {
                        r[d as usize] = get!(s);
                        if wide {
                            r[d as usize + 1] = get!(s + 1);
                        }
                    }
                    D::LoadGlobal { d, off, ty } => {
                        let p = (st as *const u8).add(off as usize);
                        let v = match ty.bytes() {
                            1 => u128::from(p.read()),
                            2 => u128::from((p as *const u16).read_unaligned()),
                            4 => u128::from((p as *const u32).read_unaligned()),
                            8 => u128::from((p as *const u64).read_unaligned()),
                            _ => (p as *const u128).read_unaligned(),
                        };
                        write(r, d, ty, v);
                    }
                    D::LoadGlobal64 { d, off } => {
                        r[d as usize] =
                            ((st as *const u8).add(off as usize) as *const u64).read_unaligned();
                    }
                    D::StoreGlobal64 { s, off } => {
                        ((st as *mut u8).add(off as usize) as *mut u64).write_unaligned(get!(s));
                    }
                    D::StoreGlobal { s, off, ty } => {
                        let p = (st as *mut u8).add(off as usize);
                        let v = read(r, s, ty);
                        match ty.bytes() {
                            1 => p.write(v as u8),
                            2 => (p as *mut u16).write_unaligned(v as u16),
                            4 => (p as *mut u32).write_unaligned(v as u32),
                            8 => (p as *mut u64).write_unaligned(v as u64),
                            _ => (p as *mut u128).write_unaligned(v),
                        }
                    }
                    D::Add { d, a, b, mask } => {
                        r[d as usize] = get!(a).wrapping_add(get!(b)) & mask
                    }
                    D::AddI { d, a, imm, mask } => r[d as usize] = get!(a).wrapping_add(imm) & mask,
                    D::Sub { d, a, b, mask } => {
                        r[d as usize] = get!(a).wrapping_sub(get!(b)) & mask
                    }
                    D::And { d, a, b } => r[d as usize] = get!(a) & get!(b),
                    D::Or { d, a, b } => r[d as usize] = get!(a) | get!(b),
                    D::Xor { d, a, b } => r[d as usize] = get!(a) ^ get!(b),
                    D::AndI { d, a, imm } => r[d as usize] = get!(a) & imm,
                    D::Shl { d, a, b, bits } => {
                        let sh = get!(b) as u32 & (u32::from(bits) - 1);
                        r[d as usize] = (get!(a) << sh) & mask_of(bits);
                    }
                    D::Shr { d, a, b, bits } => {
                        let sh = get!(b) as u32 & (u32::from(bits) - 1);
                        r[d as usize] = get!(a) >> sh;
                    }
                    D::Sar { d, a, b, bits } => {
                        let sh = get!(b) as u32 & (u32::from(bits) - 1);
                        let up = 64 - u32::from(bits);
                        r[d as usize] =
                            ((((get!(a) << up) as i64) >> (up + sh)) as u64) & mask_of(bits);
                    }
                    D::Sext { d, s, shift, mask } => {
                        r[d as usize] = ((((get!(s) << shift) as i64) >> shift) as u64) & mask;
                    }
                    D::SetCond64 {
                        cond,
                        shift,
                        d,
                        a,
                        b,
                    } => {
                        r[d as usize] = u64::from(cond64(cond, shift, get!(a), get!(b)));
                    }
                    D::BrCond64 {
                        cond,
                        shift,
                        a,
                        b,
                        target,
                    } => {
                        if cond64(cond, shift, get!(a), get!(b)) {
                            ip = target as usize;
                        }
                    }
                    D::Bin { op, ty, d, a, b } => {
                        let v = eval_binary(op, ty, read(r, a, ty), read(r, b, ty));
                        write(r, d, ty, v);
                    }
                    D::Un { op, ty, d, s } => {
                        let v = eval_unary(op, ty, read(r, s, ty));
                        write(r, d, ty, v);
                    }
                    D::Ext {
                        kind,
                        from,
                        to,
                        d,
                        s,
                    } => {
                        let v = eval_ext(kind, from, to, read(r, s, from));
                        write(r, d, to, v);
                    }
                    D::SetCond { cond, ty, d, a, b } => {
                        r[d as usize] =
                            u64::from(eval_cond(cond, ty, read(r, a, ty), read(r, b, ty)));
                    }
                    D::Select { d, c, a, b, wide } => {
                        let src = if get!(c) & 0xff != 0 { a } else { b };
                        if wide {
                            set128!(d, get128!(src));
                        } else {
                            r[d as usize] = get!(src);
                        }
                    }
                    D::Load {
                        d,
                        a,
                        mem,
                        mmu,
                        ty,
                        at,
                    } => {
                        let v = mem_load(st, get!(a), mem, mmu);
                        if (*st).exception_pending != 0 {
                            fault!(at);
                        }
                        let v = if ty == Type::I128 && mem.signed {
                            v as i64 as i128 as u128
                        } else {
                            u128::from(v) & ty.mask()
                        };
                        write(r, d, ty, v);
                    }
                    D::Store { s, a, mem, mmu, at } => {
                        mem_store(st, get!(a), get!(s), mem, mmu);
                        if (*st).exception_pending != 0 {
                            fault!(at);
                        }
                    }
                    D::Call { call, at } => {
                        let Some(c) = self.calls.get(call as usize) else {
                            fault!(at);
                        };
                        if c.effects.reads_state {
                            (*st).pc = pc_of(at);
                            (*st).insn_count = base + before(at);
                        }
                        let mut args = [0u64; 4];
                        for (v, s) in args.iter_mut().zip(&c.args).take(usize::from(c.nargs)) {
                            *v = get!(*s);
                        }
                        let ret = (c.func)(st, args[0], args[1], args[2], args[3]);
                        if let Some(d) = c.dst {
                            r[d as usize] = ret;
                        }
                        if c.effects.may_raise && (*st).exception_pending != 0 {
                            fault!(at);
                        }
                    }
                    D::Br { target } => ip = target as usize,
                    D::BrCond {
                        cond,
                        ty,
                        a,
                        b,
                        target,
                    } => {
                        if eval_cond(cond, ty, read(r, a, ty), read(r, b, ty)) {
                            ip = target as usize;
                        }
                    }
                    D::Goto { pc, slot, at } => {
                        (*st).pc = pc;
                        (*st).insn_count = base + u64::from(at);
                        return BlockExit::Goto { slot };
                    }
                    D::Indirect { s, at } => {
                        (*st).pc = get!(s);
                        (*st).insn_count = base + u64::from(at);
                        return BlockExit::Indirect;
                    }
                    D::Exit { reason, pc, at } => {
                        (*st).pc = pc;
                        (*st).insn_count = base + retired(reason, before(at), at);
                        return BlockExit::Exit(reason);
                    }
                    D::ExitDyn { reason, s, at } => {
                        (*st).pc = get!(s);
                        (*st).insn_count = base + retired(reason, before(at), at);
                        return BlockExit::Exit(reason);
                    }
                }
            }
        }
    }
}

/// All-ones mask of a width of 1..=64 bits.
#[inline]
fn mask_of(bits: u8) -> u64 {
    u64::MAX >> (64 - u32::from(bits))
}

/// `a cond b` on masked values of a width of 64 bits or fewer (`shift` = 64 - width).
#[inline]
fn cond64(cond: Cond, shift: u8, a: u64, b: u64) -> bool {
    let (sa, sb) = (((a << shift) as i64), ((b << shift) as i64));
    match cond {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Lt => sa < sb,
        Cond::Ge => sa >= sb,
        Cond::Gt => sa > sb,
        Cond::Le => sa <= sb,
        Cond::Ltu => a < b,
        Cond::Geu => a >= b,
        Cond::Gtu => a > b,
        Cond::Leu => a <= b,
    }
}

/// Instructions retired by an `Exit`: an instruction that raises does not retire.
#[inline]
fn retired(reason: ExitReason, before: u64, started: u32) -> u64 {
    if reason == ExitReason::Exception {
        before
    } else {
        u64::from(started)
    }
}

/// The softmmu load of `env.rs`, through the raw state pointer so the slow path receives the
/// pointer with the whole guest state's provenance.
///
/// # Safety
/// `st` is a live, exclusively borrowed guest state.
#[inline]
unsafe fn mem_load(st: *mut CpuCommon, vaddr: u64, mem: MemOp, mmu: u8) -> u64 {
    // SAFETY: `st` is valid (caller contract); the index is in range by construction.
    unsafe {
        let entry = &(*st).tlb[usize::from(mmu) % NB_MMU_MODES][tlb_index(vaddr)];
        let tag = if mem.store_intent {
            entry.addr_write
        } else {
            entry.addr_read
        };
        if tlb_hit(tag, vaddr, mem) {
            // A hit means the entry was filled for a page wholly inside guest RAM and the
            // access lies inside that page (env.rs module docs).
            read_host(vaddr.wrapping_add(entry.addend) as usize as *const u8, mem)
        } else {
            ((*st).slow.load)(st, vaddr, mem.to_bits(), u32::from(mmu))
        }
    }
}

/// The softmmu store; see [`mem_load`].
///
/// # Safety
/// As [`mem_load`].
#[inline]
unsafe fn mem_store(st: *mut CpuCommon, vaddr: u64, val: u64, mem: MemOp, mmu: u8) {
    // SAFETY: as in `mem_load`; write tags are only valid for writable RAM pages.
    unsafe {
        let entry = &(*st).tlb[usize::from(mmu) % NB_MMU_MODES][tlb_index(vaddr)];
        if tlb_hit(entry.addr_write, vaddr, mem) {
            write_host(
                vaddr.wrapping_add(entry.addend) as usize as *mut u8,
                val,
                mem,
            )
        } else {
            ((*st).slow.store)(st, vaddr, val, mem.to_bits(), u32::from(mmu))
        }
    }
}

/// Pre-decode and run a block once (convenience for tests).
///
/// # Safety
/// As [`InterpBlock::run`].
pub unsafe fn run_block(block: &IrBlock, state: *mut CpuCommon) -> BlockExit {
    // SAFETY: forwarded caller contract.
    unsafe { InterpBlock::new(block).run(state) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse::parse_block;
    use crate::testing::{reg_offset, test_helpers, TestCpu, RAM_BASE};

    fn run(text: &str, cpu: &mut TestCpu) -> BlockExit {
        let b = parse_block(text, &test_helpers()).unwrap_or_else(|e| panic!("{e}"));
        crate::ir::verify::verify(&b).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: `cpu` is a live TestCpu borrowed for the call; offsets are its registers.
        unsafe { run_block(&b, cpu.state_ptr()) }
    }

    #[test]
    fn semantics_edge_cases() {
        let t = Type::I64;
        let min = 1u128 << 63;
        let m1 = t.mask();
        assert_eq!(eval_binary(BinOp::DivS, t, min, m1), min);
        assert_eq!(eval_binary(BinOp::RemS, t, min, m1), 0);
        assert_eq!(eval_binary(BinOp::DivU, t, 5, 0), m1);
        assert_eq!(eval_binary(BinOp::RemU, t, 5, 0), 5);
        assert_eq!(eval_binary(BinOp::DivS, t, 7, 0), m1);
        assert_eq!(eval_binary(BinOp::DivS, Type::I8, 0xf9, 2), 0xfd); // -7/2 = -3
        assert_eq!(eval_binary(BinOp::RemS, Type::I8, 0xf9, 2), 0xff); // -7%2 = -1
        assert_eq!(eval_binary(BinOp::Shl, Type::I32, 1, 33), 2);
        assert_eq!(eval_binary(BinOp::Sar, Type::I16, 0x8000, 15), 0xffff);
        assert_eq!(eval_binary(BinOp::Rotr, Type::I8, 0x01, 1), 0x80);
        assert_eq!(eval_binary(BinOp::MulHs, t, m1, m1), 0); // -1 * -1 = 1
        assert_eq!(eval_binary(BinOp::MulHu, t, m1, m1), m1 - 1);
        assert_eq!(eval_binary(BinOp::MulHsu, t, m1, 2), m1); // -1 * 2 = -2
        let m128 = Type::I128.mask();
        assert_eq!(eval_binary(BinOp::MulHu, Type::I128, m128, m128), m128 - 1);
        assert_eq!(eval_binary(BinOp::MulHs, Type::I128, m128, m128), 0);
        assert_eq!(eval_unary(UnOp::Clz, Type::I32, 0), 32);
        assert_eq!(eval_unary(UnOp::Clz, Type::I32, 1), 31);
        assert_eq!(eval_unary(UnOp::Ctz, Type::I16, 0), 16);
        assert_eq!(eval_unary(UnOp::Bswap, Type::I32, 0x1122_3344), 0x4433_2211);
        assert_eq!(
            eval_ext(ExtKind::Sext, Type::I8, Type::I64, 0x80),
            0xffff_ffff_ffff_ff80
        );
        assert!(eval_cond(Cond::Lt, Type::I8, 0xff, 0));
        assert!(!eval_cond(Cond::Ltu, Type::I8, 0xff, 0));
    }

    #[test]
    fn arithmetic_globals_and_goto() {
        let mut cpu = TestCpu::new();
        cpu.regs[1] = 5;
        cpu.regs[2] = u64::MAX;
        let text = format!(
            "block pc=0x1000\n insn 0x1000 0\n v0:i64 = load_global {r1}\n \
             v1:i64 = load_global {r2}\n v2:i64 = add v0, v1\n v3:i64 = const 10\n \
             v4:i64 = add v2, v3\n store_global.i64 {r3}, v4\n insn 0x1004 0\n \
             brcond.i64 eq v0, v1, L0\n goto 0x2000\nL0:\n goto 0x3000\n",
            r1 = reg_offset(1),
            r2 = reg_offset(2),
            r3 = reg_offset(3)
        );
        assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_eq!(cpu.regs[3], 14);
        assert_eq!(cpu.common.pc, 0x2000);
        assert_eq!(cpu.common.insn_count, 2);
    }

    #[test]
    fn fault_budget_and_reads_state() {
        let mut cpu = TestCpu::new();
        let text = format!(
            "block pc=0x1000\n insn 0x1000 0\n v0:i64 = const {RAM_BASE:#x}\n \
             v1:i64 = load u32 v0\n insn 0x1004 0\n v2:i64 = call test.read_pc\n \
             v3:i64 = call test.read_icount\n store_global.i64 {r2}, v2\n \
             store_global.i64 {r3}, v3\n v4:i64 = const 0x20\n v5:i64 = load u64 v4\n \
             goto 0x2000\n",
            r2 = reg_offset(2),
            r3 = reg_offset(3),
        );
        cpu.common.insn_count = 100;
        assert_eq!(run(&text, &mut cpu), BlockExit::Fault);
        assert_eq!(cpu.common.pc, 0x1004);
        assert_eq!(cpu.common.insn_count, 101);
        assert_eq!(cpu.fault_addr, 0x20);
        // The reads_state helpers saw the current instruction's pc and exact count.
        assert_eq!((cpu.regs[2], cpu.regs[3]), (0x1004, 101));
        cpu.common.insn_limit = 101;
        cpu.regs[2] = 0;
        assert_eq!(run(&text, &mut cpu), BlockExit::Budget);
        assert_eq!(cpu.common.pc, 0x1000);
        assert_eq!(cpu.regs[2], 0);
    }

    /// The decoder's fast paths (narrow shifts, comparisons, extensions, immediates) agree
    /// with the generic semantics on random operands of every width up to 64 bits.
    #[test]
    fn fast_paths_match_generic_semantics() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let tys = [Type::I8, Type::I16, Type::I32, Type::I64];
        let ops = [
            BinOp::Add,
            BinOp::Sub,
            BinOp::And,
            BinOp::Or,
            BinOp::Xor,
            BinOp::Shl,
            BinOp::Shr,
            BinOp::Sar,
        ];
        let conds = [
            Cond::Eq,
            Cond::Ne,
            Cond::Lt,
            Cond::Ge,
            Cond::Ltu,
            Cond::Geu,
            Cond::Gt,
            Cond::Le,
            Cond::Gtu,
            Cond::Leu,
        ];
        for _ in 0..300 {
            let ty = tys[rng.gen_range(0..4)];
            let to = tys[rng.gen_range(0..4)];
            let (x, y): (u64, u64) = (rng.gen(), rng.gen_range(0..80));
            let y = if rng.gen() { y } else { rng.gen() };
            let mut b = Builder::new(0x1000);
            b.insn_start(0x1000, 0);
            let g0 = b.load_global(Type::I64, reg_offset(0));
            let g1 = b.load_global(Type::I64, reg_offset(1));
            let narrow = |b: &mut Builder, v| {
                if ty == Type::I64 {
                    v
                } else {
                    b.trunc(Type::I64, ty, v)
                }
            };
            let (a, c) = (narrow(&mut b, g0), narrow(&mut b, g1));
            let widen = |b: &mut Builder, v, t: Type| {
                if t == Type::I64 {
                    v
                } else {
                    b.zext(t, Type::I64, v)
                }
            };
            let mut expect = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                let v = b.binary(*op, ty, a, c);
                let w = widen(&mut b, v, ty);
                b.store_global(Type::I64, reg_offset(2 + i as u32), w);
                expect.push(eval_binary(*op, ty, u128::from(x), u128::from(y)) as u64);
            }
            let k = b.iconst(ty, y);
            let v = b.binary(BinOp::Add, ty, a, k);
            let w = widen(&mut b, v, ty);
            b.store_global(Type::I64, reg_offset(10), w);
            expect.push(eval_binary(BinOp::Add, ty, u128::from(x), u128::from(y)) as u64);
            let cond = conds[rng.gen_range(0..10)];
            let sc = b.set_cond(cond, ty, a, c);
            let w = widen(&mut b, sc, Type::I8);
            b.store_global(Type::I64, reg_offset(11), w);
            let (xm, ym) = (u128::from(x) & ty.mask(), u128::from(y) & ty.mask());
            expect.push(u64::from(eval_cond(cond, ty, xm, ym)));
            if ty != to {
                let kind = if ty.bits() > to.bits() {
                    ExtKind::Trunc
                } else if rng.gen() {
                    ExtKind::Sext
                } else {
                    ExtKind::Zext
                };
                let e = b.ext(kind, ty, to, a);
                let w = widen(&mut b, e, to);
                b.store_global(Type::I64, reg_offset(12), w);
                expect.push(eval_ext(kind, ty, to, xm) as u64);
            }
            let l = b.new_label();
            b.br_cond(cond, ty, a, c, l);
            b.goto(0);
            b.label(l);
            b.goto(4);
            let blk = b.finish();
            crate::ir::verify::verify(&blk).unwrap();
            let mut cpu = TestCpu::new();
            cpu.regs[0] = x;
            cpu.regs[1] = y;
            // SAFETY: a live TestCpu borrowed for the call; globals are its registers.
            let exit = unsafe { run_block(&blk, cpu.state_ptr()) };
            let got: Vec<u64> = (0..expect.len()).map(|i| cpu.regs[2 + i]).collect();
            assert_eq!(got, expect, "{ty} {x:#x} {y:#x} {cond:?}\n{blk}");
            let taken = eval_cond(cond, ty, xm, ym);
            assert_eq!(
                exit,
                BlockExit::Goto {
                    slot: u32::from(taken)
                }
            );
        }
    }
}
