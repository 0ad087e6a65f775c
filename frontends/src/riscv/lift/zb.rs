//! (being written)

use crate::riscv::decode::InsnPattern;

pub static ZBA: &[InsnPattern] = &[];
pub static ZBB: &[InsnPattern] = &[];
pub static ZBC: &[InsnPattern] = &[];
pub static ZBS: &[InsnPattern] = &[];
