//! The IR text form: printing.
use super::IrBlock;
use std::fmt;

pub fn write_block(f: &mut fmt::Formatter<'_>, block: &IrBlock) -> fmt::Result {
    write!(f, "{block:?}")
}
