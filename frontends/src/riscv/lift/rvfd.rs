//! "F" and "D" standard extensions (Unprivileged ISA ch. 20 and 21): loads/stores, arithmetic,
//! conversions, moves and compares on the floating-point registers.

use crate::riscv::decode::InsnPattern;

/// RV32F + RV64F instructions.
pub static RV64F: &[InsnPattern] = &[];

/// RV32D + RV64D instructions.
pub static RV64D: &[InsnPattern] = &[];
