//! emu-firmware: loaders for guest images, device-tree generation and boot protocols
//! (DESIGN.md §1, §8). Imports `emu-devices` only.
//!
//! - [`dtb`]: a user's device tree (`-dtb FILE`) with `/chosen` filled in, as QEMU does.
//! - [`elf`]: bare-metal ELF programs.
//! - [`fdt`]: the device tree of a RISC-V board from a plain-data [`fdt::PlatformDesc`].
//! - [`image`]: RISC-V Linux `Image` kernels, initrds and placement of the device tree.
//! - [`fw_dynamic`]: OpenSBI's `fw_dynamic` boot protocol for `-bios` firmware.
//! - [`sbi`]: emu's built-in SBI (SBI spec v2.0) over a host trait the board implements.

pub mod dtb;
pub mod elf;
pub mod fdt;
pub mod fw_dynamic;
pub mod image;
pub mod sbi;

pub use elf::{load_elf, load_elf_bytes, ElfError, ElfImage};
#[doc(hidden)]
pub mod testing;
