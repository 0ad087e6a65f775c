//! emu's intermediate representation (DESIGN.md §3).
//!
//! A block is a linear list of [`Op`]s over typed temporaries ([`Value`]), with labels and
//! conditional branches *inside* the block so one guest instruction may lift to a small diamond.
//! Guest architectural registers are *globals*: loads and stores at fixed byte offsets in the CPU
//! state (whose first field is [`crate::env::CpuCommon`]). Every path through a block ends in an
//! [`Op::Exit`] carrying a [`Terminal`].
//!
//! Semantics are defined here and by the interpreter (`crate::interp`), which is the reference;
//! the Cranelift backend must agree with it on every IR file test and on random blocks.

pub mod builder;
pub mod parse;
pub mod print;
pub mod verify;

pub use builder::Builder;

use crate::helper::HelperDef;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The type of a temporary. Integers are plain bit patterns (no signedness); floats are IEEE-754
/// binary32/binary64 bit patterns moved with [`UnOp::Bitcast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    I8,
    I16,
    I32,
    I64,
    I128,
    F32,
    F64,
}

impl Type {
    /// Width in bits.
    pub fn bits(self) -> u32 {
        match self {
            Type::I8 => 8,
            Type::I16 => 16,
            Type::I32 | Type::F32 => 32,
            Type::I64 | Type::F64 => 64,
            Type::I128 => 128,
        }
    }

    /// Width in bytes.
    pub fn bytes(self) -> u32 {
        self.bits() / 8
    }

    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    pub fn is_float(self) -> bool {
        matches!(self, Type::F32 | Type::F64)
    }

    /// The integer type of the given width in bytes (1, 2, 4, 8, 16).
    pub fn int_of_bytes(bytes: u32) -> Option<Type> {
        Some(match bytes {
            1 => Type::I8,
            2 => Type::I16,
            4 => Type::I32,
            8 => Type::I64,
            16 => Type::I128,
            _ => return None,
        })
    }

    /// All-ones mask of this type's width, as u128.
    pub fn mask(self) -> u128 {
        match self.bits() {
            128 => u128::MAX,
            b => (1u128 << b) - 1,
        }
    }
}

/// A typed temporary, numbered in its block. Each value is defined by one op on every path
/// before use (the verifier checks definition-before-use along the linear order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub u32);

/// A branch target inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(pub u32);

/// A helper function, by its index in the block's helper list ([`IrBlock::helpers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HelperId(pub u32);

/// Integer comparison conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    Eq,
    Ne,
    /// Signed less than.
    Lt,
    /// Signed greater or equal.
    Ge,
    /// Unsigned less than.
    Ltu,
    /// Unsigned greater or equal.
    Geu,
    Gt,
    Le,
    Gtu,
    Leu,
}

impl Cond {
    /// The condition that holds exactly when `self` does not.
    pub fn inverse(self) -> Cond {
        match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Lt => Cond::Ge,
            Cond::Ge => Cond::Lt,
            Cond::Ltu => Cond::Geu,
            Cond::Geu => Cond::Ltu,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
            Cond::Gtu => Cond::Leu,
            Cond::Leu => Cond::Gtu,
        }
    }
}

/// Two-operand integer operations. Both operands and the result have the op's type, except
/// shifts and rotates, whose amount operand has the same type and is taken modulo the width.
///
/// Division is *total* and follows RISC-V (Unprivileged ISA §13.2): `x / 0` is all ones
/// (`DivU`) or -1 (`DivS`), `x % 0` is `x`, and `MIN / -1` is `MIN` with remainder 0. Frontends
/// whose architecture traps on these cases test for them before dividing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// High half of the signed × signed product.
    MulHs,
    /// High half of the unsigned × unsigned product.
    MulHu,
    /// High half of the signed × unsigned product.
    MulHsu,
    DivS,
    DivU,
    RemS,
    RemU,
    And,
    Or,
    Xor,
    AndNot,
    OrNot,
    XorNot,
    Shl,
    /// Logical shift right.
    Shr,
    /// Arithmetic shift right.
    Sar,
    Rotl,
    Rotr,
    /// Signed minimum / maximum, unsigned minimum / maximum.
    MinS,
    MaxS,
    MinU,
    MaxU,
}

