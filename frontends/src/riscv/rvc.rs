//! (being written)

/// Expand a 16-bit compressed instruction to its 32-bit equivalent; `None` if reserved/illegal.
pub fn expand(insn: u16) -> Option<u32> {
    let _ = insn;
    None
}
