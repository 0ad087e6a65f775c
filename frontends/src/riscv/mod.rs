//! RV64GC with the privileged architecture (M, S, U modes; Sv39/48/57; PMP).

pub mod cpu;
pub mod csr;
pub mod decode;
pub mod lift;
