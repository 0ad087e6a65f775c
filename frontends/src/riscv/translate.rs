//! (being written)

use emu_jit::guest::BlockKey;
use emu_jit::ir::Builder;

use super::cpu::RiscvCpu;

/// Lift the block at `key` into `b`.
pub fn translate_block(cpu: &mut RiscvCpu, key: &BlockKey, max_insns: u32, b: &mut Builder) {
    let _ = (cpu, key, max_insns, b);
}
