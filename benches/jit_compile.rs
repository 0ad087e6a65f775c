//! Tier-1 compile cost against tier-0 and tier-1 run cost, per block (DESIGN.md §2).
//!
//! Blocks are shaped like lifted RISC-V code: per guest instruction two register reads, an ALU
//! op and a register write, every third instruction a load or store through the softmmu, and a
//! conditional branch with two `Goto` exits at the end. They are optimized as the engine does.
//!
//! Run: `cargo bench --bench jit_compile` (prints medians of many runs).

use std::time::Instant;

use emu_jit::backend::{CodeArena, Compiler};
use emu_jit::interp::InterpBlock;
use emu_jit::ir::{BinOp, Builder, Cond, IrBlock, MemOp, Type};
use emu_jit::testing::{reg_offset, TestCpu, RAM_BASE};

fn lifted_block(insns: u32) -> IrBlock {
    let start = 0x8000_0000u64;
    let mut b = Builder::new(start);
    let ops = [BinOp::Add, BinOp::Xor, BinOp::Sub, BinOp::Or, BinOp::Shl];
    for i in 0..insns {
        let pc = start + 4 * u64::from(i);
        b.insn_start(pc, 0x0033);
        let rs1 = b.load_global(Type::I64, reg_offset(1 + i % 7));
        match i % 3 {
            0 => {
                // ld rd, 8(rs1) with rs1 masked into RAM.
                let m = b.iconst(Type::I64, 0xff8);
                let off = b.binary(BinOp::And, Type::I64, rs1, m);
                let base = b.iconst(Type::I64, RAM_BASE);
                let a = b.add(Type::I64, base, off);
                let v = b.load(Type::I64, MemOp::new(3, false, false), 0, a);
                b.store_global(Type::I64, reg_offset(8 + i % 5), v);
            }
            1 => {
                // sw rs2, 0(x): a store into RAM.
                let rs2 = b.load_global(Type::I64, reg_offset(2 + i % 5));
                let a = b.iconst(Type::I64, RAM_BASE + 0x100 + 8 * u64::from(i));
                b.store(Type::I64, MemOp::new(2, false, false), 0, rs2, a);
            }
            _ => {
                let rs2 = b.load_global(Type::I64, reg_offset(2 + i % 5));
                let r = b.binary(ops[i as usize % ops.len()], Type::I64, rs1, rs2);
                // addw-style sign extension of the low half.
                let lo = b.trunc(Type::I64, Type::I32, r);
                let sx = b.sext(Type::I32, Type::I64, lo);
                b.store_global(Type::I64, reg_offset(10 + i % 9), sx);
            }
        }
    }
    let last = start + 4 * u64::from(insns);
    b.insn_start(last, 0x0063);
    let a = b.load_global(Type::I64, reg_offset(10));
    let z = b.iconst(Type::I64, 0);
    let taken = b.new_label();
    b.br_cond(Cond::Eq, Type::I64, a, z, taken);
    b.goto(last + 4);
    b.label(taken);
    b.goto(start);
    b.set_guest_size(4 * (insns + 1));
    let mut block = b.finish();
    emu_jit::opt::optimize(&mut block);
    block
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut compiler = Compiler::new().expect("cranelift supports this host");
    let mut arena = CodeArena::new(64 << 20).expect("code arena");
    println!("emu jit_compile bench (medians; per block)");
    println!(
        "{:>6} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "insns", "ops", "compile_us", "install_us", "code_bytes", "interp_ns", "native_ns"
    );
    let mut all_compile = Vec::new();
    for insns in [5u32, 10, 30] {
        let block = lifted_block(insns);
        // Compile time: one reused compiler, as the compile thread does.
        let mut times = Vec::new();
        let mut code = compiler.compile(&block, 0, None).expect("compiles");
        for _ in 0..300 {
            let t = Instant::now();
            code = compiler.compile(&block, 0, None).expect("compiles");
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let compile_us = median(times.clone());
        all_compile.extend(times);
        let mut installs = Vec::new();
        let mut entry = std::ptr::null();
        for _ in 0..50 {
            let t = Instant::now();
            entry = arena.install(&code).expect("installs");
            installs.push(t.elapsed().as_secs_f64() * 1e6);
        }

        let mut cpu = TestCpu::new();
        let interp = InterpBlock::new(&block);
        const BATCH: u32 = 2000;
        let mut interp_ns = Vec::new();
        let mut native_ns = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            for _ in 0..BATCH {
                // SAFETY: `cpu` is a live TestCpu only borrowed here; the block's globals are
                // TestCpu registers.
                std::hint::black_box(unsafe { interp.run(cpu.state_ptr()) });
            }
            interp_ns.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH));
            let t = Instant::now();
            for _ in 0..BATCH {
                // SAFETY: `entry` was installed in `arena` and compiled without chain slots;
                // `cpu` as above.
                std::hint::black_box(unsafe { arena.enter(cpu.state_ptr(), entry) });
            }
            native_ns.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH));
        }
        println!(
            "{:>6} {:>6} {:>12.1} {:>12.1} {:>12} {:>10.1} {:>10.1}",
            insns,
            block.ops.len(),
            compile_us,
            median(installs),
            code.bytes.len(),
            median(interp_ns),
            median(native_ns)
        );
    }
    println!(
        "MEDIAN CRANELIFT COMPILE TIME PER BLOCK (all sizes): {:.1} us",
        median(all_compile)
    );
}
