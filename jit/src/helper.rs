//! Helper calls: Rust functions that generated code and the interpreter call for rare or complex
//! guest operations (CSR access, floating point, page walks, system instructions). DESIGN.md §3:
//! helpers return a value and report guest faults into the CPU state; they never unwind through
//! generated code.

use crate::env::CpuCommon;
use crate::ir::HelperEffects;

/// The helper ABI: the CPU state, then up to four arguments (unused ones are 0), one result
/// (0 when the helper has none).
pub type HelperFn = extern "C" fn(*mut CpuCommon, u64, u64, u64, u64) -> u64;

/// One entry of a frontend's helper table; IR `Call { helper: HelperId(i) }` names entry `i`.
#[derive(Clone, Copy, Debug)]
pub struct HelperDef {
    /// Name in the IR text form (unique within the table).
    pub name: &'static str,
    pub func: HelperFn,
    /// Number of arguments, 0..=4.
    pub args: u8,
    /// Whether the helper returns a value.
    pub ret: bool,
    pub effects: HelperEffects,
}

/// A guest CPU state that helpers and the slow path may recover from the `*mut CpuCommon`
/// generated code passes them.
///
/// # Safety
/// The implementing type must be `#[repr(C)]` with a [`CpuCommon`] as its **first** field, and
/// every `CpuCommon` pointer handed to this guest's helpers and slow path must point into a live
/// value of this type that nothing else borrows during the call.
pub unsafe trait GuestState: Sized {}

/// Recover the guest state from the pointer a helper receives.
///
/// The pointer must come from the executors running this guest, which hold the only borrow of
/// the state while a block runs; that is the contract [`GuestState`] implementations promise.
#[inline]
#[allow(clippy::mut_from_ref)]
pub fn state_of<'a, T: GuestState>(common: *mut CpuCommon) -> &'a mut T {
    // SAFETY: by the `GuestState` contract, `common` is the first field of a live `#[repr(C)]` T,
    // so it has T's address; the executors pass the state's only borrow into the call.
    unsafe { &mut *(common as *mut T) }
}
