//! RISC-V decode tables and lifters on arbitrary instruction words, without execution (cheap, so
//! it reaches every lifter quickly; `riscv_lifter` runs what it lifts on both executors).
//!
//! For each 32-bit word (and each 16-bit half through the RVC expander): the indexed decoder
//! must return exactly what a linear scan of the tables returns (the first matching pattern);
//! an expanded compressed instruction must be a 32-bit encoding; and lifting the word as a
//! one-instruction block, in each privilege level with FP on and off, must give IR that the
//! verifier accepts.
#![no_main]

use emu_devices::clock::VirtualTime;
use emu_devices::{Bus, GuestRam};
use emu_frontends::riscv::cpu::{Privilege, RiscvCpu};
use emu_frontends::riscv::csr::{MSTATUS_FS, MSTATUS_FS_SHIFT};
use emu_frontends::riscv::decode::{decode, tables};
use emu_frontends::riscv::rvc;
use emu_frontends::riscv::translate::translate_block;
use emu_fuzz::Input;
use emu_jit::codemap::CodeMap;
use emu_jit::guest::Guest;
use emu_jit::ir::{verify, Builder};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
const MAX_WORDS: usize = 64;

fn linear_decode(insn: u32) -> Option<&'static str> {
    if insn & 3 != 3 {
        return None;
    }
    tables()
        .iter()
        .flat_map(|t| t.iter())
        .find(|p| p.matches(insn))
        .map(|p| p.name)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut bus = Bus::new();
    bus.add_ram(Arc::new(
        GuestRam::new(RAM_BASE, 0x1000).expect("4 KiB RAM"),
    ));
    let mut cpu = RiscvCpu::new(
        0,
        Arc::new(bus),
        Arc::new(CodeMap::new()),
        Arc::new(VirtualTime::new()),
    );
    let mut n = 0;
    while !input.is_empty() && n < MAX_WORDS {
        n += 1;
        let word = input.u32();
        let mode = input.u8();

        assert_eq!(
            decode(word).map(|p| p.name),
            linear_decode(word),
            "indexed decoder vs linear scan on {word:#010x}"
        );
        if let Some(p) = decode(word) {
            assert!(p.matches(word));
        }
        for half in [word as u16, (word >> 16) as u16] {
            if half & 3 != 3 {
                if let Some(expanded) = rvc::expand(half) {
                    assert_eq!(expanded & 3, 3, "c.{half:#06x} expands to {expanded:#010x}");
                }
            }
        }

        cpu.privilege = match mode & 3 {
            0 => Privilege::User,
            1 => Privilege::Supervisor,
            _ => Privilege::Machine,
        } as u64;
        let fs = u64::from((mode >> 2) & 3);
        cpu.csr.mstatus = (cpu.csr.mstatus & !MSTATUS_FS) | (fs << MSTATUS_FS_SHIFT);
        cpu.common.exception_pending = 0;
        // Place the word at an offset chosen by the input: near the page end, a 32-bit word
        // straddles it.
        let offset = u64::from(mode >> 4) * 2 + if mode & 0x80 != 0 { 0xfe0 } else { 0 };
        let pc = RAM_BASE + offset.min(0xffc);
        let ok = cpu
            .bus
            .ram_at(pc, 4)
            .is_some_and(|r| r.write(pc, &word.to_le_bytes()));
        assert!(ok, "word fits in RAM");
        cpu.common.pc = pc;
        let Some(key) = cpu.block_key() else {
            continue;
        };
        let mut b = Builder::new(key.pc);
        translate_block(&mut cpu, &key, 1 + u32::from(mode & 1), &mut b);
        let block = b.finish();
        if let Err(e) = verify::verify(&block) {
            panic!("{word:#010x}: lifter produced malformed IR: {e:?}\n{block}");
        }
    }
});
