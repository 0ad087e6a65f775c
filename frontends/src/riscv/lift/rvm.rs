//! (being written)

use crate::riscv::decode::InsnPattern;

pub static RV64M: &[InsnPattern] = &[];
