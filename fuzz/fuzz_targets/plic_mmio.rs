//! PLIC (devices/src/plic.rs) under arbitrary register accesses and interrupt-line changes.
//!
//! After every operation, each context's notification line (MEIP for context 2h, SEIP for 2h+1)
//! must be high exactly when some source is pending, enabled for the context and of a priority
//! above its threshold (PLIC spec 1.0.0, "Interrupt Notifications") — computed here from the
//! registers as the guest reads them. A claim must return 0 or such a source.
#![no_main]

use emu_devices::bus::BusDevice;
use emu_devices::irq::IrqSink;
use emu_devices::plic::{
    Plic, MIP_MEIP, MIP_SEIP, PLIC_CONTEXT_BASE, PLIC_CONTEXT_CLAIM, PLIC_CONTEXT_STRIDE,
    PLIC_ENABLE_BASE, PLIC_ENABLE_STRIDE, PLIC_NUM_SOURCES, PLIC_PENDING_BASE,
};
use emu_fuzz::{apply_mmio, next_mmio_op_in, Input, MmioOp, MAX_MMIO_OPS};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const WORDS: u64 = PLIC_NUM_SOURCES.div_ceil(32) as u64;

fn read32(p: &mut Plic, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    p.read(offset, &mut b);
    u32::from_le_bytes(b)
}

fn bit(words: &[u32], src: u32) -> bool {
    words
        .get((src / 32) as usize)
        .is_some_and(|w| w & (1 << (src % 32)) != 0)
}

/// The sources pending and enabled for context `ctx` whose priority exceeds `floor`
/// (`None`: the context's threshold), with their priorities.
fn eligible_above(p: &mut Plic, ctx: u64, floor: Option<u32>) -> Vec<(u32, u32)> {
    let pending: Vec<u32> = (0..WORDS)
        .map(|w| read32(p, PLIC_PENDING_BASE + 4 * w))
        .collect();
    let enable: Vec<u32> = (0..WORDS)
        .map(|w| read32(p, PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * ctx + 4 * w))
        .collect();
    let floor = floor.unwrap_or_else(|| read32(p, PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * ctx));
    (1..PLIC_NUM_SOURCES)
        .filter(|&s| bit(&pending, s) && bit(&enable, s))
        .map(|s| (s, read32(p, 4 * u64::from(s))))
        .filter(|&(_, prio)| prio > floor)
        .collect()
}

/// The sources that may notify context `ctx`: pending, enabled, priority above threshold.
fn eligible(p: &mut Plic, ctx: u64) -> Vec<(u32, u32)> {
    eligible_above(p, ctx, None)
}

fn check(p: &mut Plic, lines: &[Arc<AtomicU64>]) {
    for (h, l) in lines.iter().enumerate() {
        let v = l.load(Ordering::Acquire);
        for (ctx, mip) in [(2 * h as u64, MIP_MEIP), (2 * h as u64 + 1, MIP_SEIP)] {
            let want = !eligible(p, ctx).is_empty();
            assert_eq!(v & mip != 0, want, "context {ctx} notification line");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let harts = usize::from(input.u8() % 2) + 1;
    let lines: Vec<Arc<AtomicU64>> = (0..harts).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut plic = Plic::new(lines.clone());
    let contexts = 2 * harts as u64;
    // Priorities, pending, enables (of the existing contexts and one past them), and the
    // threshold/claim pairs.
    let regions = [
        (0, 4 * u64::from(PLIC_NUM_SOURCES) + 8),
        (PLIC_PENDING_BASE, 4 * WORDS + 8),
        (PLIC_ENABLE_BASE, PLIC_ENABLE_STRIDE * (contexts + 1)),
        (PLIC_CONTEXT_BASE, PLIC_CONTEXT_STRIDE * contexts + 8),
        (PLIC_CONTEXT_BASE, 8),
        (PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE, 8),
    ];
    for _ in 0..MAX_MMIO_OPS {
        if input.is_empty() {
            break;
        }
        match next_mmio_op_in(&mut input, &regions) {
            MmioOp::Other(sel) => {
                // A device line changes level (source 0 and sources past the last are refused).
                let src = u32::from(sel & 0x7f);
                plic.set_level(src, sel & 0x80 != 0);
            }
            MmioOp::Read { offset, len: 4 }
                if offset >= PLIC_CONTEXT_BASE
                    && (offset - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE == PLIC_CONTEXT_CLAIM
                    && (offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE < contexts =>
            {
                // A claim is not affected by the threshold (spec, "Interrupt Claim Process"):
                // it returns the highest-priority pending enabled source with a non-zero
                // priority, ties to the lowest id, or 0.
                let ctx = (offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE;
                let candidates = eligible_above(&mut plic, ctx, Some(0));
                let best = candidates
                    .iter()
                    .max_by_key(|&&(src, prio)| (prio, std::cmp::Reverse(src)))
                    .map_or(0, |&(src, _)| src);
                let claimed = read32(&mut plic, offset);
                assert_eq!(
                    claimed, best,
                    "context {ctx} claim, candidates (source, priority) {candidates:?}"
                );
            }
            op => {
                let _ = apply_mmio(&mut plic, op);
            }
        }
        check(&mut plic, &lines);
    }
});
