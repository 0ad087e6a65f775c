//! The IR interpreter: the reference semantics of the IR (`ir/mod.rs`) and tier 0 of the engine.
//!
//! A block is pre-decoded once ([`InterpBlock::new`]) into a compact op list: labels become op
//! indices, values become slots of a `u64` register file (an I128 value takes two adjacent
//! slots, low half first), helper calls carry their function pointer and effects, and `Goto`
//! exits carry their chain-slot number. Running it is then one `match` per op.
//!
//! The executor's time goes to op dispatch and to cache misses on cold blocks, so the decoder
//! keeps ops few and small: I64 and immediate forms (constants folded into the op that uses
//! them), compare-and-branch forms, 8-byte global stores deferred and performed together where
//! the state can be observed ([`D::Flush`]), and 16-bit indices so an op is 16 bytes (32-bit
//! indices only for blocks too large for them). Indices are checked once, at decode time;
//! the executor then indexes the op list and the register file unchecked.
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
use std::cell::RefCell;

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

/// The index type of a decoded block (register-file slots, instruction numbers, op indices,
/// side-table indices): `u16` for every block a frontend makes, so an op is 16 bytes (fewer
/// cache lines per block run), `u32` for blocks too large for that.
trait Idx: Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    const ZERO: Self;
    fn new(i: usize) -> Option<Self>;
    fn ix(self) -> usize;
    /// Run `f` with this thread's decoder tables for this index type.
    fn with_scratch<R>(f: impl FnOnce(&mut Scratch<Self>) -> R) -> R;
}

thread_local! {
    static SCRATCH_16: RefCell<Scratch<u16>> = RefCell::new(Scratch::default());
    static SCRATCH_32: RefCell<Scratch<u32>> = RefCell::new(Scratch::default());
}

/// Run `f` with the scratch tables in `key`, or fresh ones if they are in use.
fn with_scratch_in<I: Idx, R>(
    key: &'static std::thread::LocalKey<RefCell<Scratch<I>>>,
    f: impl FnOnce(&mut Scratch<I>) -> R,
) -> R {
    key.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}

impl Idx for u16 {
    const ZERO: u16 = 0;
    fn with_scratch<R>(f: impl FnOnce(&mut Scratch<u16>) -> R) -> R {
        with_scratch_in(&SCRATCH_16, f)
    }
    fn new(i: usize) -> Option<u16> {
        u16::try_from(i).ok()
    }
    #[inline(always)]
    fn ix(self) -> usize {
        usize::from(self)
    }
}

impl Idx for u32 {
    const ZERO: u32 = 0;
    fn with_scratch<R>(f: impl FnOnce(&mut Scratch<u32>) -> R) -> R {
        with_scratch_in(&SCRATCH_32, f)
    }
    fn new(i: usize) -> Option<u32> {
        u32::try_from(i).ok()
    }
    #[inline(always)]
    fn ix(self) -> usize {
        self as usize
    }
}

/// One pre-decoded op. Every op works on slots of the register file; the `64` forms are I64
/// (no masking needed: `u64` wrapping arithmetic *is* I64 arithmetic), the narrow forms mask
/// their result to the type, the generic forms (`Bin`, `Un`, `Ext`, `SetCond`, `BrCond`)
/// handle every type through the value semantics above. `I` forms take an immediate that
/// the decoder saw as a `Const` operand (already masked to the type).
#[derive(Clone, Copy, Debug)]
enum D<I> {
    Const {
        d: I,
        imm: u64,
    },
    Const128 {
        d: I,
        imm: u64,
    },
    Mov {
        d: I,
        s: I,
    },
    Mov128 {
        d: I,
        s: I,
    },
    /// The common 8-byte global access.
    LoadGlobal64 {
        d: I,
        off: u32,
    },
    StoreGlobal64 {
        s: I,
        off: u32,
    },
    LoadGlobal {
        d: I,
        off: u32,
        ty: Type,
    },
    StoreGlobal {
        s: I,
        off: u32,
        ty: Type,
    },
    Add64 {
        d: I,
        a: I,
        b: I,
    },
    AddI64 {
        d: I,
        a: I,
        imm: u64,
    },
    Sub64 {
        d: I,
        a: I,
        b: I,
    },
    /// Narrow (8..=32-bit) add and subtract: `mask` of the type.
    Add {
        d: I,
        a: I,
        b: I,
        mask: u32,
    },
    AddI {
        d: I,
        a: I,
        imm: u32,
        mask: u32,
    },
    Sub {
        d: I,
        a: I,
        b: I,
        mask: u32,
    },
    /// Bitwise ops of any width up to 64 bits (masked operands give a masked result).
    And {
        d: I,
        a: I,
        b: I,
    },
    Or {
        d: I,
        a: I,
        b: I,
    },
    Xor {
        d: I,
        a: I,
        b: I,
    },
    AndI {
        d: I,
        a: I,
        imm: u64,
    },
    OrI {
        d: I,
        a: I,
        imm: u64,
    },
    XorI {
        d: I,
        a: I,
        imm: u64,
    },
    Shl64 {
        d: I,
        a: I,
        b: I,
    },
    Shr64 {
        d: I,
        a: I,
        b: I,
    },
    Sar64 {
        d: I,
        a: I,
        b: I,
    },
    /// I64 shifts by an immediate amount, already reduced modulo 64.
    ShlI64 {
        d: I,
        a: I,
        sh: u8,
    },
    ShrI64 {
        d: I,
        a: I,
        sh: u8,
    },
    SarI64 {
        d: I,
        a: I,
        sh: u8,
    },
    /// Narrow shifts; `bits` is the width.
    Shl {
        d: I,
        a: I,
        b: I,
        bits: u8,
    },
    Shr {
        d: I,
        a: I,
        b: I,
        bits: u8,
    },
    Sar {
        d: I,
        a: I,
        b: I,
        bits: u8,
    },
    Mul64 {
        d: I,
        a: I,
        b: I,
    },
    /// Sign extension between widths of 64 bits or fewer: `shift` = 64 - from bits, `mask` of
    /// the result type.
    Sext {
        d: I,
        s: I,
        shift: u8,
        mask: u64,
    },
    /// I32 to I64 sign extension (every RV64 `*w` instruction ends with one).
    Sext32To64 {
        d: I,
        s: I,
    },
    /// Comparisons of 64 bits or fewer: `shift` = 64 - width, to sign-extend for signed
    /// conditions (operands are kept masked, so unsigned ones compare directly).
    SetCond64 {
        cond: Cond,
        shift: u8,
        d: I,
        a: I,
        b: I,
    },
    BrCond64 {
        cond: Cond,
        shift: u8,
        a: I,
        b: I,
        target: I,
    },
    /// I64 conditional branches on the conditions RISC-V branches use.
    BrEq64 {
        a: I,
        b: I,
        target: I,
    },
    BrNe64 {
        a: I,
        b: I,
        target: I,
    },
    BrLt64 {
        a: I,
        b: I,
        target: I,
    },
    BrGe64 {
        a: I,
        b: I,
        target: I,
    },
    BrLtu64 {
        a: I,
        b: I,
        target: I,
    },
    BrGeu64 {
        a: I,
        b: I,
        target: I,
    },
    /// Any binary op (any width), through [`eval_binary`].
    Bin {
        op: BinOp,
        ty: Type,
        d: I,
        a: I,
        b: I,
    },
    Un {
        op: UnOp,
        ty: Type,
        d: I,
        s: I,
    },
    Ext {
        kind: ExtKind,
        from: Type,
        to: Type,
        d: I,
        s: I,
    },
    SetCond {
        cond: Cond,
        ty: Type,
        d: I,
        a: I,
        b: I,
    },
    Select {
        d: I,
        c: I,
        a: I,
        b: I,
    },
    Select128 {
        d: I,
        c: I,
        a: I,
        b: I,
    },
    // Ops that may exit or expose the instruction count carry `at`: the number of `insn`
    // ops up to and including the current instruction's (0 before the first), which is the
    // index of its pc in `InterpBlock::pcs`.
    /// A load into an I64 (the value from the TLB fast path or the slow path is already
    /// extended to 64 bits).
    /// Memory ops carry `flush`, the deferred global stores to perform before their slow
    /// path (see [`D::Flush`]).
    /// The address is `a + off` (an `addi` fused into the access).
    Load64 {
        d: I,
        a: I,
        off: i16,
        mem: MemOp,
        mmu: u8,
        at: I,
        flush: I,
    },
    Load {
        d: I,
        a: I,
        mem: MemOp,
        mmu: u8,
        ty: Type,
        at: I,
        flush: I,
    },
    /// The address is `a + off`, as for [`D::Load64`].
    Store {
        s: I,
        a: I,
        off: i16,
        mem: MemOp,
        mmu: u8,
        at: I,
        flush: I,
    },
    /// Perform the deferred 8-byte global stores held by the `n` [`D::Pending`] entries that
    /// follow, and continue after them.
    ///
    /// RISC-V code stores a guest register after nearly every instruction; one store op per
    /// instruction was the most frequent op. The decoder keeps 8-byte `store_global`s pending
    /// and emits them as one `Flush` where something may look at the state: before a
    /// branch, a label, a call, an exit, and a global access overlapping a pending store. A
    /// memory op's slow path (which may read the state, or fault) performs its own snapshot
    /// of the pending stores first. Each store has a sequence number; the executor remembers
    /// the highest one performed by a slow path and skips those in later flushes, so every
    /// store reaches the state once, in program order relative to everything that can see it.
    /// The entries sit in the op list itself, so a flush touches no other memory.
    Flush {
        n: I,
    },
    /// One deferred store, `*(state + off) = slot s`, the `seq`-th of its block (from 1); data
    /// of the `Flush` before it, never executed itself.
    Pending {
        off: u32,
        s: I,
        seq: I,
    },
    /// A deferred store of a constant (`li`, `lui`, `auipc`, a link address), so the constant
    /// needs no op of its own.
    PendingImm {
        off: u32,
        seq: I,
        imm: u64,
    },
    Call {
        call: I,
        at: I,
    },
    Br {
        target: I,
    },
    BrCond {
        cond: Cond,
        ty: Type,
        a: I,
        b: I,
        target: I,
    },
    Goto {
        pc: u64,
        slot: I,
        at: I,
    },
    Indirect {
        s: I,
        at: I,
    },
    Exit {
        reason: ExitReason,
        pc: u64,
        at: I,
    },
    ExitDyn {
        reason: ExitReason,
        s: I,
        at: I,
    },
    /// Appended after a block that could run off its end (unverified input): leaves as a
    /// fault at the block start, as running past the last op always did.
    End,
}