/// One-operand integer operations; operand and result have the op's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Not,
    Neg,
    /// Count leading zeros (the width for zero).
    Clz,
    /// Count trailing zeros (the width for zero).
    Ctz,
    Popcnt,
    /// Reverse byte order.
    Bswap,
    /// Reinterpret the bits as another type of the same width (e.g. I64 <-> F64). The op's type
    /// is the *result* type.
    Bitcast,
}

/// Width conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtKind {
    /// Zero-extend a narrower integer.
    Zext,
    /// Sign-extend a narrower integer.
    Sext,
    /// Keep the low bits of a wider integer.
    Trunc,
}

/// Memory access size, extension and alignment (DESIGN.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MemOp {
    /// log2 of the access size in bytes: 0..=3 (1, 2, 4, 8 bytes).
    pub size_log2: u8,
    /// Sign-extend a load to the destination type (otherwise zero-extend).
    pub signed: bool,
    /// The access must be naturally aligned; a misaligned address raises the architecture's
    /// misaligned fault through the slow path. Otherwise misaligned accesses are performed.
    pub aligned: bool,
    /// A load that is the read half of a read-modify-write (AMO, SC): it probes the TLB's
    /// *write* tag, and the slow path checks store permission, sets the dirty bit and raises
    /// store/AMO faults (e.g. RISC-V cause 6/7/15 instead of 4/5/13).
    pub store_intent: bool,
}

impl MemOp {
    pub const fn new(size_log2: u8, signed: bool, aligned: bool) -> Self {
        MemOp {
            size_log2,
            signed,
            aligned,
            store_intent: false,
        }
    }

    /// The same access as the read half of a read-modify-write.
    pub const fn with_store_intent(self) -> Self {
        MemOp {
            store_intent: true,
            ..self
        }
    }

    pub fn size(self) -> u32 {
        1 << self.size_log2
    }

    /// Packed form passed to the slow-path ABI ([`crate::env::MemSlowPath`]):
    /// bits 0..2 size_log2, bit 2 signed, bit 3 aligned, bit 4 store_intent.
    pub fn to_bits(self) -> u32 {
        u32::from(self.size_log2)
            | (u32::from(self.signed) << 2)
            | (u32::from(self.aligned) << 3)
            | (u32::from(self.store_intent) << 4)
    }

    pub fn from_bits(bits: u32) -> Self {
        MemOp {
            size_log2: (bits & 3) as u8,
            signed: bits & 4 != 0,
            aligned: bits & 8 != 0,
            store_intent: bits & 16 != 0,
        }
    }
}

/// Why a block hands control back to the run loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// A guest exception is pending in the CPU state (recorded by a helper or the memory slow
    /// path). The exiting instruction did not retire; `pc` is its address.
    Exception,
    /// The instruction changed translation state or interrupt enables (CSR write, fence,
    /// sfence.vma, mret/sret...): the run loop re-checks interrupts and recomputes the block key.
    Yield,
    /// WFI (or an architectural halt): the hart sleeps until an interrupt is pending.
    Halt,
}

/// How a block continues (the dynarmic idea of a typed terminal). Backends may always degrade a
/// `Goto` to a run-loop lookup; they must never do the opposite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Terminal {
    /// Continue at a known guest virtual PC. Chainable when the target lies in the same guest
    /// page as the block start.
    Goto { pc: u64 },
    /// Continue at the guest virtual PC held in a value (an I64): an indirect jump or return.
    Indirect { pc: Value },
    /// Leave to the run loop with a reason; `pc` is stored into `CpuCommon::pc`.
    Exit { reason: ExitReason, pc: u64 },
    /// Leave to the run loop with a reason at a computed PC (an I64 value), e.g. `mret`, whose
    /// target and new privilege are only known at run time. Never chained or jump-cached.
    ExitDynamic { reason: ExitReason, pc: Value },
}

