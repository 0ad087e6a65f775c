//! emu-frontends: one module per guest ISA (DESIGN.md §1). Each holds its decode tables, lifters
//! (one file per extension or manual section), architectural state, CSRs as tables, MMU page walk,
//! trap entry and helpers.

pub mod riscv;
