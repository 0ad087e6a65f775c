//! Instruction decoding as data (STYLE.md habit 1, after QEMU's `insn32.decode`): each extension
//! contributes a table of [`InsnPattern`]s, and a 32-bit instruction word is matched against
//! them. Compressed (16-bit) instructions are expanded to their 32-bit equivalents first
//! (`rvc.rs`), so every lifter sees a 32-bit encoding.

use super::lift::LiftFn;

/// One instruction encoding: `insn & mask == bits` selects it.
#[derive(Clone, Copy, Debug)]
pub struct InsnPattern {
    /// The mnemonic, as in the manual (e.g. "addi", "fmadd.d").
    pub name: &'static str,
    pub mask: u32,
    pub bits: u32,
    pub lift: LiftFn,
}

impl InsnPattern {
    pub const fn new(name: &'static str, mask: u32, bits: u32, lift: LiftFn) -> Self {
        InsnPattern {
            name,
            mask,
            bits,
            lift,
        }
    }

    pub fn matches(&self, insn: u32) -> bool {
        insn & self.mask == self.bits
    }
}