/// Which guest registers (globals) a helper may touch; the backends keep guest registers cached
/// in host registers across ops and must write them back / reload them around a helper that
/// declares it reads / writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct HelperEffects {
    /// The helper reads guest registers through the CPU state, or reads `CpuCommon::pc` /
    /// `CpuCommon::insn_count`: dirty globals, the current instruction's PC and the exact
    /// instruction count are written back before the call.
    pub reads_state: bool,
    /// The helper writes guest registers through the CPU state: cached globals are reloaded
    /// after the call.
    pub writes_state: bool,
    /// The helper may record a pending guest exception (`CpuCommon::exception_pending != 0`).
    /// After the call, the block exits with [`ExitReason::Exception`] at the current
    /// instruction if one is pending.
    pub may_raise: bool,
}

/// The arguments of a helper call: up to [`CallArgs::MAX`] values held inline, so an [`Op`]
/// owns no heap memory (translation copies and rewrites ops freely; a `Vec` per call was a
/// `malloc` per call and made every op move drop-checked). Reads as a slice.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallArgs {
    len: u8,
    vals: [Value; CallArgs::MAX],
}

impl CallArgs {
    /// Helpers take at most four arguments besides the CPU state (the helper ABI).
    pub const MAX: usize = 4;

    /// The arguments `args`; `None` if there are more than [`CallArgs::MAX`].
    pub fn new(args: &[Value]) -> Option<CallArgs> {
        let mut vals = [Value(0); CallArgs::MAX];
        vals.get_mut(..args.len())?.copy_from_slice(args);
        Some(CallArgs {
            len: args.len() as u8,
            vals,
        })
    }

    pub fn as_slice(&self) -> &[Value] {
        self.vals.get(..usize::from(self.len)).unwrap_or(&self.vals)
    }

    pub fn as_mut_slice(&mut self) -> &mut [Value] {
        let len = usize::from(self.len).min(CallArgs::MAX);
        &mut self.vals[..len]
    }
}

impl Default for CallArgs {
    fn default() -> Self {
        CallArgs {
            len: 0,
            vals: [Value(0); CallArgs::MAX],
        }
    }
}

impl Deref for CallArgs {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        self.as_slice()
    }
}

impl DerefMut for CallArgs {
    fn deref_mut(&mut self) -> &mut [Value] {
        self.as_mut_slice()
    }
}

