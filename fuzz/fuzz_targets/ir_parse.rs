//! The IR text parser (jit/src/ir/parse.rs) on arbitrary text, and the executors on what parses.
//!
//! - parse never panics; a parsed block prints to text that parses back to the same print
//!   (the printer and parser agree);
//! - a block the verifier accepts stays valid after `opt::optimize`, and the interpreter (on
//!   the original and the optimized block) and Cranelift agree on the exit, registers, RAM, pc
//!   and instruction count of the test CPU (DESIGN.md §3; the IR has no backward branches, so
//!   every run ends).
#![no_main]

use emu_jit::backend::{compile_standalone, BackendError};
use emu_jit::exec::BlockExit;
use emu_jit::ir::parse::parse_block;
use emu_jit::ir::verify::verify;
use emu_jit::ir::{IrBlock, Op, Terminal};
use emu_jit::opt::optimize;
use emu_jit::testing::{reg_offset, test_helpers, TestCpu};
use libfuzzer_sys::fuzz_target;

/// Larger texts only slow the fuzzer down; the grammar is line-based.
const MAX_TEXT: usize = 8192;

struct Outcome {
    exit: BlockExit,
    regs: [u64; 32],
    pc: u64,
    insn_count: u64,
    exception_pending: u64,
    ram: Box<[u8]>,
}

fn fresh(seed: u64) -> Box<TestCpu> {
    let mut cpu = TestCpu::new();
    for (i, r) in cpu.regs.iter_mut().enumerate() {
        *r = seed.rotate_left(i as u32).wrapping_mul(i as u64 + 1);
    }
    cpu
}

fn outcome(exit: BlockExit, cpu: &TestCpu) -> Outcome {
    Outcome {
        exit,
        regs: cpu.regs,
        pc: cpu.common.pc,
        insn_count: cpu.common.insn_count,
        exception_pending: cpu.common.exception_pending,
        ram: cpu.ram.clone(),
    }
}

fn interp(block: &IrBlock, seed: u64) -> Outcome {
    let mut cpu = fresh(seed);
    // SAFETY: `cpu` is a live TestCpu borrowed only here; the block was parsed against the
    // test helpers, which take a TestCpu.
    let exit = unsafe { emu_jit::interp::run_block(block, cpu.state_ptr()) };
    outcome(exit, &cpu)
}

fn native(block: &IrBlock, seed: u64) -> Option<Outcome> {
    let code = match compile_standalone(block) {
        Ok(c) => c,
        Err(BackendError::Unsupported(_)) => return None,
        Err(e) => panic!("tier 1 failed on a verified block: {e}\n{block}"),
    };
    let mut cpu = fresh(seed);
    // SAFETY: as in `interp`.
    let exit = unsafe { code.run(cpu.state_ptr()) };
    Some(outcome(exit, &cpu))
}

/// The targets of a block's `Goto` exits, in slot order.
fn goto_targets(block: &IrBlock) -> Vec<u64> {
    block
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Exit(Terminal::Goto { pc }) => Some(*pc),
            _ => None,
        })
        .collect()
}

/// A `Goto` exit names a slot of the block that ran, and the optimizer may drop unreachable
/// `goto`s: compare by target instead (which must also be the pc).
fn exit_key(exit: BlockExit, block: &IrBlock, pc: u64) -> (BlockExit, Option<u64>) {
    match exit {
        BlockExit::Goto { slot } => {
            let target = goto_targets(block).get(slot as usize).copied();
            assert_eq!(target, Some(pc), "goto slot {slot} is not the pc\n{block}");
            (BlockExit::Goto { slot: 0 }, target)
        }
        e => (e, None),
    }
}

fn same(a: &Outcome, ablock: &IrBlock, b: &Outcome, bblock: &IrBlock, what: &str) {
    let block = ablock;
    assert_eq!(
        exit_key(a.exit, ablock, a.pc),
        exit_key(b.exit, bblock, b.pc),
        "{what}: exit\n{block}"
    );
    assert_eq!(
        a.exception_pending, b.exception_pending,
        "{what}: exception\n{block}"
    );
    assert_eq!(a.pc, b.pc, "{what}: pc\n{block}");
    assert_eq!(a.insn_count, b.insn_count, "{what}: insn_count\n{block}");
    assert_eq!(a.regs, b.regs, "{what}: registers\n{block}");
    assert!(a.ram == b.ram, "{what}: RAM\n{block}");
}

/// Whether every global the block reads or writes lies inside the test CPU's registers. The
/// executors' contract is that globals lie inside the guest state, as a frontend's do; text can
/// name any offset (past the state, or over the pointers the state keeps), so blocks that
/// reach outside the registers are parsed and printed but not run.
fn globals_in_registers(block: &IrBlock) -> bool {
    let regs = u64::from(reg_offset(0))..u64::from(reg_offset(0)) + 32 * 8;
    block.ops.iter().all(|op| match *op {
        Op::LoadGlobal { ty, offset, .. } | Op::StoreGlobal { ty, offset, .. } => {
            let start = u64::from(offset);
            regs.contains(&start) && start + u64::from(ty.bytes()) <= regs.end
        }
        _ => true,
    })
}

/// Replace `$rN` and `$rN+K` by the global offset of the test CPU's register N (plus K), as
/// jit/tests/filetests.rs does, so its IR files are seeds as they are.
fn substitute_regs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("$r") {
        out.push_str(&rest[..i]);
        rest = &rest[i + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count().min(4);
        let n: u32 = rest[..digits].parse().unwrap_or(0);
        rest = &rest[digits..];
        let mut extra = 0u32;
        if let Some(r) = rest.strip_prefix('+') {
            let d = r.bytes().take_while(u8::is_ascii_digit).count().min(4);
            extra = r[..d].parse().unwrap_or(0);
            rest = &r[d..];
        }
        out.push_str(&(reg_offset(n) + extra).to_string());
    }
    out.push_str(rest);
    out
}

fuzz_target!(
    init: emu_fuzz::warm_up_tier1(),
    |data: &[u8]| {
    let data = &data[..data.len().min(MAX_TEXT)];
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = substitute_regs(text);
    let helpers = test_helpers();
    let Ok(block) = parse_block(&text, &helpers) else {
        return;
    };
    let printed = block.to_string();
    let again = parse_block(&printed, &helpers)
        .unwrap_or_else(|e| panic!("printed block does not parse: {e}\n{printed}"));
    assert_eq!(printed, again.to_string(), "print/parse round trip");

    if verify(&block).is_err() || !globals_in_registers(&block) {
        return;
    }
    let mut opt = block.clone();
    optimize(&mut opt);
    if let Err(e) = verify(&opt) {
        panic!("optimize broke a valid block: {e:?}\nbefore:\n{block}\nafter:\n{opt}");
    }
    let seed = data.len() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let reference = interp(&block, seed);
    same(&reference, &block, &interp(&opt, seed), &opt, "optimized (interpreter)");
    if let Some(n) = native(&block, seed) {
        same(&reference, &block, &n, &block, "Cranelift");
    }
    if let Some(n) = native(&opt, seed) {
        same(&reference, &block, &n, &opt, "optimized (Cranelift)");
    }
});