impl<I: Idx> D<I> {
    /// Calls `f` with every register-file slot the op reads and, with `true`, every slot it
    /// writes (both halves of an I128). The decoder sizes the register file from this, so it
    /// must name every slot the executor touches.
    fn slots(&self, calls: &[CallInfo<I>], mut f: impl FnMut(usize, bool)) {
        let wide = |s: I, w: bool, f: &mut dyn FnMut(usize, bool)| {
            f(s.ix(), w);
            f(s.ix() + 1, w);
        };
        match *self {
            D::Const { d, .. } | D::LoadGlobal64 { d, .. } => f(d.ix(), true),
            D::Const128 { d, .. } => wide(d, true, &mut f),
            D::Mov { d, s }
            | D::Sext { d, s, .. }
            | D::Sext32To64 { d, s }
            | D::AddI64 { d, a: s, .. }
            | D::AddI { d, a: s, .. }
            | D::AndI { d, a: s, .. }
            | D::OrI { d, a: s, .. }
            | D::XorI { d, a: s, .. }
            | D::ShlI64 { d, a: s, .. }
            | D::ShrI64 { d, a: s, .. }
            | D::SarI64 { d, a: s, .. }
            | D::Load64 { d, a: s, .. } => {
                f(s.ix(), false);
                f(d.ix(), true);
            }
            D::Mov128 { d, s } => {
                wide(s, false, &mut f);
                wide(d, true, &mut f);
            }
            D::StoreGlobal64 { s, .. } | D::Indirect { s, .. } | D::ExitDyn { s, .. } => {
                f(s.ix(), false)
            }
            D::LoadGlobal { d, ty, .. } => one_or_two(d, ty, true, &mut f),
            D::StoreGlobal { s, ty, .. } => one_or_two(s, ty, false, &mut f),
            D::Add64 { d, a, b }
            | D::Sub64 { d, a, b }
            | D::Add { d, a, b, .. }
            | D::Sub { d, a, b, .. }
            | D::And { d, a, b }
            | D::Or { d, a, b }
            | D::Xor { d, a, b }
            | D::Shl64 { d, a, b }
            | D::Shr64 { d, a, b }
            | D::Sar64 { d, a, b }
            | D::Shl { d, a, b, .. }
            | D::Shr { d, a, b, .. }
            | D::Sar { d, a, b, .. }
            | D::Mul64 { d, a, b }
            | D::SetCond64 { d, a, b, .. } => {
                f(a.ix(), false);
                f(b.ix(), false);
                f(d.ix(), true);
            }
            D::BrCond64 { a, b, .. }
            | D::BrEq64 { a, b, .. }
            | D::BrNe64 { a, b, .. }
            | D::BrLt64 { a, b, .. }
            | D::BrGe64 { a, b, .. }
            | D::BrLtu64 { a, b, .. }
            | D::BrGeu64 { a, b, .. } => {
                f(a.ix(), false);
                f(b.ix(), false);
            }
            D::Bin { ty, d, a, b, .. } => {
                one_or_two(a, ty, false, &mut f);
                one_or_two(b, ty, false, &mut f);
                one_or_two(d, ty, true, &mut f);
            }
            D::Un { ty, d, s, .. } => {
                one_or_two(s, ty, false, &mut f);
                one_or_two(d, ty, true, &mut f);
            }
            D::Ext { from, to, d, s, .. } => {
                one_or_two(s, from, false, &mut f);
                one_or_two(d, to, true, &mut f);
            }
            D::SetCond { ty, d, a, b, .. } => {
                one_or_two(a, ty, false, &mut f);
                one_or_two(b, ty, false, &mut f);
                f(d.ix(), true);
            }
            D::BrCond { ty, a, b, .. } => {
                one_or_two(a, ty, false, &mut f);
                one_or_two(b, ty, false, &mut f);
            }
            D::Select { d, c, a, b } => {
                f(c.ix(), false);
                f(a.ix(), false);
                f(b.ix(), false);
                f(d.ix(), true);
            }
            D::Select128 { d, c, a, b } => {
                f(c.ix(), false);
                wide(a, false, &mut f);
                wide(b, false, &mut f);
                wide(d, true, &mut f);
            }
            D::Load { d, a, ty, .. } => {
                f(a.ix(), false);
                one_or_two(d, ty, true, &mut f);
            }
            D::Store { s, a, .. } => {
                f(s.ix(), false);
                f(a.ix(), false);
            }
            D::Call { call, .. } => {
                if let Some(c) = calls.get(call.ix()) {
                    for s in c.args.iter().take(usize::from(c.nargs)) {
                        f(s.ix(), false);
                    }
                    if let Some(d) = c.dst {
                        f(d.ix(), true);
                    }
                }
            }
            D::Pending { s, .. } => f(s.ix(), false),
            D::Br { .. }
            | D::Goto { .. }
            | D::Exit { .. }
            | D::Flush { .. }
            | D::PendingImm { .. }
            | D::End => {}
        }
    }

    /// The op never falls through to the next one.
    fn is_terminal(&self) -> bool {
        matches!(
            self,
            D::Br { .. }
                | D::Goto { .. }
                | D::Indirect { .. }
                | D::Exit { .. }
                | D::ExitDyn { .. }
                | D::End
        )
    }

