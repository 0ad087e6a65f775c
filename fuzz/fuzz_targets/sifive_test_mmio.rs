//! sifive_test finisher (devices/src/sifive_test.rs) under arbitrary accesses: a request is
//! recorded only by a 32-bit write of FAIL/PASS/RESET at offset 0 (QEMU hw/misc/sifive_test.c),
//! and the exit code of a FAIL is the written code.
#![no_main]

use emu_devices::sifive_test::{
    FinisherRequest, SifiveTest, FINISHER_FAIL, FINISHER_PASS, FINISHER_RESET,
};
use emu_fuzz::{apply_mmio, next_mmio_op, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut dev = SifiveTest::new();
    let handle = dev.handle();
    for _ in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        let op = next_mmio_op(&mut input, 0x1000);
        let _ = handle.take();
        let _ = apply_mmio(&mut dev, op);
        let req = handle.take();
        if let MmioOp::Write {
            offset: 0,
            value,
            len: 4,
        } = op
        {
            let code = (value >> 16) as u16;
            let expect = match value as u16 as u32 {
                FINISHER_FAIL => Some(FinisherRequest::Fail(code)),
                FINISHER_PASS => Some(FinisherRequest::Pass),
                FINISHER_RESET => Some(FinisherRequest::Reset),
                _ => None,
            };
            assert_eq!(req, expect, "write {value:#x}");
        }
    }
});
