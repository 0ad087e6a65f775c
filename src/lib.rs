//! emu: the command line, board assembly and run loop (DESIGN.md §1). The only place where
//! concrete CPUs, devices and firmware meet.

pub mod cli;
pub mod console;
pub mod gdb;
pub mod logger;
pub mod machine;
pub mod runloop;
pub mod trace;
