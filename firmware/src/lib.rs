//! emu-firmware: loaders for guest images and, later, boot protocols (DESIGN.md §1, §8).
//! Imports `emu-devices` only.

pub mod elf;

pub use elf::{load_elf, load_elf_bytes, ElfError, ElfImage};
#[doc(hidden)]
pub mod testing;
