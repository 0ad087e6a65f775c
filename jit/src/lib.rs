//! emu-jit: the IR, its interpreter (tier 0, the reference semantics) and Cranelift backend
//! (tier 1), optimizer passes, the translation-block cache and the softmmu TLB ABI. Imports
//! nothing of emu's (DESIGN.md §1).

pub mod backend;
pub mod codemap;
pub mod engine;
pub mod env;
pub mod exec;
pub mod guest;
pub mod helper;
pub mod interp;
pub mod ir;
pub mod opt;
pub mod tb;
#[doc(hidden)]
pub mod testing;