    fn target_mut(&mut self) -> Option<&mut I> {
        match self {
            D::Br { target }
            | D::BrCond { target, .. }
            | D::BrCond64 { target, .. }
            | D::BrEq64 { target, .. }
            | D::BrNe64 { target, .. }
            | D::BrLt64 { target, .. }
            | D::BrGe64 { target, .. }
            | D::BrLtu64 { target, .. }
            | D::BrGeu64 { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// A value of type `ty` takes one slot, or two for I128.
fn one_or_two<I: Idx>(s: I, ty: Type, write: bool, f: &mut impl FnMut(usize, bool)) {
    f(s.ix(), write);
    if ty == Type::I128 {
        f(s.ix() + 1, write);
    }
}

/// One deferred 8-byte global store: `*(state + off) = val`, the `seq`-th of its block
/// (from 1).
#[derive(Clone, Copy, Debug)]
struct GStore<I> {
    off: u32,
    val: GVal<I>,
    seq: u32,
}

/// The value of a deferred store: a slot, or a constant known at decode time.
#[derive(Clone, Copy, Debug)]
enum GVal<I> {
    Slot(I),
    Imm(u64),
}

/// A list of deferred stores (`Decoded::gstores[start..start + len]`), in program order;
/// `seq_end` is the highest sequence number stored before the list was taken.
///
/// The list of a memory op is every store deferred since the last [`D::Flush`] up to the op:
/// the pending ones and those a later store of the same offset replaced. Performing those too,
/// in program order, leaves the state as the pending ones alone would (nothing can look in
/// between), and lets all lists be windows of one array holding each store once (copying the
/// pending set per memory op took ~10 entries per access and more memory than the ops).
#[derive(Clone, Copy, Debug, PartialEq)]
struct FlushList {
    start: u32,
    len: u32,
    seq_end: u32,
}

/// The decoder's pending global stores (see [`D::Flush`]).
#[derive(Default)]
struct Deferred<I> {
    pending: Vec<GStore<I>>,
    seq: u32,
    /// Every deferred store, in program order.
    gstores: Vec<GStore<I>>,
    /// Where the stores since the last flush start in `gstores`.
    window: usize,
    lists: Vec<FlushList>,
}

impl<I: Idx> Deferred<I> {
    fn reset(&mut self) {
        self.pending.clear();
        self.seq = 0;
        self.gstores.clear();
        self.window = 0;
        self.lists.clear();
    }

    fn store(&mut self, off: u32, val: GVal<I>) {
        self.pending.retain(|g| g.off != off);
        self.seq += 1;
        let g = GStore {
            off,
            val,
            seq: self.seq,
        };
        self.pending.push(g);
        self.gstores.push(g);
    }

    /// Some pending store other than one of the same 8 bytes at `off` overlaps
    /// `off..off + len` (`same_ok`), or any pending store does (`!same_ok`).
    fn overlaps(&self, off: u32, len: u32, same_ok: bool) -> bool {
        let (off, len) = (u64::from(off), u64::from(len));
        self.pending.iter().any(|g| {
            let g_off = u64::from(g.off);
            g_off < off + len && off < g_off + 8 && !(same_ok && g_off == off && len == 8)
        })
    }

    /// Record the stores since the last flush as a list; its index. Memory ops with no store
    /// between them share a list.
    fn snapshot(&mut self) -> usize {
        let list = FlushList {
            start: self.window as u32,
            len: self.gstores.len().saturating_sub(self.window) as u32,
            seq_end: self.seq,
        };
        if self.lists.last() != Some(&list) {
            self.lists.push(list);
        }
        self.lists.len().saturating_sub(1)
    }

    /// A `Flush` of every pending store (which are then no longer pending) onto `ops`.
    fn take(&mut self, ops: &mut Vec<D<I>>) -> Option<()> {
        if !self.pending.is_empty() {
            ops.push(D::Flush {
                n: I::new(self.pending.len())?,
            });
            for g in self.pending.drain(..) {
                let seq = I::new(g.seq as usize)?;
                ops.push(match g.val {
                    GVal::Slot(s) => D::Pending { off: g.off, s, seq },
                    GVal::Imm(imm) => D::PendingImm {
                        off: g.off,
                        seq,
                        imm,
                    },
                });
            }
        }
        self.window = self.gstores.len();
        Some(())
    }
}

#[derive(Clone, Copy, Debug)]
struct CallInfo<I> {
    func: HelperFn,
    args: [I; 4],
    nargs: u8,
    dst: Option<I>,
    effects: HelperEffects,
}

/// A pre-decoded block, ready to run any number of times.
#[derive(Clone, Debug)]
pub struct InterpBlock {
    start_pc: u64,
    /// `pcs[at]`: the pc of the instruction an op with that `at` belongs to (`pcs[0]` is the
    /// block start, for ops before the first `insn`).
    pcs: Vec<u64>,
    code: Code,
}

#[derive(Clone, Debug)]
enum Code {
    Small(Decoded<u16>),
    Large(Decoded<u32>),
}

/// The ops of a block and their side tables.
#[derive(Clone, Debug)]
struct Decoded<I> {
    ops: Vec<D<I>>,
    calls: Vec<CallInfo<I>>,
    /// Every deferred global store, in program order; a memory op's slow path performs its
    /// list of them ([`FlushList`], by [`D::Load64`]'s `flush`).
    gstores: Vec<GStore<I>>,
    flushes: Vec<FlushList>,
    /// Size of the register file: one more than the highest slot any op touches (so the
    /// executor may index it unchecked), at least 1.
    slots: usize,
}

// The engine shares pre-decoded blocks between threads (the TB cache).
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<InterpBlock>();
};

/// Register files up to the largest of these sizes live on the stack, zeroed per run; the
/// steps keep short blocks from paying for zeroing a big array.
const SLOTS_S: usize = 16;
const SLOTS_M: usize = 32;
const SLOTS_L: usize = 64;
const SLOTS_XL: usize = 128;
/// Register files up to this size also live on the stack ([`InterpBlock::exec_big`]).
const SLOTS_BIG: usize = 1024;

/// Bytes of a block's ops [`prefetch`] asks for.
const PREFETCH_BYTES: usize = 4096;

/// Ask the cache for the first [`PREFETCH_BYTES`] of `ops` at once. Cold blocks (a boot runs
/// ~47 k of them ~100 times each before tier-up) otherwise miss on their op list one line at
/// a time as the executor reaches it; requested together, the misses overlap.
#[inline(always)]
fn prefetch<T>(ops: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = ops.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(ops).min(PREFETCH_BYTES);
        for off in (0..bytes).step_by(64) {
            // SAFETY: `off` is inside the slice, and a prefetch has no effect on the program's
            // state (it never faults).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ops;
}

impl InterpBlock {
    /// Pre-decode `block`, which must be verified ([`crate::ir::verify::verify`]).
    pub fn new(block: &IrBlock) -> InterpBlock {
        match decode::<u16>(block) {
            Some((code, pcs)) => InterpBlock {
                start_pc: block.start_pc,
                pcs,
                code: Code::Small(code),
            },
            None => InterpBlock::new_large(block),
        }
    }

    /// Pre-decode `block` with 32-bit indices (blocks too large for 16-bit ones).
    fn new_large(block: &IrBlock) -> InterpBlock {
        let (code, pcs) = decode::<u32>(block).unwrap_or_else(|| {
            // Over 2^32 values or ops cannot be held in memory; keep the type total.
            let code = Decoded {
                ops: vec![D::End],
                calls: Vec::new(),
                gstores: Vec::new(),
                flushes: Vec::new(),
                slots: 1,
            };
            (code, vec![block.start_pc])
        });
        InterpBlock {
            start_pc: block.start_pc,
            pcs,
            code: Code::Large(code),
        }
    }
}

/// The tables `decode` needs only while it runs, kept per thread so that pre-decoding a block
/// allocates only what the block keeps, each at its final size.
#[derive(Default)]
struct Scratch<I> {
    slot_of: Vec<I>,
    label_pos: Vec<u32>,
    consts: Vec<Option<u64>>,
    ops: Vec<D<I>>,
    calls: Vec<CallInfo<I>>,
    defer: Deferred<I>,
    targets: Vec<bool>,
    reads: Vec<u32>,
    remap: Vec<u32>,
    kept: Vec<D<I>>,
}

/// Decode `block` with index type `I`; `None` if some index does not fit. Also returns the
/// instruction pcs (`InterpBlock::pcs`).
fn decode<I: Idx>(block: &IrBlock) -> Option<(Decoded<I>, Vec<u64>)> {
    I::with_scratch(|scratch| decode_with(block, scratch))
}

fn decode_with<I: Idx>(
    block: &IrBlock,
    scratch: &mut Scratch<I>,
) -> Option<(Decoded<I>, Vec<u64>)> {
    let Scratch {
        slot_of,
        label_pos,
        consts,
        ops,
        calls,
        defer,
        targets,
        reads,
        remap,
        kept,
    } = scratch;
    slot_of.clear();
    let mut slots = 0usize;
    for ty in &block.values {
        slot_of.push(I::new(slots)?);
        slots += if *ty == Type::I128 { 2 } else { 1 };
    }
    // Every slot index, including an I128's second half, fits `I`.
    I::new(slots)?;
    let slot_of = &*slot_of;
    let s = |v: Value| slot_of.get(v.0 as usize).copied().unwrap_or(I::ZERO);
    // Label positions (the index of the decoded op after the label); branches hold the
    // label number until the fix-up after decoding.
    label_pos.clear();
    label_pos.resize(block.labels as usize, u32::MAX);
    ops.clear();
    calls.clear();
    let mut pcs = Vec::with_capacity(block.insn_count as usize + 1);
    pcs.push(block.start_pc);
    let mut at = 0usize;
    // `at` as an index.
    let mut at_i = I::ZERO;
    let mut goto_slot = 0usize;
    // Constants known at decode time (masked to their type), to fold `x op const`.
    consts.clear();
    consts.resize(block.values.len(), None);
    defer.reset();
    for op in &block.ops {
        // Where the state may be looked at, the pending global stores go first.
        let flush_first = match *op {
            Op::Label(_) | Op::Br(_) | Op::BrCond { .. } | Op::Call { .. } | Op::Exit(_) => true,
            Op::StoreGlobal { ty, offset, .. } => {
                defer.overlaps(offset, ty.bytes(), ty.bytes() == 8)
            }
            Op::LoadGlobal { ty, offset, .. } => defer.overlaps(offset, ty.bytes(), false),
            _ => false,
        };
        if flush_first {
            defer.take(ops)?;
        }
        let d = match *op {
            // Instruction boundaries cost nothing at run time: the ops that need the
            // current instruction carry it (`at`).
            Op::InsnStart { pc, .. } => {
                pcs.push(pc);
                at += 1;
                at_i = I::new(at)?;
                continue;
            }
            Op::Label(l) => {
                if let Some(p) = label_pos.get_mut(l.0 as usize) {
                    *p = ops.len() as u32;
                }
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
            Op::Call {
                helper,
                ref args,
                dst,
            } => {
                let Some(def) = block.helper(helper) else {
                    continue;
                };
                let mut a = [I::ZERO; 4];
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
                    call: I::new(calls.len() - 1)?,
                    at: at_i,
                }
            }
            Op::Exit(t) => match t {
                Terminal::Goto { pc } => {
                    goto_slot += 1;
                    D::Goto {
                        pc,
                        slot: I::new(goto_slot - 1)?,
                        at: at_i,
                    }
                }
                Terminal::Indirect { pc } => D::Indirect { s: s(pc), at: at_i },
                Terminal::Exit { reason, pc } => D::Exit {
                    reason,
                    pc,
                    at: at_i,
                },
                Terminal::ExitDynamic { reason, pc } => D::ExitDyn {
                    reason,
                    s: s(pc),
                    at: at_i,
                },
            },
            Op::StoreGlobal { src, ty, offset } if ty.bytes() == 8 => {
                let val = match consts.get(src.0 as usize) {
                    Some(Some(imm)) => GVal::Imm(*imm),
                    _ => GVal::Slot(s(src)),
                };
                defer.store(offset, val);
                continue;
            }
            ref op => {
                let cst = |v: Value| consts.get(v.0 as usize).copied().flatten();
                let mut d = decode_op(op, &s, &cst, at_i)?;
                if let D::Load64 { flush, .. } | D::Load { flush, .. } | D::Store { flush, .. } =
                    &mut d
                {
                    *flush = I::new(defer.snapshot())?;
                }
                d
            }
        };
        ops.push(d);
    }
    // Only an unverified block can end with stores pending (it does not end in an exit).
    defer.take(ops)?;
    targets.clear();
    targets.resize(ops.len() + 1, false);
    for &p in label_pos.iter() {
        if let Some(t) = targets.get_mut(p as usize) {
            *t = true;
        }
    }
    peephole(ops, calls, &defer.gstores, targets, reads, remap, kept);
    let ops = kept;
    // A verified block ends in an exit or a branch and only branches to labels that are
    // followed by an op; anything else gets an `End` to land on, so the executor never
    // runs past the last op nor branches outside the list.
    let end = ops.len() as u32;
    // The `End` op's index must fit too.
    I::new(ops.len())?;
    let mut needs_end = ops.last().is_none_or(|o| !o.is_terminal());
    for l in label_pos.iter_mut() {
        *l = remap.get(*l as usize).copied().unwrap_or(end);
    }
    for op in ops.iter_mut() {
        if let Some(t) = op.target_mut() {
            let pos = label_pos.get(t.ix()).copied().unwrap_or(end);
            *t = I::new(pos as usize)?;
            needs_end |= pos >= end;
        }
    }
    if needs_end {
        ops.push(D::End);
    }
    let mut slots = 1usize;
    for op in ops.iter() {
        op.slots(calls, |s, _| slots = slots.max(s + 1));
    }
    for g in &defer.gstores {
        if let GVal::Slot(s) = g.val {
            slots = slots.max(s.ix() + 1);
        }
    }
    let code = Decoded {
        ops: ops.to_vec(),
        calls: calls.to_vec(),
        gstores: defer.gstores.to_vec(),
        flushes: defer.lists.to_vec(),
        slots,
    };
    Some((code, pcs))
}

impl InterpBlock {
    /// Run the block once.
    ///
    /// # Safety
    /// `state` points to a live guest state starting with [`CpuCommon`] (the
    /// [`crate::helper::GuestState`] contract), exclusively borrowed for the call, and every
    /// global offset of the block lies inside that state.
    pub unsafe fn run(&self, state: *mut CpuCommon) -> BlockExit {
        // SAFETY: forwarded caller contract (both arms).
        unsafe {
            match &self.code {
                Code::Small(c) => self.run_code(c, state),
                Code::Large(c) => self.run_code(c, state),
            }
        }
    }

    /// # Safety
    /// As [`InterpBlock::run`].
    #[inline(always)]
    unsafe fn run_code<I: Idx>(&self, c: &Decoded<I>, state: *mut CpuCommon) -> BlockExit {
        prefetch(&c.ops);
        // SAFETY: forwarded caller contract (every arm).
        unsafe {
            if c.slots <= SLOTS_S {
                self.exec(c, state, &mut [0u64; SLOTS_S])
            } else if c.slots <= SLOTS_M {
                self.exec(c, state, &mut [0u64; SLOTS_M])
            } else if c.slots <= SLOTS_L {
                self.exec(c, state, &mut [0u64; SLOTS_L])
            } else if c.slots <= SLOTS_XL {
                self.exec(c, state, &mut [0u64; SLOTS_XL])
            } else {
                self.exec_big(c, state)
            }
        }
    }

    /// [`InterpBlock::exec`] for blocks of more than [`SLOTS_XL`] slots (long superblocks,
    /// ~5 % of a boot's interpreted runs): their register file is on the stack too, zeroed
    /// only as far as the block uses it. On the heap, each run paid an allocation and a free
    /// (past the allocator's small-size caches).
    ///
    /// # Safety
    /// As [`InterpBlock::run`].
    #[inline(never)]
    unsafe fn exec_big<I: Idx>(&self, c: &Decoded<I>, state: *mut CpuCommon) -> BlockExit {
        if c.slots > SLOTS_BIG {
            // SAFETY: forwarded caller contract.
            return unsafe { self.exec(c, state, &mut vec![0u64; c.slots]) };
        }
        let mut buf = std::mem::MaybeUninit::<[u64; SLOTS_BIG]>::uninit();
        let p = buf.as_mut_ptr().cast::<u64>();
        // SAFETY: `buf` holds `SLOTS_BIG >= c.slots` u64s; the first `c.slots` are zeroed
        // here, so the slice covers initialized memory only, borrowed from `buf` for the call.
        let r = unsafe {
            p.write_bytes(0, c.slots);
            std::slice::from_raw_parts_mut(p, c.slots)
        };
        // SAFETY: forwarded caller contract.
        unsafe { self.exec(c, state, r) }
    }

    /// # Safety
    /// As [`InterpBlock::run`].
    #[inline(never)]
    unsafe fn exec<I: Idx>(&self, c: &Decoded<I>, st: *mut CpuCommon, r: &mut [u64]) -> BlockExit {
        // SAFETY: (whole function) `st` is valid and exclusively ours (caller contract); fields
        // are accessed through the raw pointer, never through a long-lived reference, so
        // helpers and the slow path may use the same pointer (with the whole state's
        // provenance) in between.
        //
        // Unchecked indexing: `c.slots` is one more than the highest slot any op names
        // (computed from the ops in `decode`) and `r` is at least that long (checked below),
        // so every `get!`/`set!` is in bounds; `ip` stays in `0..ops.len()` because the last
        // op never falls through and every branch target is an index of `ops` (both ensured
        // in `decode`).
        unsafe {
            let base = (*st).insn_count;
            // Instructions retired before the one at `at` (which is the 1-based count of
            // instructions started), and that instruction's pc.
            let before = |at: I| (at.ix() as u64).saturating_sub(1);
            let pc_of = |at: I| self.pcs.get(at.ix()).copied().unwrap_or(self.start_pc);
            // The memory slow path sees the pc and instruction count of the accessing
            // instruction (MMIO reads the exact guest time; a fault needs nothing more),
            // as in compiled code (backend/lower.rs).
            macro_rules! at_insn {
                ($at:expr) => {{
                    (*st).pc = pc_of($at);
                    (*st).insn_count = base + before($at);
                }};
            }
            macro_rules! fault {
                ($at:expr) => {{
                    at_insn!($at);
                    return BlockExit::Fault;
                }};
            }
            if base >= (*st).insn_limit {
                (*st).pc = self.start_pc;
                return BlockExit::Budget;
            }
            if r.len() < c.slots || c.ops.is_empty() {
                fault!(I::ZERO);
            }
            macro_rules! get {
                ($s:expr) => {
                    *r.get_unchecked(Idx::ix($s))
                };
            }
            macro_rules! set {
                ($s:expr, $v:expr) => {{
                    let v: u64 = $v;
                    *r.get_unchecked_mut(Idx::ix($s)) = v;
                }};
            }
            macro_rules! get128 {
                ($s:expr) => {{
                    let i = Idx::ix($s);
                    u128::from(*r.get_unchecked(i)) | (u128::from(*r.get_unchecked(i + 1)) << 64)
                }};
            }
            macro_rules! set128 {
                ($s:expr, $v:expr) => {{
                    let v: u128 = $v;
                    let i = Idx::ix($s);
                    *r.get_unchecked_mut(i) = v as u64;
                    *r.get_unchecked_mut(i + 1) = (v >> 64) as u64;
                }};
            }
            // Reads a value of type `ty` as u128.
            macro_rules! read {
                ($s:expr, $ty:expr) => {
                    if $ty == Type::I128 {
                        get128!($s)
                    } else {
                        u128::from(get!($s))
                    }
                };
            }
            macro_rules! write {
                ($s:expr, $ty:expr, $v:expr) => {{
                    let v: u128 = $v;
                    if $ty == Type::I128 {
                        set128!($s, v);
                    } else {
                        set!($s, v as u64);
                    }
                }};
            }
            let mut ip = 0usize;
            // Deferred global stores with a sequence number up to this one are in the state
            // already (a slow path performed them).
            let mut flushed = 0u32;
            macro_rules! branch {
                ($c:expr, $target:expr) => {
                    if $c {
                        ip = Idx::ix($target);
                    }
                };
            }
            loop {
                let op = *c.ops.get_unchecked(ip);
                ip += 1;
                match op {
                    D::Const { d, imm } => set!(d, imm),
                    D::Const128 { d, imm } => set128!(d, u128::from(imm)),
                    D::Mov { d, s } => set!(d, get!(s)),
                    D::Mov128 { d, s } => set128!(d, get128!(s)),
                    D::LoadGlobal64 { d, off } => {
                        set!(
                            d,
                            ((st as *const u8).add(off as usize) as *const u64).read_unaligned()
                        );
                    }
                    D::StoreGlobal64 { s, off } => {
                        ((st as *mut u8).add(off as usize) as *mut u64).write_unaligned(get!(s));
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
                        write!(d, ty, v);
                    }
                    D::StoreGlobal { s, off, ty } => {
                        let p = (st as *mut u8).add(off as usize);
                        let v = read!(s, ty);
                        match ty.bytes() {
                            1 => p.write(v as u8),
                            2 => (p as *mut u16).write_unaligned(v as u16),
                            4 => (p as *mut u32).write_unaligned(v as u32),
                            8 => (p as *mut u64).write_unaligned(v as u64),
                            _ => (p as *mut u128).write_unaligned(v),
                        }
                    }
                    D::Add64 { d, a, b } => set!(d, get!(a).wrapping_add(get!(b))),
                    D::AddI64 { d, a, imm } => set!(d, get!(a).wrapping_add(imm)),
                    D::Sub64 { d, a, b } => set!(d, get!(a).wrapping_sub(get!(b))),
                    D::Add { d, a, b, mask } => {
                        set!(d, get!(a).wrapping_add(get!(b)) & u64::from(mask))
                    }
                    D::AddI { d, a, imm, mask } => {
                        set!(d, get!(a).wrapping_add(u64::from(imm)) & u64::from(mask))
                    }
                    D::Sub { d, a, b, mask } => {
                        set!(d, get!(a).wrapping_sub(get!(b)) & u64::from(mask))
                    }
                    D::And { d, a, b } => set!(d, get!(a) & get!(b)),
                    D::Or { d, a, b } => set!(d, get!(a) | get!(b)),
                    D::Xor { d, a, b } => set!(d, get!(a) ^ get!(b)),
                    D::AndI { d, a, imm } => set!(d, get!(a) & imm),
                    D::OrI { d, a, imm } => set!(d, get!(a) | imm),
                    D::XorI { d, a, imm } => set!(d, get!(a) ^ imm),
                    D::Shl64 { d, a, b } => set!(d, get!(a) << (get!(b) & 63)),
                    D::Shr64 { d, a, b } => set!(d, get!(a) >> (get!(b) & 63)),
                    D::Sar64 { d, a, b } => set!(d, ((get!(a) as i64) >> (get!(b) & 63)) as u64),
                    D::ShlI64 { d, a, sh } => set!(d, get!(a) << (sh & 63)),
                    D::ShrI64 { d, a, sh } => set!(d, get!(a) >> (sh & 63)),
                    D::SarI64 { d, a, sh } => set!(d, ((get!(a) as i64) >> (sh & 63)) as u64),
                    D::Shl { d, a, b, bits } => {
                        let sh = get!(b) as u32 & (u32::from(bits) - 1);
                        set!(d, (get!(a) << sh) & mask_of(bits));
                    }
                    D::Shr { d, a, b, bits } => {
                        let sh = get!(b) as u32 & (u32::from(bits) - 1);
                        set!(d, get!(a) >> sh);
                    }
                    D::Sar { d, a, b, bits } => {
                        let sh = get!(b) as u32 & (u32::from(bits) - 1);
                        let up = 64 - u32::from(bits);
                        set!(
                            d,
                            ((((get!(a) << up) as i64) >> (up + sh)) as u64) & mask_of(bits)
                        );
                    }
                    D::Mul64 { d, a, b } => set!(d, get!(a).wrapping_mul(get!(b))),
                    D::Sext { d, s, shift, mask } => {
                        set!(d, ((((get!(s) << shift) as i64) >> shift) as u64) & mask);
                    }
                    D::Sext32To64 { d, s } => set!(d, get!(s) as u32 as i32 as i64 as u64),
                    D::SetCond64 {
                        cond,
                        shift,
                        d,
                        a,
                        b,
                    } => set!(d, u64::from(cond64(cond, shift, get!(a), get!(b)))),
                    D::BrCond64 {
                        cond,
                        shift,
                        a,
                        b,
                        target,
                    } => branch!(cond64(cond, shift, get!(a), get!(b)), target),
                    D::BrEq64 { a, b, target } => branch!(get!(a) == get!(b), target),
                    D::BrNe64 { a, b, target } => branch!(get!(a) != get!(b), target),
                    D::BrLt64 { a, b, target } => {
                        branch!((get!(a) as i64) < (get!(b) as i64), target)
                    }
                    D::BrGe64 { a, b, target } => {
                        branch!((get!(a) as i64) >= (get!(b) as i64), target)
                    }
                    D::BrLtu64 { a, b, target } => branch!(get!(a) < get!(b), target),
                    D::BrGeu64 { a, b, target } => branch!(get!(a) >= get!(b), target),
                    D::Bin { op, ty, d, a, b } => {
                        let v = eval_binary(op, ty, read!(a, ty), read!(b, ty));
                        write!(d, ty, v);
                    }
                    D::Un { op, ty, d, s } => {
                        let v = eval_unary(op, ty, read!(s, ty));
                        write!(d, ty, v);
                    }
                    D::Ext {
                        kind,
                        from,
                        to,
                        d,
                        s,
                    } => {
                        let v = eval_ext(kind, from, to, read!(s, from));
                        write!(d, to, v);
                    }
                    D::SetCond { cond, ty, d, a, b } => {
                        set!(
                            d,
                            u64::from(eval_cond(cond, ty, read!(a, ty), read!(b, ty)))
                        );
                    }
                    D::Select { d, c, a, b } => {
                        set!(
                            d,
                            if get!(c) & 0xff != 0 {
                                get!(a)
                            } else {
                                get!(b)
                            }
                        );
                    }
                    D::Select128 { d, c, a, b } => {
                        let src = if get!(c) & 0xff != 0 { a } else { b };
                        set128!(d, get128!(src));
                    }
                    D::Load64 {
                        d,
                        a,
                        off,
                        mem,
                        mmu,
                        at,
                        flush,
                    } => {
                        let vaddr = get!(a).wrapping_add(off as i64 as u64);
                        let v = match tlb_load(st, vaddr, mem, mmu) {
                            Some(v) => v,
                            None => {
                                flushed = flushed.max(c.flush(st, r, flush.ix(), flushed));
                                at_insn!(at);
                                let Some(v) = mem_load_slow(st, vaddr, mem, mmu) else {
                                    fault!(at);
                                };
                                v
                            }
                        };
                        set!(d, v);
                    }
                    D::Load {
                        d,
                        a,
                        mem,
                        mmu,
                        ty,
                        at,
                        flush,
                    } => {
                        let vaddr = get!(a);
                        let v = match tlb_load(st, vaddr, mem, mmu) {
                            Some(v) => v,
                            None => {
                                flushed = flushed.max(c.flush(st, r, flush.ix(), flushed));
                                at_insn!(at);
                                let Some(v) = mem_load_slow(st, vaddr, mem, mmu) else {
                                    fault!(at);
                                };
                                v
                            }
                        };
                        let v = if ty == Type::I128 && mem.signed {
                            v as i64 as i128 as u128
                        } else {
                            u128::from(v) & ty.mask()
                        };
                        write!(d, ty, v);
                    }
                    D::Store {
                        s,
                        a,
                        off,
                        mem,
                        mmu,
                        at,
                        flush,
                    } => {
                        let (vaddr, val) = (get!(a).wrapping_add(off as i64 as u64), get!(s));
                        if !tlb_store(st, vaddr, val, mem, mmu) {
                            flushed = flushed.max(c.flush(st, r, flush.ix(), flushed));
                            at_insn!(at);
                            if !mem_store_slow(st, vaddr, val, mem, mmu) {
                                fault!(at);
                            }
                        }
                    }
                    D::Flush { n } => {
                        // The entries lie before the block's last op (`decode` appends
                        // the flush and its entries together, and they never end a block).
                        let n = n.ix();
                        for k in ip..ip + n {
                            let (off, v, seq) = match *c.ops.get_unchecked(k) {
                                D::Pending { off, s, seq } => (off, get!(s), seq),
                                D::PendingImm { off, seq, imm } => (off, imm, seq),
                                _ => continue,
                            };
                            if seq.ix() as u32 > flushed {
                                ((st as *mut u8).add(off as usize) as *mut u64).write_unaligned(v);
                            }
                        }
                        ip += n;
                    }
                    D::Pending { .. } | D::PendingImm { .. } => {}
                    D::Call { call, at } => {
                        let Some(call) = c.calls.get(call.ix()) else {
                            fault!(at);
                        };
                        if call.effects.reads_state {
                            (*st).pc = pc_of(at);
                            (*st).insn_count = base + before(at);
                        }
                        let mut args = [0u64; 4];
                        for (v, s) in args
                            .iter_mut()
                            .zip(&call.args)
                            .take(usize::from(call.nargs))
                        {
                            *v = get!(*s);
                        }
                        let ret = (call.func)(st, args[0], args[1], args[2], args[3]);
                        if let Some(d) = call.dst {
                            set!(d, ret);
                        }
                        if call.effects.may_raise && (*st).exception_pending != 0 {
                            fault!(at);
                        }
                    }
                    D::Br { target } => ip = target.ix(),
                    D::BrCond {
                        cond,
                        ty,
                        a,
                        b,
                        target,
                    } => branch!(eval_cond(cond, ty, read!(a, ty), read!(b, ty)), target),
                    D::Goto { pc, slot, at } => {
                        (*st).pc = pc;
                        (*st).insn_count = base + at.ix() as u64;
                        return BlockExit::Goto {
                            slot: slot.ix() as u32,
                        };
                    }
                    D::Indirect { s, at } => {
                        (*st).pc = get!(s);
                        (*st).insn_count = base + at.ix() as u64;
                        return BlockExit::Indirect;
                    }
                    D::Exit { reason, pc, at } => {
                        (*st).pc = pc;
                        (*st).insn_count = base + retired(reason, before(at), at.ix() as u64);
                        return BlockExit::Exit(reason);
                    }
                    D::ExitDyn { reason, s, at } => {
                        (*st).pc = get!(s);
                        (*st).insn_count = base + retired(reason, before(at), at.ix() as u64);
                        return BlockExit::Exit(reason);
                    }
                    D::End => fault!(I::ZERO),
                }
            }
        }
    }
}

impl<I: Idx> Decoded<I> {
    /// Perform the stores of flush list `list` numbered above `done`; the list's `seq_end`.
    ///
    /// # Safety
    /// As [`InterpBlock::run`], and `r` is at least `self.slots` long.
    #[inline(always)]
    unsafe fn flush(&self, st: *mut CpuCommon, r: &[u64], list: usize, done: u32) -> u32 {
        let Some(l) = self.flushes.get(list) else {
            return done;
        };
        let (start, len) = (l.start as usize, l.len as usize);
        for g in self.gstores.get(start..start + len).unwrap_or(&[]) {
            if g.seq > done {
                // SAFETY: `g.off` is a global offset of the block (inside the state by the
                // caller contract); a slot is below `self.slots <= r.len()` (`decode` counts
                // these slots).
                unsafe {
                    let v = match g.val {
                        GVal::Slot(s) => *r.get_unchecked(s.ix()),
                        GVal::Imm(imm) => imm,
                    };
                    ((st as *mut u8).add(g.off as usize) as *mut u64).write_unaligned(v);
                }
            }
        }
        l.seq_end
    }
}

/// Decode one value op (not a label, `insn`, call or exit), using operands that are
/// constants known at decode time (`cst`) for the immediate forms.
fn decode_op<I: Idx>(
    op: &Op,
    s: &impl Fn(Value) -> I,
    cst: &impl Fn(Value) -> Option<u64>,
    at: I,
) -> Option<D<I>> {
    Some(match *op {
        Op::Mov {
            dst,
            ty: Type::I128,
            src,
        } => D::Mov128 {
            d: s(dst),
            s: s(src),
        },
        Op::Mov { dst, src, .. } => D::Mov {
            d: s(dst),
            s: s(src),
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
            decode_binary(op, ty, s(dst), s(a), s(b), cst(b))
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
        // Slots hold values masked to their type, so a narrow zero extension is a copy and a
        // truncation a mask.
        Op::Ext {
            kind,
            from,
            to,
            dst,
            src,
        } if from.bits() <= 64 && to.bits() <= 64 => {
            let (d, s) = (s(dst), s(src));
            match kind {
                ExtKind::Zext => D::Mov { d, s },
                ExtKind::Trunc => D::AndI {
                    d,
                    a: s,
                    imm: to.mask() as u64,
                },
                ExtKind::Sext if from == Type::I32 && to.bits() == 64 => D::Sext32To64 { d, s },
                ExtKind::Sext => D::Sext {
                    d,
                    s,
                    shift: (64 - from.bits()) as u8,
                    mask: to.mask() as u64,
                },
            }
        }
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
        } => {
            let (d, c, a, b) = (s(dst), s(cond_val), s(a), s(b));
            if ty == Type::I128 {
                D::Select128 { d, c, a, b }
            } else {
                D::Select { d, c, a, b }
            }
        }
        Op::Load {
            ty,
            mem,
            mmu_idx,
            dst,
            addr,
        } if ty.bits() == 64 => D::Load64 {
            d: s(dst),
            a: s(addr),
            off: 0,
            mem,
            mmu: mmu_idx,
            at,
            flush: I::ZERO,
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
            flush: I::ZERO,
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
            off: 0,
            mem,
            mmu: mmu_idx,
            at,
            flush: I::ZERO,
        },
        Op::Br(l) => D::Br {
            target: I::new(l.0 as usize)?,
        },
        Op::BrCond {
            cond,
            ty,
            a,
            b,
            label,
        } if ty.bits() <= 64 => {
            let (a, b, target) = (s(a), s(b), I::new(label.0 as usize)?);
            match (cond, ty.bits()) {
                (Cond::Eq, _) => D::BrEq64 { a, b, target },
                (Cond::Ne, _) => D::BrNe64 { a, b, target },
                (Cond::Ltu, _) => D::BrLtu64 { a, b, target },
                (Cond::Geu, _) => D::BrGeu64 { a, b, target },
                (Cond::Lt, 64) => D::BrLt64 { a, b, target },
                (Cond::Ge, 64) => D::BrGe64 { a, b, target },
                _ => D::BrCond64 {
                    cond,
                    shift: (64 - ty.bits()) as u8,
                    a,
                    b,
                    target,
                },
            }
        }
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
            target: I::new(label.0 as usize)?,
        },
        // Handled by the caller.
        Op::InsnStart { .. } | Op::Const { .. } | Op::Call { .. } | Op::Label(_) | Op::Exit(_) => {
            D::End
        }
    })
}

/// A binary op of 64 bits or fewer; `cb` is `b`'s value if it is a constant (masked to `ty`).
fn decode_binary<I: Idx>(op: BinOp, ty: Type, d: I, a: I, b: I, cb: Option<u64>) -> D<I> {
    // The narrow forms are 32 bits or fewer: their mask and immediates fit in a u32.
    let mask = ty.mask() as u32;
    let bits = ty.bits() as u8;
    let wide = bits == 64;
    match (op, cb) {
        (BinOp::Add, Some(imm)) if wide => D::AddI64 { d, a, imm },
        (BinOp::Add, Some(imm)) => D::AddI {
            d,
            a,
            imm: imm as u32,
            mask,
        },
        // a - c = a + (2^bits - c) modulo 2^bits.
        (BinOp::Sub, Some(c)) if wide => D::AddI64 {
            d,
            a,
            imm: c.wrapping_neg(),
        },
        (BinOp::Sub, Some(c)) => D::AddI {
            d,
            a,
            imm: (c as u32).wrapping_neg() & mask,
            mask,
        },
        (BinOp::Add, None) if wide => D::Add64 { d, a, b },
        (BinOp::Add, None) => D::Add { d, a, b, mask },
        (BinOp::Sub, None) if wide => D::Sub64 { d, a, b },
        (BinOp::Sub, None) => D::Sub { d, a, b, mask },
        (BinOp::And, Some(imm)) => D::AndI { d, a, imm },
        (BinOp::Or, Some(imm)) => D::OrI { d, a, imm },
        (BinOp::Xor, Some(imm)) => D::XorI { d, a, imm },
        (BinOp::And, None) => D::And { d, a, b },
        (BinOp::Or, None) => D::Or { d, a, b },
        (BinOp::Xor, None) => D::Xor { d, a, b },
        (BinOp::Shl, Some(c)) if wide => D::ShlI64 {
            d,
            a,
            sh: (c & 63) as u8,
        },
        (BinOp::Shr, Some(c)) if wide => D::ShrI64 {
            d,
            a,
            sh: (c & 63) as u8,
        },
        (BinOp::Sar, Some(c)) if wide => D::SarI64 {
            d,
            a,
            sh: (c & 63) as u8,
        },
        (BinOp::Shl, _) if wide => D::Shl64 { d, a, b },
        (BinOp::Shr, _) if wide => D::Shr64 { d, a, b },
        (BinOp::Sar, _) if wide => D::Sar64 { d, a, b },
        (BinOp::Shl, _) => D::Shl { d, a, b, bits },
        (BinOp::Shr, _) => D::Shr { d, a, b, bits },
        (BinOp::Sar, _) => D::Sar { d, a, b, bits },
        (BinOp::Mul, _) if wide => D::Mul64 { d, a, b },
        _ => D::Bin { op, ty, d, a, b },
    }
}

/// The last decoding steps, on the whole op list: fuse an `addi` that computes an address
/// into the load or store right after it (when nothing else reads the sum and no branch lands
/// on the memory op), and remove `Const` ops whose slot no op reads any more (their value was
/// folded into immediate forms or deferred stores). `targets[i]`: some label is at op `i`.
/// Leaves the new ops in `kept` and, for each old op index (and the end), its new index in
/// `remap`, to move the label positions (`reads` is scratch space).
fn peephole<I: Idx>(
    ops: &[D<I>],
    calls: &[CallInfo<I>],
    gstores: &[GStore<I>],
    targets: &[bool],
    reads: &mut Vec<u32>,
    remap: &mut Vec<u32>,
    kept: &mut Vec<D<I>>,
) {
    reads.clear();
    let mut mark = |i: usize| {
        if reads.len() <= i {
            reads.resize(i + 1, 0);
        }
        reads[i] += 1;
    };
    for op in ops {
        op.slots(calls, |s, write| {
            if !write {
                mark(s);
            }
        });
    }
    for g in gstores {
        if let GVal::Slot(s) = g.val {
            mark(s.ix());
        }
    }
    let reads_of = |s: I| reads.get(s.ix()).copied().unwrap_or(0);
    remap.clear();
    kept.clear();
    let mut i = 0;
    while let Some(&op) = ops.get(i) {
        remap.push(kept.len() as u32);
        i += 1;
        if let (
            D::AddI64 {
                d: sum,
                a: base,
                imm,
            },
            Some(&next),
        ) = (op, ops.get(i))
        {
            let off = i16::try_from(imm as i64).ok();
            let alone = reads_of(sum) == 1 && !targets.get(i).copied().unwrap_or(false);
            match (next, off) {
                (
                    D::Load64 {
                        d,
                        a,
                        off: 0,
                        mem,
                        mmu,
                        at,
                        flush,
                    },
                    Some(off),
                ) if alone && Idx::ix(a) == sum.ix() => {
                    remap.push(kept.len() as u32);
                    kept.push(D::Load64 {
                        d,
                        a: base,
                        off,
                        mem,
                        mmu,
                        at,
                        flush,
                    });
                    i += 1;
                    continue;
                }
                (
                    D::Store {
                        s,
                        a,
                        off: 0,
                        mem,
                        mmu,
                        at,
                        flush,
                    },
                    Some(off),
                ) if alone && Idx::ix(a) == sum.ix() => {
                    remap.push(kept.len() as u32);
                    kept.push(D::Store {
                        s,
                        a: base,
                        off,
                        mem,
                        mmu,
                        at,
                        flush,
                    });
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        let unread = match op {
            D::Const { d, .. } => reads_of(d) == 0,
            _ => false,
        };
        if !unread {
            kept.push(op);
        }
    }
    remap.push(kept.len() as u32);
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
fn retired(reason: ExitReason, before: u64, started: u64) -> u64 {
    if reason == ExitReason::Exception {
        before
    } else {
        started
    }
}

/// The TLB fast path of a load (`CpuCommon::try_load_fast`), inline so a hit costs no call;
/// `None` on a miss. Through the raw state pointer, so the slow path later receives the pointer
/// with the whole guest state's provenance.
///
/// # Safety
/// `st` is a live, exclusively borrowed guest state.
#[inline(always)]
unsafe fn tlb_load(st: *mut CpuCommon, vaddr: u64, mem: MemOp, mmu: u8) -> Option<u64> {
    // SAFETY: `st` is valid (caller contract); the index is in range by construction.
    unsafe {
        let entry = &(*st).tlb[usize::from(mmu) % NB_MMU_MODES][tlb_index(vaddr)];
        let tag = if mem.store_intent {
            entry.addr_write
        } else {
            entry.addr_read
        };
        // A hit means the entry was filled for a page wholly inside guest RAM and the access
        // lies inside that page (env.rs module docs).
        tlb_hit(tag, vaddr, mem)
            .then(|| read_host(vaddr.wrapping_add(entry.addend) as usize as *const u8, mem))
    }
}

/// The slow path of a load, out of line so the executor's loop stays small; `None` if it
/// recorded a guest fault.
///
/// # Safety
/// As [`tlb_load`].
#[inline(never)]
#[cold]
unsafe fn mem_load_slow(st: *mut CpuCommon, vaddr: u64, mem: MemOp, mmu: u8) -> Option<u64> {
    // SAFETY: `st` is valid (caller contract).
    unsafe {
        let v = ((*st).slow.load)(st, vaddr, mem.to_bits(), u32::from(mmu));
        ((*st).exception_pending == 0).then_some(v)
    }
}

/// The TLB fast path of a store; false on a miss. See [`tlb_load`].
///
/// # Safety
/// As [`tlb_load`].
#[inline(always)]
unsafe fn tlb_store(st: *mut CpuCommon, vaddr: u64, val: u64, mem: MemOp, mmu: u8) -> bool {
    // SAFETY: as in `tlb_load`; write tags are only valid for writable RAM pages.
    unsafe {
        let entry = &(*st).tlb[usize::from(mmu) % NB_MMU_MODES][tlb_index(vaddr)];
        let hit = tlb_hit(entry.addr_write, vaddr, mem);
        if hit {
            write_host(
                vaddr.wrapping_add(entry.addend) as usize as *mut u8,
                val,
                mem,
            );
        }
        hit
    }
}

/// The slow path of a store; false if it recorded a guest fault.
///
/// # Safety
/// As [`tlb_load`].
#[inline(never)]
#[cold]
unsafe fn mem_store_slow(st: *mut CpuCommon, vaddr: u64, val: u64, mem: MemOp, mmu: u8) -> bool {
    // SAFETY: `st` is valid (caller contract).
    unsafe {
        ((*st).slow.store)(st, vaddr, val, mem.to_bits(), u32::from(mmu));
        (*st).exception_pending == 0
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
    use crate::testing::{
        assert_observed_slow_path, observed_slow_path_text, observing_slow_load, reg_offset,
        test_helpers, TestCpu, RAM_BASE,
    };

    fn run(text: &str, cpu: &mut TestCpu) -> BlockExit {
        let b = parse_block(text, &test_helpers()).unwrap_or_else(|e| panic!("{e}"));
        crate::ir::verify::verify(&b).unwrap_or_else(|e| panic!("{e}"));
        run_both(&b, cpu)
    }

    /// Run `b` from `cpu` in its 16-bit-index form, and in the 32-bit-index form (larger
    /// blocks) from a copy of `cpu`: both must end in the same state.
    fn run_both(b: &IrBlock, cpu: &mut TestCpu) -> BlockExit {
        let small = InterpBlock::new(b);
        assert!(matches!(small.code, Code::Small(_)));
        let large = InterpBlock::new_large(b);
        let mut copy = TestCpu::new();
        copy.regs = cpu.regs;
        copy.fault_addr = cpu.fault_addr;
        copy.slow_calls = cpu.slow_calls;
        copy.ram.copy_from_slice(&cpu.ram);
        copy.common.pc = cpu.common.pc;
        copy.common.insn_count = cpu.common.insn_count;
        copy.common.insn_limit = cpu.common.insn_limit;
        copy.common.exception_pending = cpu.common.exception_pending;
        copy.common.slow = cpu.common.slow;
        // SAFETY: live TestCpus borrowed for the calls; the blocks' globals are registers.
        let (exit, exit_large) =
            unsafe { (small.run(cpu.state_ptr()), large.run(copy.state_ptr())) };
        assert_eq!(exit, exit_large);
        assert_eq!(cpu.regs, copy.regs);
        assert_eq!(
            (
                cpu.common.pc,
                cpu.common.insn_count,
                cpu.common.exception_pending
            ),
            (
                copy.common.pc,
                copy.common.insn_count,
                copy.common.exception_pending
            )
        );
        assert_eq!(
            (cpu.fault_addr, cpu.slow_calls),
            (copy.fault_addr, copy.slow_calls)
        );
        assert!(cpu.ram == copy.ram);
        exit
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

    /// Blocks with register files past the fixed stack sizes: on the stack up to
    /// `SLOTS_BIG`, on the heap beyond; both start zeroed and give the same sums.
    #[test]
    fn long_blocks_beyond_the_fixed_register_files() {
        for n in [SLOTS_XL + 10, SLOTS_BIG - 2, SLOTS_BIG + 50] {
            let mut text = format!(
                "block pc=0x1000\n insn 0x1000 0\n v0:i64 = load_global {}\n",
                reg_offset(1)
            );
            for i in 1..n {
                text += &format!(" v{i}:i64 = add v{}, v0\n", i - 1);
            }
            text += &format!(
                " store_global.i64 {}, v{}\n goto 0x2000\n",
                reg_offset(2),
                n - 1
            );
            let b = parse_block(&text, &test_helpers()).unwrap_or_else(|e| panic!("{e}"));
            let Code::Small(c) = &InterpBlock::new(&b).code else {
                panic!("16-bit indices fit");
            };
            assert!(c.slots > SLOTS_XL);
            let mut cpu = TestCpu::new();
            cpu.regs[1] = 3;
            assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot: 0 });
            assert_eq!(cpu.regs[2], 3 * n as u64);
        }
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

    /// Constants folded into immediate forms are dropped from the op list, and branch targets
    /// still land on the ops after their labels.
    #[test]
    fn folded_constants_keep_branch_targets() {
        let text = format!(
            "block pc=0x1000\n insn 0x1000 0\n v0:i64 = load_global {r1}\n v1:i64 = const 1\n \
             v2:i64 = const 7\n brcond.i64 eq v0, v2, L0\n v3:i64 = const 100\n \
             v4:i64 = add v0, v3\n store_global.i64 {r2}, v4\n goto 0x2000\nL0:\n \
             v5:i64 = const 5\n v6:i64 = sub v0, v5\n store_global.i64 {r2}, v6\n \
             goto 0x3000\n",
            r1 = reg_offset(1),
            r2 = reg_offset(2),
        );
        let b = parse_block(&text, &test_helpers()).unwrap_or_else(|e| panic!("{e}"));
        let Code::Small(code) = InterpBlock::new(&b).code else {
            panic!("a small block takes 16-bit indices");
        };
        let consts = code
            .ops
            .iter()
            .filter(|o| matches!(o, D::Const { .. }))
            .count();
        assert_eq!(consts, 1, "only the compared constant stays");
        for (x, want, slot, pc) in [(7, 2, 1, 0x3000), (8, 108, 0, 0x2000)] {
            let mut cpu = TestCpu::new();
            cpu.regs[1] = x;
            assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot });
            assert_eq!((cpu.regs[2], cpu.common.pc), (want, pc));
        }
    }

    /// Deferred global stores: a slow path sees every store made before it, a store it
    /// overwrote is not performed again at the block end, later stores are, and a faulting
    /// access leaves the earlier stores in the state.
    #[test]
    fn deferred_global_stores_are_seen_by_slow_paths_and_exits() {
        let text = observed_slow_path_text(false);
        let mut cpu = TestCpu::new();
        cpu.common.slow.load = observing_slow_load;
        assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_observed_slow_path(&cpu, false);

        // The same block with a faulting access.
        let faulting = observed_slow_path_text(true);
        let mut cpu = TestCpu::new();
        assert_eq!(run(&faulting, &mut cpu), BlockExit::Fault);
        assert_observed_slow_path(&cpu, true);
    }

    /// A slow path performs every store deferred since the last flush, replaced ones too, in
    /// program order: it sees the latest value; a later slow path sees only what came after,
    /// and stores it already made are not made again over its own writes.
    #[test]
    fn slow_paths_perform_the_window_of_deferred_stores() {
        let text = format!(
            "block pc=0x1000\n insn 0x1000 0\n v0:i64 = const 5\n store_global.i64 {r2}, v0\n \
             v1:i64 = const 7\n store_global.i64 {r2}, v1\n v2:i64 = const {RAM_BASE:#x}\n \
             v3:i64 = load u64 mmu=1 v2\n insn 0x1004 0\n v4:i64 = load u64 mmu=1 v2\n \
             insn 0x1008 0\n v5:i64 = const 9\n store_global.i64 {r2}, v5\n \
             store_global.i64 {r4}, v4\n v6:i64 = load u64 mmu=1 v2\n goto 0x2000\n",
            r2 = reg_offset(2),
            r4 = reg_offset(4),
        );
        let mut cpu = TestCpu::new();
        cpu.common.slow.load = observing_slow_load;
        assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_eq!(cpu.regs[30], 9, "the last slow path saw the last store");
        assert_eq!((cpu.regs[2], cpu.regs[3], cpu.regs[4]), (9, 0xdead, 42));
        assert_eq!(cpu.common.insn_count, 3);

        // Up to the second access only: both slow paths saw the replacing store.
        let cut = text.find(" insn 0x1008").unwrap_or(text.len());
        let head = format!("{} goto 0x2000\n", &text[..cut]);
        let mut cpu = TestCpu::new();
        cpu.common.slow.load = observing_slow_load;
        assert_eq!(run(&head, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_eq!((cpu.regs[30], cpu.regs[2]), (7, 7));
    }

    /// A global load overlapping a pending store, and a narrower store into one, see the
    /// stores in program order.
    #[test]
    fn deferred_global_stores_and_overlapping_accesses() {
        let text = format!(
            "block pc=0x1000\n insn 0x1000 0\n v0:i64 = const 0x1122334455667788\n \
             store_global.i64 {r2}, v0\n v1:i32 = load_global {r2h}\n \
             v2:i8 = const 0xaa\n store_global.i8 {r2}, v2\n v3:i64 = zext.i32.i64 v1\n \
             store_global.i64 {r3}, v3\n goto 0x2000\n",
            r2 = reg_offset(2),
            r2h = reg_offset(2) + 4,
            r3 = reg_offset(3),
        );
        let mut cpu = TestCpu::new();
        assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_eq!(cpu.regs[2], 0x1122_3344_5566_77aa);
        assert_eq!(cpu.regs[3], 0x1122_3344);
    }

    /// A block with more values than 16-bit indices reach runs in the 32-bit form.
    #[test]
    fn blocks_too_large_for_16_bit_indices_run() {
        let mut b = Builder::new(0x1000);
        b.insn_start(0x1000, 0);
        let x = b.load_global(Type::I64, reg_offset(1));
        let mut acc = x;
        for i in 0..40_000u64 {
            let k = b.iconst(Type::I64, i);
            let t = b.binary(BinOp::Add, Type::I64, acc, k);
            acc = b.binary(BinOp::Xor, Type::I64, t, x);
        }
        b.store_global(Type::I64, reg_offset(2), acc);
        b.goto(0x2000);
        let blk = b.finish();
        crate::ir::verify::verify(&blk).unwrap();
        let ib = InterpBlock::new(&blk);
        assert!(matches!(ib.code, Code::Large(_)));
        let mut want = 5u64;
        for i in 0..40_000u64 {
            want = want.wrapping_add(i) ^ 5;
        }
        let mut cpu = TestCpu::new();
        cpu.regs[1] = 5;
        // SAFETY: a live TestCpu borrowed for the call; globals are its registers.
        let exit = unsafe { ib.run(cpu.state_ptr()) };
        assert_eq!(exit, BlockExit::Goto { slot: 0 });
        assert_eq!(cpu.regs[2], want);
    }

    /// An `addi` computing an address is fused into the load or store after it, unless the
    /// sum is read elsewhere or a branch lands on the access; a fused access faults at the
    /// same address and instruction.
    #[test]
    fn address_adds_fuse_into_accesses() {
        let text = format!(
            "block pc=0x1000\n insn 0x1000 0\n v0:i64 = load_global {r1}\n \
             v1:i64 = const 8\n v2:i64 = add v0, v1\n v3:i64 = load u64 v2\n \
             store_global.i64 {r2}, v3\n insn 0x1004 0\n v4:i64 = const 0xfffffffffffffffc\n \
             v5:i64 = add v0, v4\n store.i64 u32 v3, v5\n insn 0x1008 0\n \
             v6:i64 = const 16\n v7:i64 = add v0, v6\n v8:i64 = load s32 v7\n \
             store_global.i64 {r3}, v7\n store_global.i64 {r4}, v8\n \
             brcond.i64 eq v0, v1, L0\n v9:i64 = add v0, v1\nL0:\n v10:i64 = load u8 v9\n \
             store_global.i64 {r5}, v10\n goto 0x2000\n",
            r1 = reg_offset(1),
            r2 = reg_offset(2),
            r3 = reg_offset(3),
            r4 = reg_offset(4),
            r5 = reg_offset(5),
        );
        let b = parse_block(&text, &test_helpers()).unwrap_or_else(|e| panic!("{e}"));
        let Code::Small(code) = InterpBlock::new(&b).code else {
            panic!("a small block takes 16-bit indices");
        };
        let fused = code
            .ops
            .iter()
            .filter(|o| matches!(o, D::Load64 { off, .. } | D::Store { off, .. } if *off != 0))
            .count();
        assert_eq!(fused, 2, "the load at +8 and the store at -4 only");
        let base = RAM_BASE + 0x100;
        let mut cpu = TestCpu::new();
        cpu.regs[1] = base;
        assert!(cpu.write_mem(base + 8, 8, 0x8000_0000_1234_5678));
        assert!(cpu.write_mem(base + 16, 4, 0x8765_4321));
        assert_eq!(run(&text, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_eq!(cpu.regs[2], 0x8000_0000_1234_5678);
        assert_eq!(cpu.read_mem(base - 4, 4), Some(0x1234_5678));
        assert_eq!(
            (cpu.regs[3], cpu.regs[4]),
            (base + 16, 0xffff_ffff_8765_4321)
        );
        assert_eq!(cpu.regs[5], 0x78);
        // The fused load faults with the computed address, at its own instruction.
        let mut cpu = TestCpu::new();
        cpu.regs[1] = 0x18;
        assert_eq!(run(&text, &mut cpu), BlockExit::Fault);
        assert_eq!(
            (cpu.fault_addr, cpu.common.pc, cpu.common.insn_count),
            (0x20, 0x1000, 0)
        );
    }

    /// A decoded op stays small: the op list is what the executor streams through.
    #[test]
    fn decoded_op_size() {
        assert!(
            std::mem::size_of::<D<u16>>() <= 16,
            "{}",
            std::mem::size_of::<D<u16>>()
        );
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
            BinOp::Mul,
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
        for _ in 0..2000 {
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
            // The same ops with a constant right operand (the decoder's immediate forms).
            for (i, op) in ops.iter().enumerate() {
                let k = b.iconst(ty, y);
                let v = b.binary(*op, ty, a, k);
                let w = widen(&mut b, v, ty);
                b.store_global(Type::I64, reg_offset(2 + (ops.len() + i) as u32), w);
                expect.push(eval_binary(*op, ty, u128::from(x), u128::from(y)) as u64);
            }
            let cond = conds[rng.gen_range(0..10)];
            let sc = b.set_cond(cond, ty, a, c);
            let w = widen(&mut b, sc, Type::I8);
            b.store_global(Type::I64, reg_offset(20), w);
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
                b.store_global(Type::I64, reg_offset(21), w);
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
            let exit = run_both(&blk, &mut cpu);
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
