//! The device-tree generator (firmware/src/fdt.rs) on arbitrary user-controlled inputs: the
//! number of harts and their ISA strings, the RAM size, `-append` bootargs, the initrd range and
//! the RNG seed.
//!
//! Checks: never a panic; a blob that is built parses (with the independent `fdt` crate) and
//! says what was asked: the bootargs, one `cpu` node per hart, the memory range, the initrd.
#![no_main]

use emu_firmware::fdt::{build_fdt, HartDesc, PlatformDesc};
use emu_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fn text(input: &mut Input, max: u8) -> String {
    let n = usize::from(input.u8() % max.max(1));
    String::from_utf8_lossy(input.bytes(n)).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let sel = input.u8();
    let nharts = usize::from(sel % 8) + 1;
    let harts: Vec<HartDesc> = (0..nharts)
        .map(|i| HartDesc {
            hart_id: if sel & 0x80 != 0 {
                input.u32()
            } else {
                i as u32
            },
            isa_base: if sel & 0x40 != 0 {
                text(&mut input, 16)
            } else {
                "rv64i".into()
            },
            extensions: if sel & 0x20 != 0 {
                (0..input.u8() % 4).map(|_| text(&mut input, 8)).collect()
            } else {
                ["m", "a", "f", "d", "c", "zicsr", "zifencei"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            },
            mmu_type: "riscv,sv57".into(),
        })
        .collect();
    let ram_size = input.u64();
    let mut desc = PlatformDesc::riscv_virt(harts, ram_size);
    let bootargs = text(&mut input, 255);
    if sel & 0x10 != 0 {
        desc.chosen.bootargs = Some(bootargs.clone());
    }
    if sel & 0x08 != 0 {
        desc.chosen.initrd = Some((input.u64(), input.u64()));
    }
    if input.u8() & 1 != 0 {
        let mut seed = [0u8; 32];
        for b in &mut seed {
            *b = input.u8();
        }
        desc.chosen.rng_seed = Some(seed);
    }
    let Ok(blob) = build_fdt(&desc) else {
        return;
    };
    let fdt =
        fdt::Fdt::new(&blob).unwrap_or_else(|e| panic!("generated blob does not parse: {e:?}"));
    if sel & 0x10 != 0 && !bootargs.contains('\0') {
        assert_eq!(fdt.chosen().bootargs(), Some(bootargs.as_str()), "bootargs");
    }
    assert_eq!(fdt.cpus().count(), nharts, "cpu nodes");
    let mem: Vec<_> = fdt.memory().regions().collect();
    assert_eq!(mem.len(), 1, "one memory region");
    assert_eq!(mem[0].starting_address as u64, 0x8000_0000);
    assert_eq!(mem[0].size, Some(ram_size as usize), "memory size");
});
