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

use emu_jit::ir::{Builder, Type, Value};

use super::cpu::xreg_offset;

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

/// A lifter: gets the (expanded) 32-bit instruction word.
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
