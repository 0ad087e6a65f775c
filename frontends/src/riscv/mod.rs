//! RV64GC with the privileged architecture (M, S, U modes; Sv39/48/57; PMP).

pub mod cpu;
pub mod csr;
pub mod debug;
pub mod decode;
pub mod fp;
pub mod guest;
pub mod lift;
pub mod mmu;
pub mod pmp;
pub mod rvc;
pub mod translate;
pub mod trap;
