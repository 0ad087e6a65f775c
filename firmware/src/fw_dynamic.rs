//! OpenSBI's `fw_dynamic` boot protocol (OpenSBI include/sbi/fw_dynamic.h,
//! docs/firmware/fw_dynamic.md): the previous booting stage passes, in `a2`, the address of a
//! `struct fw_dynamic_info` telling OpenSBI where the next stage (the kernel) is and in which
//! privilege mode to enter it.
//!
//! QEMU 7.2 writes the structure into its reset-vector ROM, right after the trampoline
//! (hw/riscv/boot.c riscv_rom_copy_firmware_info). emu has no ROM: the board starts the harts
//! directly with the registers the trampoline would have set ([`firmware_entry`]), and the
//! structure lives in RAM in the page just below the device tree
//! ([`crate::image::BootLayout::fw_dynamic_info_addr`]). That page is above the kernel and the
//! initrd; OpenSBI reads the structure during its cold boot before it starts the kernel, and
//! nothing writes there before that.

use crate::image::{FileKind, LoadError, LoadReason};
use emu_devices::Bus;

/// `FW_DYNAMIC_INFO_MAGIC_VALUE` ("OSBI").
pub const FW_DYNAMIC_INFO_MAGIC: u64 = 0x4942_534f;
/// `FW_DYNAMIC_INFO_VERSION_2`: adds `boot_hart`.
pub const FW_DYNAMIC_INFO_VERSION: u64 = 2;
/// `FW_DYNAMIC_INFO_NEXT_MODE_U`.
pub const NEXT_MODE_U: u64 = 0;
/// `FW_DYNAMIC_INFO_NEXT_MODE_S`.
pub const NEXT_MODE_S: u64 = 1;
/// `FW_DYNAMIC_INFO_NEXT_MODE_M`.
pub const NEXT_MODE_M: u64 = 3;
/// Size of the RV64 structure: six `unsigned long` fields.
pub const FW_DYNAMIC_INFO_SIZE: usize = 48;

/// `struct fw_dynamic_info` for RV64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FwDynamicInfo {
    pub magic: u64,
    pub version: u64,
    /// Address of the next booting stage (the kernel's entry).
    pub next_addr: u64,
    /// Privilege mode of the next stage (`NEXT_MODE_*`).
    pub next_mode: u64,
    /// `FW_DYNAMIC_INFO_OPTION_*` bits (none).
    pub options: u64,
    /// The hart that does OpenSBI's cold boot; `u64::MAX` asks for a lottery.
    pub boot_hart: u64,
}

impl FwDynamicInfo {
    /// The structure QEMU 7.2 passes: version 2, kernel in S-mode, no options, `boot_hart`.
    pub fn new(next_addr: u64, boot_hart: u64) -> Self {
        FwDynamicInfo {
            magic: FW_DYNAMIC_INFO_MAGIC,
            version: FW_DYNAMIC_INFO_VERSION,
            next_addr,
            next_mode: NEXT_MODE_S,
            options: 0,
            boot_hart,
        }
    }

    /// Little-endian bytes as OpenSBI reads them.
    pub fn to_bytes(&self) -> [u8; FW_DYNAMIC_INFO_SIZE] {
        let mut out = [0u8; FW_DYNAMIC_INFO_SIZE];
        let fields = [
            self.magic,
            self.version,
            self.next_addr,
            self.next_mode,
            self.options,
            self.boot_hart,
        ];
        for (chunk, v) in out.chunks_exact_mut(8).zip(fields) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Write the structure at `addr` in guest RAM.
    pub fn write(&self, bus: &Bus, addr: u64) -> Result<(), LoadError> {
        let bytes = self.to_bytes();
        match bus.ram_at(addr, bytes.len() as u64) {
            Some(ram) if ram.write(addr, &bytes) => Ok(()),
            _ => Err(LoadError {
                kind: FileKind::Firmware,
                path: "(fw_dynamic_info)".into(),
                reason: LoadReason::Overlap(format!(
                    "no RAM at {addr:#x} for the fw_dynamic_info structure"
                )),
            }),
        }
    }
}

/// Privilege mode a hart starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMode {
    Machine,
    Supervisor,
}