impl<'a> IntoIterator for &'a CallArgs {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl fmt::Debug for CallArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// One IR operation. `dst` values are defined by the op; everything else is used. Ops are
/// plain data (`Copy`, no heap memory), 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    /// Marks the start of a guest instruction at virtual address `pc` (and its encoding, for
    /// tracing). Ops until the next `InsnStart` belong to that instruction.
    InsnStart { pc: u64, insn: u32 },
    /// `dst = imm`, truncated to `ty` (I128 constants are zero-extended from 64 bits).
    Const { dst: Value, ty: Type, imm: u64 },
    /// `dst = src`; both of type `ty`.
    Mov { dst: Value, ty: Type, src: Value },
    /// `dst = *(state + offset)` as `ty`.
    LoadGlobal { dst: Value, ty: Type, offset: u32 },
    /// `*(state + offset) = src` as `ty`.
    StoreGlobal { src: Value, ty: Type, offset: u32 },
    Unary {
        op: UnOp,
        ty: Type,
        dst: Value,
        src: Value,
    },
    Binary {
        op: BinOp,
        ty: Type,
        dst: Value,
        a: Value,
        b: Value,
    },
    /// Convert `src` (of type `from`) to `to`.
    Ext {
        kind: ExtKind,
        from: Type,
        to: Type,
        dst: Value,
        src: Value,
    },
    /// `dst: I8 = (a cond b) ? 1 : 0`, operands of type `ty`.
    SetCond {
        cond: Cond,
        ty: Type,
        dst: Value,
        a: Value,
        b: Value,
    },
    /// `dst = (cond_val != 0) ? a : b`; `cond_val` is an I8, `a`, `b`, `dst` are `ty`.
    Select {
        ty: Type,
        dst: Value,
        cond_val: Value,
        a: Value,
        b: Value,
    },
    /// Guest memory load through the softmmu: `dst: ty = load(addr: I64)`. A narrower access
    /// is extended to `ty` as `mem.signed` says.
    Load {
        ty: Type,
        mem: MemOp,
        mmu_idx: u8,
        dst: Value,
        addr: Value,
    },
    /// Guest memory store of the low `mem.size()` bytes of `src` (of type `ty`).
    Store {
        ty: Type,
        mem: MemOp,
        mmu_idx: u8,
        src: Value,
        addr: Value,
    },
    /// Call a helper with up to 4 I64 arguments (the CPU state pointer is passed implicitly);
    /// `dst`, if any, receives its I64 result.
    Call {
        helper: HelperId,
        args: CallArgs,
        dst: Option<Value>,
    },
    /// Define a label at this point.
    Label(Label),
    /// Unconditional branch to a label later in the block (branches only go forward, so every
    /// block terminates).
    Br(Label),
    /// Branch forward to `label` if `a cond b` (operands of type `ty`).
    BrCond {
        cond: Cond,
        ty: Type,
        a: Value,
        b: Value,
        label: Label,
    },
    /// Leave the block.
    Exit(Terminal),
}

/// A translated block of IR.
#[derive(Clone, Debug, Default)]
pub struct IrBlock {
    /// Types of the temporaries, indexed by `Value.0`.
    pub values: Vec<Type>,
    /// Number of labels allocated (`Label.0 < labels`).
    pub labels: u32,
    pub ops: Vec<Op>,
    /// Guest virtual PC of the first instruction.
    pub start_pc: u64,
    /// Number of guest instructions (of `InsnStart` ops).
    pub insn_count: u32,
    /// Bytes of guest code covered, from `start_pc`.
    pub guest_size: u32,
    /// The helpers this block calls; `Call { helper: HelperId(i) }` calls `helpers[i]`.
    /// Each helper is a `static` of its frontend module, interned by address by the builder.
    pub helpers: Vec<&'static HelperDef>,
}

impl IrBlock {
    pub fn value_type(&self, v: Value) -> Option<Type> {
        self.values.get(v.0 as usize).copied()
    }

    pub fn helper(&self, h: HelperId) -> Option<&'static HelperDef> {
        self.helpers.get(h.0 as usize).copied()
    }
}

impl fmt::Display for IrBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print::write_block(f, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Translation streams ops through every pass: keep them small and heap-free.
    #[test]
    fn op_is_small_plain_data() {
        assert!(
            std::mem::size_of::<Op>() <= 32,
            "{}",
            std::mem::size_of::<Op>()
        );
        assert!(!std::mem::needs_drop::<Op>());
    }

    #[test]
    fn call_args_hold_up_to_four_values() {
        let v: Vec<Value> = (0..5).map(Value).collect();
        assert!(CallArgs::new(&v).is_none());
        let mut a = CallArgs::new(&v[..3]).unwrap();
        assert_eq!(a.as_slice(), &v[..3]);
        for x in a.iter_mut() {
            x.0 += 10;
        }
        assert_eq!(a.iter().map(|x| x.0).collect::<Vec<_>>(), [10, 11, 12]);
        assert!(CallArgs::new(&[]).unwrap().is_empty());
        assert_eq!(format!("{a:?}"), "[Value(10), Value(11), Value(12)]");
    }
}
