//! The boot loaders (firmware/src/image.rs) on arbitrary files: `-bios` firmware, the kernel
//! (ELF, RISC-V `Image` or raw) and the initrd, placed as the virt board places them, plus the
//! boot layout for an arbitrary device-tree size.
//!
//! Checks: never a panic; whatever loads lies inside guest RAM; a kernel loaded after firmware
//! does not start below it (ELF kernels are refused if they overlap); the device tree and the
//! fw_dynamic info page fit in RAM; the initrd starts at or after the kernel's end and ends at
//! or below the layout's limit.
//!
//! Input: byte 0 selects what to load, then u16 firmware length, u16 initrd length, u32 device
//! tree size, the firmware and initrd bytes, and the kernel (the rest).
#![no_main]

use emu_devices::{Bus, GuestRam};
use emu_firmware::image::{
    boot_layout, load_firmware_bytes, load_initrd_bytes, load_kernel_bytes, KernelFormat, RamRange,
};
use emu_fuzz::Input;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
/// Big enough for an `Image` at RAM + 2 MiB and an initrd behind it.
const RAM_SIZE: u64 = 8 << 20;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let fw_len = usize::from(input.u16());
    let initrd_len = usize::from(input.u16());
    let fdt_size = u64::from(input.u32());
    let fw = input.bytes(fw_len);
    let initrd = input.bytes(initrd_len);
    let kernel = input.rest();

    let mut bus = Bus::new();
    bus.add_ram(Arc::new(
        GuestRam::new(RAM_BASE, RAM_SIZE).expect("8 MiB RAM"),
    ));
    let ram = RamRange {
        base: RAM_BASE,
        size: RAM_SIZE,
    };

    let mut fw_end = None;
    if sel & 1 != 0 {
        if let Ok(f) = load_firmware_bytes("fuzz-fw", fw, &bus, ram) {
            assert!(ram.contains(f.start, f.end - f.start), "firmware {f:?}");
            fw_end = Some(f.end);
        }
    }
    let Ok(k) = load_kernel_bytes("fuzz-kernel", kernel, &bus, ram, fw_end) else {
        return;
    };
    assert!(k.start <= k.end, "kernel {k:?}");
    // Every loaded kernel is non-empty and in RAM (an ELF with no loadable segment is refused:
    // regress-elf-kernel-without-segments).
    assert!(k.start < k.end, "empty kernel {k:?}");
    assert!(
        ram.contains(k.start, k.end - k.start),
        "kernel {k:?} outside RAM"
    );
    if let Some(e) = fw_end {
        if k.start != k.end {
            assert!(k.start >= e, "kernel {k:?} below the firmware end {e:#x}");
        }
    }
    if k.format != KernelFormat::Elf {
        assert_eq!(k.entry, k.start);
    }
    if sel & 2 == 0 {
        return;
    }
    let Ok(layout) = boot_layout(ram, fdt_size) else {
        return;
    };
    assert!(
        ram.contains(layout.fdt_addr, fdt_size),
        "device tree {:#x}+{fdt_size:#x} outside RAM",
        layout.fdt_addr
    );
    assert!(ram.contains(layout.fw_dynamic_info_addr, 0x1000));
    assert!(layout.initrd_limit <= layout.fdt_addr);
    if let Ok((start, end)) =
        load_initrd_bytes("fuzz-initrd", initrd, &bus, ram, &k, layout.initrd_limit)
    {
        assert!(
            start >= k.end,
            "initrd at {start:#x} inside the kernel {k:?}"
        );
        assert!(
            end <= layout.initrd_limit,
            "initrd ends at {end:#x} past its limit"
        );
        assert_eq!(end - start, initrd.len() as u64);
        assert!(ram.contains(start, end - start));
    }
});