/// The state in which the board starts one hart: pc, privilege mode and `a0`–`a2`
/// (every other register zero, `satp` = 0, interrupts disabled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRegs {
    pub pc: u64,
    pub mode: EntryMode,
    pub a0: u64,
    pub a1: u64,
    pub a2: u64,
}

/// Entering `-bios` firmware, as QEMU 7.2's reset vector does on every hart
/// (hw/riscv/boot.c riscv_setup_rom_reset_vec): M-mode at `firmware_entry` with
/// `a0 = mhartid`, `a1 = fdt_addr`, `a2 = fw_dynamic_info_addr`. All harts start; OpenSBI picks
/// the cold-boot hart from `boot_hart` and parks the others until the kernel starts them (HSM).
pub fn firmware_entry(
    hart_id: u64,
    firmware_entry: u64,
    fdt_addr: u64,
    fw_dynamic_info_addr: u64,
) -> EntryRegs {
    EntryRegs {
        pc: firmware_entry,
        mode: EntryMode::Machine,
        a0: hart_id,
        a1: fdt_addr,
        a2: fw_dynamic_info_addr,
    }
}

/// Entering the kernel directly with emu's built-in SBI (Linux Documentation/arch/riscv/boot.rst:
/// S-mode, MMU off, `a0 = hartid`, `a1 = fdt`). Only the boot hart is started this way; the
/// others stay in the HSM STOPPED state until the kernel calls `sbi_hart_start`
/// ([`crate::sbi`]), which starts them with `a0 = hartid`, `a1 = opaque`.
pub fn kernel_entry(hart_id: u64, kernel_entry: u64, fdt_addr: u64) -> EntryRegs {
    EntryRegs {
        pc: kernel_entry,
        mode: EntryMode::Supervisor,
        a0: hart_id,
        a1: fdt_addr,
        a2: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu_devices::GuestRam;
    use std::sync::Arc;

    #[test]
    fn layout_is_opensbi_struct() {
        let info = FwDynamicInfo::new(0x8020_0000, 0);
        let b = info.to_bytes();
        assert_eq!(&b[0..8], &0x4942_534fu64.to_le_bytes());
        assert_eq!(&b[8..16], &2u64.to_le_bytes());
        assert_eq!(&b[16..24], &0x8020_0000u64.to_le_bytes());
        assert_eq!(&b[24..32], &1u64.to_le_bytes(), "next_mode S");
        assert_eq!(&b[32..40], &0u64.to_le_bytes());
        assert_eq!(&b[40..48], &0u64.to_le_bytes(), "boot_hart 0");
    }

    #[test]
    fn written_into_ram_or_error() {
        let mut bus = Bus::new();
        bus.add_ram(Arc::new(GuestRam::new(0x8000_0000, 0x10_0000).unwrap()));
        let info = FwDynamicInfo::new(0x8020_0000, u64::MAX);
        info.write(&bus, 0x800f_f000).unwrap();
        let ram = bus.ram_at(0x800f_f000, 48).unwrap();
        assert_eq!(ram.read_u64(0x800f_f000), Some(FW_DYNAMIC_INFO_MAGIC));
        assert_eq!(ram.read_u64(0x800f_f028), Some(u64::MAX));
        assert!(info.write(&bus, 0x800f_fff0).is_err(), "straddles the end");
        assert!(info.write(&bus, 0x1000).is_err());
    }

    #[test]
    fn entry_registers() {
        let r = firmware_entry(1, 0x8000_0000, 0x87e0_0000, 0x87df_f000);
        assert_eq!(
            r,
            EntryRegs {
                pc: 0x8000_0000,
                mode: EntryMode::Machine,
                a0: 1,
                a1: 0x87e0_0000,
                a2: 0x87df_f000
            }
        );
        let k = kernel_entry(0, 0x8020_0000, 0x87e0_0000);
        assert_eq!(
            (k.pc, k.mode, k.a0, k.a1),
            (0x8020_0000, EntryMode::Supervisor, 0, 0x87e0_0000)
        );
    }
}
