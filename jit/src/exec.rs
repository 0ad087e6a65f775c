//! What running a block returns, shared by both executors (DESIGN.md §2, exit ABI).
//!
//! Contract for every executor, on every exit:
//! - `CpuCommon::pc` holds the guest PC to continue at (the target of a `Goto`/`Indirect`, the
//!   `pc` of an `Exit`, the faulting instruction's PC for a mid-block fault, the block's start
//!   for `Budget`).
//! - `CpuCommon::insn_count` has grown by the instructions that *retired*: every instruction
//!   before the exiting one, plus the exiting one unless the exit is `Fault` or
//!   `Exit{reason: Exception}` (an instruction that raises does not retire).
//! - Guest globals cached in host registers have been written back to the state.
//! - On entry, if `insn_count >= insn_limit`, the block runs nothing and returns `Budget`.

use crate::ir::ExitReason;

/// How a block (or a chain of compiled blocks) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockExit {
    /// A `Goto` terminal: `slot` is the index of that exit among the block's `Goto` exits, in op
    /// order (chain slot number).
    Goto { slot: u32 },
    /// An `Indirect` terminal.
    Indirect,
    /// An `Exit` terminal with its reason.
    Exit(ExitReason),
    /// A helper or memory access recorded a pending exception in the middle of the block.
    Fault,
    /// The instruction budget was already spent on entry.
    Budget,
}
