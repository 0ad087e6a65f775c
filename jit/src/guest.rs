//! The contract between the engine and a guest ISA (`Frontend` in DESIGN.md §1): how to find
//! the next block, how to lift it, and which helpers it may call.

use crate::env::CpuCommon;
use crate::helper::HelperDef;
use crate::ir::Builder;

/// What identifies a translation: the guest virtual PC, its physical address and the
/// translation-mode bits (privilege, MMU on/off, FP enabled, ... — frontend-defined). A cached
/// block is reused only when all three match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockKey {
    pub pc: u64,
    pub phys_pc: u64,
    pub flags: u32,
}

/// A guest CPU that the engine can run.
pub trait Guest {
    /// Every helper this guest's lifters may call, so the IR text parser can resolve names.
    fn helpers(&self) -> Vec<&'static HelperDef>;

    /// The common header (the first field of the guest's `#[repr(C)]` state).
    fn common(&mut self) -> &mut CpuCommon;

    /// Pointer passed to executed code and helpers: the address of the state, which starts with
    /// its `CpuCommon`.
    fn state_ptr(&mut self) -> *mut CpuCommon {
        self.common() as *mut CpuCommon
    }

    /// The key of the block starting at `common().pc`, translating it for instruction fetch.
    /// `None` if the fetch faults: the exception is then pending in the state
    /// (`exception_pending != 0`) and the run loop delivers it.
    fn block_key(&mut self) -> Option<BlockKey>;

    /// Lift the block at `key` into `b`, ending every path with an `Exit`. A block stops at a
    /// branch, an instruction that changes translation state, the end of the guest page, or
    /// `max_insns` instructions. If the first instruction cannot be fetched or decoded, the
    /// block raises the fault (a helper call then `Exit { reason: Exception }`).
    fn translate(&mut self, key: &BlockKey, max_insns: u32, b: &mut Builder);

    /// The engine translated code in guest physical page `phys_page`: from now on, stores into
    /// it must take the slow path (the guest marks matching TLB write entries `TLB_NOTDIRTY`)
    /// and report to the engine's code map, which invalidates the page's translations.
    fn code_page_added(&mut self, phys_page: u64);

    /// Called when the engine starts running this guest: if pages became code since this vCPU
    /// last looked (`CodeMap::generation`) without `code_page_added` reaching it — another
    /// vCPU sharing the engine translated them — its TLB write entries may let stores into
    /// them skip the slow path; the guest must drop or mark them. Single-vCPU guests can
    /// ignore it.
    fn sync_code_pages(&mut self) {}

    /// A block ended with `Yield` (it may have enabled an interrupt or changed translation
    /// state): whether the run loop must see the vCPU now — an interrupt is deliverable, or
    /// anything else the run loop does at a yield would change what the guest sees. When not,
    /// the engine goes on to the next block itself (with a fresh lookup). The default keeps
    /// every yield.
    fn yield_needs_run_loop(&mut self) -> bool {
        true
    }
}
