//! The ELF loader (firmware/src/elf.rs) on arbitrary files: never a panic; on success every
//! loaded segment lies inside guest RAM and the entry point is reported as in the header.
#![no_main]

use emu_devices::{Bus, GuestRam};
use emu_firmware::load_elf_bytes;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: u64 = 0x1_0000;

fuzz_target!(|data: &[u8]| {
    let mut bus = Bus::new();
    bus.add_ram(Arc::new(
        GuestRam::new(RAM_BASE, RAM_SIZE).expect("64 KiB RAM"),
    ));
    if let Ok(image) = load_elf_bytes("fuzz.elf", data, &bus) {
        for s in &image.segments {
            assert!(
                bus.ram_at(s.addr, s.size).is_some(),
                "segment {:#x}+{:#x} outside RAM",
                s.addr,
                s.size
            );
        }
        if data.len() >= 32 {
            let mut e = [0u8; 8];
            e.copy_from_slice(&data[24..32]);
            assert_eq!(image.entry, u64::from_le_bytes(e), "e_entry");
        }
    }
});
