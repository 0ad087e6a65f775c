//! (being written)

use crate::riscv::decode::InsnPattern;

pub static SYSTEM: &[InsnPattern] = &[];
