//! Micro benchmarks (divan) of the engine's unit costs: decode + lift per guest instruction, the
//! optimizer, the interpreter (tier 0) and compiled code (tier 1) per guest instruction,
//! Cranelift compile time per block, translation-block lookup, the softmmu TLB hit and miss,
//! and MMIO dispatch.
//!
//! Every benchmark goes through the public API the engine itself uses, on a RISC-V hart over a
//! bus laid out like the `virt` machine's (RAM at 0x8000_0000, CLINT, PLIC, UART0), without a
//! machine or run loop. The guest code is a realistic RV64GC mix (loads and stores, ALU, M,
//! compressed, a conditional branch at the end); the setup checks that it lifts to the expected
//! number of instructions and runs on both tiers without faults, so a broken fixture fails
//! loudly instead of timing a one-instruction trap block.
//!
//! Run: `cargo bench --bench micro` (all), `cargo bench --bench micro -- tlb` (a filter).
//! Results and what they mean for the design: docs/micro-benchmarks.md.
//!
//! Benchmarks shorter than a few microseconds fix their `sample_size` (iterations per timed
//! sample, about 10-50 µs each): left to tune itself, divan sometimes settled on one iteration
//! per sample after a cold first run, and then reported its 20 ns timer's granularity (a
//! 14 ns tier-1 block showed as 39.7 ns).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use emu_devices::clock::VirtualTime;
use emu_devices::plic::Plic;
use emu_devices::uart::Ns16550a;
use emu_devices::{Bus, Clint, GuestRam, IrqLine};
use emu_firmware::fdt::virt::{CLINT, DRAM_BASE, PLIC, UART0};
use emu_frontends::riscv::cpu::{Privilege, RiscvCpu};
use emu_frontends::riscv::csr::{SATP_MODE_SHIFT, SATP_MODE_SV39};
use emu_frontends::riscv::mmu::{MMU_IDX_M, MMU_IDX_S, PTE_A, PTE_D, PTE_R, PTE_V, PTE_W};
use emu_frontends::riscv::translate::translate_block;
use emu_jit::backend::{CodeArena, Compiler};
use emu_jit::codemap::CodeMap;
use emu_jit::env::{PAGE_SIZE, TLB_ENTRIES};
use emu_jit::exec::BlockExit;
use emu_jit::guest::{BlockKey, Guest};
use emu_jit::interp::InterpBlock;
use emu_jit::ir::{Builder, IrBlock, MemOp, Op};
use emu_jit::tb::TbCache;

fn main() {
    divan::main();
}

// ---------------------------------------------------------------------------------------------
// Fixture: a hart over a virt-like bus, and generated RV64GC code.
// ---------------------------------------------------------------------------------------------

/// 128 MiB: the TLB-miss benchmark needs two pages `TLB_ENTRIES` pages (64 MiB) apart, and the
/// mapping is committed lazily, so the size costs nothing.
const RAM_SIZE: u64 = 128 << 20;
/// Code of the block with `n` instructions starts at `CODE_BASE + n * PAGE_SIZE` (one page
/// each: a block never crosses its first page, translate.rs).
const CODE_BASE: u64 = DRAM_BASE;
/// Data the generated code loads from and stores to: `sp` and `s0` point here.
const DATA: u64 = DRAM_BASE + 0x40_0000;
/// Sv39 page tables for the TLB-miss benchmark (root, then two leaf-level tables).
const PT_ROOT: u64 = DRAM_BASE + 0x50_0000;
/// Guest virtual address mapped by the Sv39 tables (VPN[2] = 1).
const SV39_VA: u64 = 0x4000_0000;
/// CLINT `mtime` (SiFive CLINT layout, clint.rs); its low word is a 4-byte MMIO load.
const CLINT_MTIME: u64 = 0xbff8;
/// NS16550A line status register (byte-wide, as Linux's 8250 driver reads it on `virt`).
const UART_LSR: u64 = 5;

/// 8-byte aligned load or store, as a RISC-V `ld`/`sd` is lifted.
const MEM_D: MemOp = MemOp::new(3, false, false);
/// 4-byte load, as `lw` of a 32-bit device register.
const MEM_W: MemOp = MemOp::new(2, true, false);

const X_SP: u32 = 2;
const X_T0: u32 = 5;
const X_T1: u32 = 6;
const X_T2: u32 = 7;
const X_S0: u32 = 8;
const X_A0: u32 = 10;
const X_A1: u32 = 11;
const X_A2: u32 = 12;
const X_A3: u32 = 13;
const X_A4: u32 = 14;
const X_A5: u32 = 15;
const X_A6: u32 = 16;
const X_A7: u32 = 17;

/// RV64 base formats (Unprivileged ISA §2.3, §2.5): the fields of one 32-bit instruction.
fn r_type(opcode: u32, funct3: u32, funct7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    funct7 << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}

fn i_type(opcode: u32, funct3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32) & 0xfff) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode
}

fn s_type(funct3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32;
    ((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | (imm & 0x1f) << 7 | 0x23
}

fn b_type(funct3: u32, rs1: u32, rs2: u32, offset: i32) -> u32 {
    let o = offset as u32;
    ((o >> 12) & 1) << 31
        | ((o >> 5) & 0x3f) << 25
        | rs2 << 20
        | rs1 << 15
        | funct3 << 12
        | ((o >> 1) & 0xf) << 8
        | ((o >> 11) & 1) << 7
        | 0x63
}

/// One instruction of the generated code: a 32-bit word or a 16-bit compressed one.
#[derive(Clone, Copy)]
enum Insn {
    Full(u32),
    Compressed(u16),
}

/// A 16-instruction pattern shaped like compiled C (kernel code): 6 of 16 access memory, 5 of
/// 16 are compressed, with dependent ALU ops, a 32-bit `addw` and a `mul`. The base registers
/// `sp` and `s0` are never written, so every run of a block touches the same RAM lines.
fn pattern() -> [Insn; 16] {
    use Insn::{Compressed as C, Full as F};
    [
        F(i_type(0x03, 3, X_A0, X_S0, 0)),          // ld    a0, 0(s0)
        C(0x0505),                                  // c.addi a0, 1
        F(i_type(0x03, 3, X_A1, X_SP, 8)),          // ld    a1, 8(sp)
        F(r_type(0x33, 0, 0, X_A2, X_A0, X_A1)),    // add   a2, a0, a1
        C(0x86b2),                                  // c.mv  a3, a2
        F(i_type(0x13, 4, X_A4, X_A3, 0x55)),       // xori  a4, a3, 0x55
        F(s_type(3, X_S0, X_A4, 16)),               // sd    a4, 16(s0)
        C(0x6c1c),                                  // c.ld  a5, 24(s0)
        F(i_type(0x13, 1, X_A6, X_A5, 3)),          // slli  a6, a5, 3
        F(r_type(0x33, 0, 0x20, X_A7, X_A6, X_A0)), // sub   a7, a6, a0
        C(0xf010),                                  // c.sd  a2, 32(s0)
        F(i_type(0x03, 2, X_T0, X_SP, 40)),         // lw    t0, 40(sp)
        F(r_type(0x3b, 0, 0, X_T1, X_T0, X_A1)),    // addw  t1, t0, a1
        F(r_type(0x33, 0, 1, X_T2, X_T1, X_A4)),    // mul   t2, t1, a4
        F(s_type(2, X_SP, X_T2, 48)),               // sw    t2, 48(sp)
        C(0x9532),                                  // c.add a0, a2
    ]
}

/// Bytes of a block of `n` instructions at `start`: `n - 1` from [`pattern`], then
/// `bne a0, zero, start` (a loop back-edge: both exits are `Goto`s).
fn block_code(start: u64, n: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    for insn in pattern().iter().cycle().take(n as usize - 1) {
        match *insn {
            Insn::Full(w) => bytes.extend_from_slice(&w.to_le_bytes()),
            Insn::Compressed(h) => bytes.extend_from_slice(&h.to_le_bytes()),
        }
    }
    let back = -(bytes.len() as i32);
    bytes.extend_from_slice(&b_type(1, X_A0, 0, back).to_le_bytes());
    assert!((bytes.len() as u64) < PAGE_SIZE - (start % PAGE_SIZE));
    bytes
}

/// The physical address map of the `virt` machine up to UART0, in the order virt.rs maps it
/// (the bus scans device windows in order, so CLINT and UART lookups cost what they do there).
fn virt_bus() -> Arc<Bus> {
    let mut bus = Bus::new();
    bus.add_ram(Arc::new(
        GuestRam::new(DRAM_BASE, RAM_SIZE).expect("guest RAM"),
    ));
    let lines: Vec<Arc<AtomicU64>> = vec![Arc::new(AtomicU64::new(0))];
    let clint = Clint::new(Arc::new(VirtualTime::new()), lines.clone());
    bus.add_device(CLINT.0, CLINT.1, Arc::new(parking_lot::Mutex::new(clint)))
        .expect("CLINT window");
    bus.add_device(
        PLIC.0,
        PLIC.1,
        Arc::new(parking_lot::Mutex::new(Plic::new(lines))),
    )
    .expect("PLIC window");
    let uart = Ns16550a::new(IrqLine::disconnected(), Box::new(std::io::sink()));
    bus.add_device(UART0.0, UART0.1, Arc::new(parking_lot::Mutex::new(uart)))
        .expect("UART0 window");
    Arc::new(bus)
}

/// A reset hart (M-mode, bare translation) with the code for blocks of `sizes` instructions in
/// RAM and `sp`/`s0` pointing at [`DATA`].
fn hart(sizes: &[u32]) -> Box<RiscvCpu> {
    let bus = virt_bus();
    for &n in sizes {
        let start = code_start(n);
        let code = block_code(start, n);
        let ok = bus
            .ram_at(start, code.len() as u64)
            .is_some_and(|r| r.write(start, &code));
        assert!(ok, "code fits in RAM");
    }
    let mut cpu = RiscvCpu::new(
        0,
        bus,
        Arc::new(CodeMap::new()),
        Arc::new(VirtualTime::new()),
    );
    cpu.x[X_SP as usize] = DATA;
    cpu.x[X_S0 as usize] = DATA + 0x800;
    cpu
}

fn code_start(n: u32) -> u64 {
    CODE_BASE + u64::from(n) * PAGE_SIZE
}

/// The key the engine would look up for the block of `n` instructions.
fn key_of(cpu: &mut RiscvCpu, n: u32) -> BlockKey {
    cpu.common.pc = code_start(n);
    cpu.block_key().expect("code page is fetchable")
}

/// Lift the block of `n` instructions, unoptimized; checks it holds all `n`.
fn lift(cpu: &mut RiscvCpu, n: u32) -> IrBlock {
    let key = key_of(cpu, n);
    let mut b = Builder::new(key.pc);
    translate_block(cpu, &key, n, &mut b);
    let block = b.finish();
    let insns = block
        .ops
        .iter()
        .filter(|op| matches!(op, Op::InsnStart { .. }))
        .count();
    assert_eq!(
        insns, n as usize,
        "fixture lifted to {insns} instructions\n{block}"
    );
    block
}

/// Lift and optimize, as the engine's `translate` does.
fn lift_optimized(cpu: &mut RiscvCpu, n: u32) -> IrBlock {
    let mut block = lift(cpu, n);
    emu_jit::opt::optimize(&mut block);
    block
}

/// A block must leave through one of its two `Goto` exits with no fault pending: anything else
/// means the fixture is not measuring the code it claims to.
fn check_exit(cpu: &RiscvCpu, exit: BlockExit) {
    assert!(
        matches!(exit, BlockExit::Goto { .. }) && cpu.common.exception_pending == 0,
        "fixture block exited with {exit:?} (cause {})",
        cpu.pending_cause
    );
}

/// The block size `decode_lift`, `opt` and `interp` use: a few dozen instructions, about what
/// a kernel basic block plus its fall-through reaches with the engine's 64-instruction limit.
const BLOCK: u32 = 32;

// ---------------------------------------------------------------------------------------------

mod decode_lift {
    use super::*;

    /// One iteration: fetch, decode and lift the 32-instruction block into IR through
    /// `translate_block`, into a reused `Builder` (as the engine's `translate` does, verify
    /// and optimizer excluded). Counter: guest instructions.
    #[divan::bench(sample_size = 64)]
    fn lift(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let key = key_of(&mut cpu, BLOCK);
        super::lift(&mut cpu, BLOCK);
        let mut b = Builder::new(key.pc);
        bencher.counter(ItemsCount::new(BLOCK)).bench_local(|| {
            b.reset(key.pc);
            translate_block(&mut cpu, black_box(&key), BLOCK, &mut b);
            b.take()
        });
    }

    /// One iteration: `emu_jit::opt::optimize` (every pass) on a fresh copy of the lifted
    /// 32-instruction block (the copy is made outside the timing). Counter: guest instructions.
    #[divan::bench(sample_size = 64)]
    fn optimize(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let raw = super::lift(&mut cpu, BLOCK);
        bencher
            .counter(ItemsCount::new(BLOCK))
            .with_inputs(|| raw.clone())
            .bench_local_values(|mut block| {
                emu_jit::opt::optimize(black_box(&mut block));
                block
            });
    }
    /// One iteration: `InterpBlock::new` (the interpreter's pre-decode) of the optimized
    /// 32-instruction block, as the TB cache does on insert. Counter: guest instructions.
    #[divan::bench(sample_size = 64)]
    fn interp_new(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let block = lift_optimized(&mut cpu, BLOCK);
        bencher
            .counter(ItemsCount::new(BLOCK))
            .bench_local(|| InterpBlock::new(black_box(&block)));
    }

    /// One iteration: the whole translation of the 32-instruction block as the engine does
    /// it per new block: lift into a reused `Builder`, optimize it there, take it, pre-decode.
    /// Counter: guest instructions.
    #[divan::bench(sample_size = 32)]
    fn translate(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let key = key_of(&mut cpu, BLOCK);
        super::lift(&mut cpu, BLOCK);
        let mut b = Builder::new(key.pc);
        bencher.counter(ItemsCount::new(BLOCK)).bench_local(|| {
            b.reset(key.pc);
            translate_block(&mut cpu, black_box(&key), BLOCK, &mut b);
            emu_jit::opt::optimize(b.block_mut());
            let block = b.take();
            let ib = InterpBlock::new(&block);
            (block, ib)
        });
    }
}

mod interp {
    use super::*;

    /// One iteration: the IR interpreter runs the optimized 32-instruction block once
    /// (`InterpBlock::run`; the `InterpBlock` is prepared once, as the TB cache keeps it),
    /// loads and stores hitting the TLB. Counter: guest instructions.
    #[divan::bench(sample_size = 256)]
    fn tier0(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let block = lift_optimized(&mut cpu, BLOCK);
        let ib = InterpBlock::new(&block);
        // SAFETY: `cpu` is a live RiscvCpu borrowed only here; the block was lifted for it.
        let exit = unsafe { ib.run(cpu.state_ptr()) };
        check_exit(&cpu, exit);
        bencher.counter(ItemsCount::new(BLOCK)).bench_local(|| {
            // SAFETY: as above.
            unsafe { black_box(&ib).run(cpu.state_ptr()) }
        });
    }

    /// One iteration: as `tier0`, on a 64-instruction block (the engine's block limit), whose
    /// register file is larger than the interpreter's fixed stack sizes. Counter: guest
    /// instructions.
    #[divan::bench(sample_size = 256)]
    fn tier0_64(bencher: Bencher) {
        const LONG: u32 = 64;
        let mut cpu = hart(&[LONG]);
        let block = lift_optimized(&mut cpu, LONG);
        let ib = InterpBlock::new(&block);
        // SAFETY: `cpu` is a live RiscvCpu borrowed only here; the block was lifted for it.
        let exit = unsafe { ib.run(cpu.state_ptr()) };
        check_exit(&cpu, exit);
        bencher.counter(ItemsCount::new(LONG)).bench_local(|| {
            // SAFETY: as above.
            unsafe { black_box(&ib).run(cpu.state_ptr()) }
        });
    }

    /// Pre-decoded copies of the block in `tier0_cold`: ~2 KiB each, 16 MiB in all, past the
    /// L2 cache, as a boot's cold code is (47 k blocks, each run ~100 times before tier-up).
    const COLD_COPIES: usize = 8192;

    /// One iteration: the interpreter runs one of [`COLD_COPIES`] separately decoded copies of
    /// the optimized 32-instruction block, in a scattered order, so its ops come from L3 or
    /// memory rather than L1 (the guest data stays hot). Counter: guest instructions.
    #[divan::bench(sample_size = 64)]
    fn tier0_cold(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let block = lift_optimized(&mut cpu, BLOCK);
        let copies: Vec<InterpBlock> = (0..COLD_COPIES).map(|_| InterpBlock::new(&block)).collect();
        // SAFETY: `cpu` is a live RiscvCpu borrowed only here; the block was lifted for it.
        let exit = unsafe { copies[0].run(cpu.state_ptr()) };
        check_exit(&cpu, exit);
        // An odd stride over a power-of-two count visits every copy, scattered.
        let mut i = 0usize;
        bencher.counter(ItemsCount::new(BLOCK)).bench_local(|| {
            i = (i + 2897) % COLD_COPIES;
            // SAFETY: as above.
            unsafe { black_box(&copies[i]).run(cpu.state_ptr()) }
        });
    }

    /// One iteration: the same block compiled by Cranelift (once, with `Compiler` +
    /// `CodeArena`, no chaining) runs once, entered through the arena's trampoline as the
    /// engine enters a block from its run loop. Counter: guest instructions.
    #[divan::bench(sample_size = 4096)]
    fn tier1(bencher: Bencher) {
        let mut cpu = hart(&[BLOCK]);
        let block = lift_optimized(&mut cpu, BLOCK);
        let mut compiler = Compiler::new().expect("cranelift supports this host");
        let mut arena = CodeArena::new(1 << 20).expect("code arena");
        let code = compiler.compile(&block, 0, None).expect("block compiles");
        let entry = arena.install(&code).expect("code installs");
        // SAFETY: `entry` comes from this arena, compiled without chain slots; `cpu` is a live
        // RiscvCpu borrowed only here, whose helpers and slow path the block was lifted for.
        let (exit, _) = unsafe { arena.enter(cpu.state_ptr(), entry) };
        check_exit(&cpu, exit);
        // The compiled block must do all the work the interpreted one does (same registers and
        // retired count from the same start), or the two rows are not comparable.
        let mut reference = hart(&[BLOCK]);
        // SAFETY: `reference` is a live RiscvCpu borrowed only here; the block's globals and
        // helpers are a RiscvCpu's.
        let exit = unsafe { InterpBlock::new(&block).run(reference.state_ptr()) };
        check_exit(&reference, exit);
        assert_eq!(reference.x, cpu.x, "tier 1 and tier 0 disagree");
        assert_eq!(cpu.common.insn_count, u64::from(BLOCK));
        bencher.counter(ItemsCount::new(BLOCK)).bench_local(|| {
            // SAFETY: as above.
            unsafe { arena.enter(cpu.state_ptr(), black_box(entry)) }
        });
    }
}

mod cranelift_compile {
    use super::*;

    /// Compile one optimized block of `n` instructions with chain slots for its two `Goto`
    /// exits, as the engine's compile thread does (one reused `Compiler`; installing the code
    /// is not included).
    fn compile(bencher: Bencher, n: u32) {
        let mut cpu = hart(&[n]);
        let key = key_of(&mut cpu, n);
        let block = lift_optimized(&mut cpu, n);
        let mut cache = TbCache::new();
        let id = cache.insert(key, &block, true);
        let slots = cache.get(id).expect("just inserted").chain_slots();
        let mut compiler = Compiler::new().expect("cranelift supports this host");
        bencher.counter(ItemsCount::new(n)).bench_local(|| {
            compiler
                .compile(black_box(&block), id.0, Some(slots))
                .expect("block compiles")
        });
    }

    /// One iteration: Cranelift compiles one block of 8, 32 or 64 guest instructions (64 is
    /// the engine's `MAX_BLOCK_INSNS`). Counter: guest instructions.
    #[divan::bench(args = [8, 32, 64])]
    fn block(bencher: Bencher, n: u32) {
        compile(bencher, n);
    }

    /// One iteration: Cranelift compiles one 256-instruction straight-line block, the size a
    /// compiled region (hot trace or superblock, DESIGN.md §2) would reach. The engine does
    /// not build regions yet (its unit is the block, at most `MAX_BLOCK_INSNS` = 64), so this
    /// is the compile cost such a region would have. Counter: guest instructions.
    #[divan::bench]
    fn region_256(bencher: Bencher) {
        compile(bencher, 256);
    }
}

mod block_lookup {
    use super::*;

    /// Blocks in the cache: about what a Linux boot to a shell translates.
    const BLOCKS: u32 = 50_000;
    /// Blocks of the hot set: a loop-heavy phase dispatches among a few hundred.
    const HOT: usize = 256;
    /// Visits the keys in a scattered order (coprime with BLOCKS and HOT), so consecutive
    /// lookups touch unrelated hash buckets as dispatches across a kernel do.
    const STRIDE: usize = 7_919;

    /// A cache of `BLOCKS` small blocks at kernel-like addresses; returns it and their keys.
    fn filled_cache() -> (TbCache, Vec<BlockKey>) {
        let mut cache = TbCache::new();
        let mut keys = Vec::new();
        for i in 0..BLOCKS {
            // About 9 instructions per block: kernel basic blocks are short.
            let offset = u64::from(i) * 36;
            let key = BlockKey {
                pc: 0xffff_ffff_8000_0000 + offset,
                phys_pc: DRAM_BASE + 0x20_0000 + offset,
                flags: 1,
            };
            let mut b = Builder::new(key.pc);
            b.insn_start(key.pc, 0x0001);
            b.goto(key.pc + 4);
            b.set_guest_size(4);
            cache.insert(key, &b.finish(), true);
            keys.push(key);
        }
        (cache, keys)
    }

    /// `HOT` distinct keys picked pseudo-randomly (xorshift, fixed seed) over the whole cache.
    /// Not a regular stride: strided pcs collide in the direct-mapped front far more than real
    /// hot code does (a stride of 195 blocks put 256 keys in 107 front entries).
    fn hot(keys: &[BlockKey]) -> Vec<BlockKey> {
        let mut taken = vec![false; keys.len()];
        let mut hot = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while hot.len() < HOT.min(keys.len()) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let pos = (x % keys.len() as u64) as usize;
            if !taken[pos] {
                taken[pos] = true;
                hot.push(keys[pos]);
            }
        }
        hot
    }

    /// Time one lookup per iteration of `keys[i]`, `i` stepping by `STRIDE`; `fast`: through
    /// `TbCache::lookup_fast` (the engine's dispatch path) instead of `TbCache::lookup`.
    ///
    /// On a hit the next key's position is taken from the block id just found, so lookups form
    /// a dependency chain as in the dispatch loop (the next pc comes out of the block just
    /// run) and the host cannot overlap their cache misses. Batches of 1024 lookups per
    /// sample keep divan from timing single cold lookups plus its own bookkeeping.
    fn lookups(bencher: Bencher, mut cache: TbCache, keys: Vec<BlockKey>, fast: bool, hit: bool) {
        assert!(keys.iter().all(|k| cache.lookup(k).is_some() == hit));
        let mut next = vec![0usize; cache.len()];
        for (pos, k) in keys.iter().enumerate() {
            if let Some(id) = cache.lookup(k) {
                next[id.0 as usize] = (pos + STRIDE) % keys.len();
            }
        }
        let mut i = 0usize;
        bencher.bench_local(|| {
            let key = black_box(&keys[i]);
            let id = if fast {
                cache.lookup_fast(key)
            } else {
                cache.lookup(key)
            };
            i = match id {
                Some(id) => next[id.0 as usize],
                None => (i + STRIDE) % keys.len(),
            };
            id
        });
    }

    /// One iteration: `TbCache::lookup` (the hash map) of a key in the 50k-block cache, each
    /// lookup a different block in a scattered order: mostly cold hash buckets, as when
    /// dispatch walks a large code footprint (a boot's first pass over the kernel).
    #[divan::bench(sample_size = 1024)]
    fn hit(bencher: Bencher) {
        let (cache, keys) = filled_cache();
        lookups(bencher, cache, keys, false, true);
    }

    /// One iteration: `TbCache::lookup` of one of 256 hot blocks of the 50k-block cache: a
    /// loop-heavy phase, where their hash buckets stay in the host's caches.
    #[divan::bench(sample_size = 1024)]
    fn hit_hot(bencher: Bencher) {
        let (cache, keys) = filled_cache();
        lookups(bencher, cache, hot(&keys), false, true);
    }

    /// One iteration: `TbCache::lookup_fast` (4096-entry direct-mapped front, then the hash
    /// map, refilling the front) over all 50k blocks in scattered order: the front mostly
    /// misses, so this is the map's cost plus the front's probe and refill.
    #[divan::bench(sample_size = 1024)]
    fn fast_hit(bencher: Bencher) {
        let (cache, keys) = filled_cache();
        lookups(bencher, cache, keys, true, true);
    }

    /// One iteration: `TbCache::lookup_fast` of one of 256 hot blocks: mostly front hits (a
    /// few hot blocks share a front entry and evict each other).
    #[divan::bench(sample_size = 1024)]
    fn fast_hit_hot(bencher: Bencher) {
        let (cache, keys) = filled_cache();
        lookups(bencher, cache, hot(&keys), true, true);
    }

    /// One iteration: `TbCache::lookup` of a key that is not in the 50k-block cache (a pc
    /// inside a cached block, the case of a first jump to a new target).
    #[divan::bench(sample_size = 1024)]
    fn miss(bencher: Bencher) {
        let (cache, keys) = filled_cache();
        let misses = keys
            .iter()
            .map(|k| BlockKey {
                pc: k.pc + 2,
                phys_pc: k.phys_pc + 2,
                flags: k.flags,
            })
            .collect();
        lookups(bencher, cache, misses, false, false);
    }
}

mod tlb {
    use super::*;

    /// Two data addresses whose pages share a TLB entry: the TLB is direct-mapped
    /// (`tlb_index` = page number mod `TLB_ENTRIES`), so alternating between them misses every
    /// time, which is what a working set of more than `TLB_ENTRIES` pages does to it.
    const MISS_STRIDE: u64 = TLB_ENTRIES as u64 * PAGE_SIZE;

    /// One iteration: `CpuCommon::load` of 8 bytes whose TLB entry is filled (the inline fast
    /// path the interpreter and helpers use; generated code inlines the same test).
    #[divan::bench(sample_size = 65536)]
    fn hit(bencher: Bencher) {
        let mut cpu = hart(&[]);
        let addr = DATA + 0x100;
        black_box(cpu.common.load(addr, MEM_D, MMU_IDX_M));
        assert!(cpu
            .common
            .try_load_fast(addr, MEM_D, u32::from(MMU_IDX_M))
            .is_some());
        bencher.bench_local(|| cpu.common.load(black_box(addr), MEM_D, MMU_IDX_M));
    }

    /// One iteration: an 8-byte M-mode (bare, no page walk) load that misses the TLB and goes
    /// through the RISC-V slow path (`mmu::slow_load`: translate, PMP, fill the entry, then
    /// read through it). Alternates between two pages mapped to the same entry.
    #[divan::bench(sample_size = 1024)]
    fn miss_bare(bencher: Bencher) {
        let mut cpu = hart(&[]);
        let addrs = [DATA, DATA + MISS_STRIDE];
        for a in addrs {
            black_box(cpu.common.load(a, MEM_D, MMU_IDX_M));
        }
        assert!(cpu
            .common
            .try_load_fast(addrs[0], MEM_D, u32::from(MMU_IDX_M))
            .is_none());
        assert_eq!(cpu.common.exception_pending, 0);
        let mut i = 0usize;
        bencher.bench_local(|| {
            i ^= 1;
            cpu.common.load(black_box(addrs[i]), MEM_D, MMU_IDX_M)
        });
    }

    /// One iteration: as `miss_bare`, in S-mode under Sv39 with 4 KiB pages, so each miss
    /// also walks three page-table levels (PTEs read from RAM through the bus; A and D are
    /// already set, so the walk writes nothing).
    #[divan::bench(sample_size = 1024)]
    fn miss_sv39(bencher: Bencher) {
        let mut cpu = hart(&[]);
        let ram = cpu.bus.ram_at(DRAM_BASE, RAM_SIZE).expect("RAM").clone();
        let pte = |addr: u64, ppn_addr: u64, flags: u64| {
            assert!(ram.write(addr, &(((ppn_addr >> 12) << 10) | flags).to_le_bytes()));
        };
        // Root[1] -> L1; L1[0] -> L0a, L1[MISS_STRIDE / 2 MiB] -> L0b (`MISS_STRIDE` apart);
        // each L0's entry 0 maps one data page (Privileged ISA §4.4.1, §4.3.2).
        const _: () = assert!(MISS_STRIDE.is_multiple_of(1 << 21) && MISS_STRIDE < 1 << 30);
        let l1 = PT_ROOT + 0x1000;
        let (l0a, l0b) = (PT_ROOT + 0x2000, PT_ROOT + 0x3000);
        pte(PT_ROOT + 8, l1, PTE_V);
        pte(l1, l0a, PTE_V);
        pte(l1 + (MISS_STRIDE >> 21) * 8, l0b, PTE_V);
        let leaf = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;
        pte(l0a, DATA, leaf);
        pte(l0b, DATA + PAGE_SIZE, leaf);
        cpu.csr.satp = SATP_MODE_SV39 << SATP_MODE_SHIFT | (PT_ROOT >> 12);
        cpu.privilege = Privilege::Supervisor as u64;
        let idx = cpu.data_mmu_idx();
        assert_eq!(idx, MMU_IDX_S);
        let addrs = [SV39_VA, SV39_VA + MISS_STRIDE];
        for a in addrs {
            black_box(cpu.common.load(a, MEM_D, idx));
        }
        assert_eq!(cpu.common.exception_pending, 0, "Sv39 fixture faults");
        assert!(cpu
            .common
            .try_load_fast(addrs[0], MEM_D, u32::from(idx))
            .is_none());
        let mut i = 0usize;
        bencher.bench_local(|| {
            i ^= 1;
            cpu.common.load(black_box(addrs[i]), MEM_D, idx)
        });
    }
}

mod mmio {
    use super::*;

    /// One iteration: `Bus::read` of 4 bytes of the CLINT's `mtime` (window lookup, device
    /// lock, register decode, virtual-time read).
    #[divan::bench(sample_size = 1024)]
    fn bus_clint_mtime(bencher: Bencher) {
        let bus = virt_bus();
        bencher.bench_local(|| {
            let mut data = [0u8; 4];
            bus.read(black_box(CLINT.0 + CLINT_MTIME), &mut data)
                .expect("CLINT is mapped");
            data
        });
    }

    /// One iteration: `Bus::read` of the UART's line status register (1 byte: the register
    /// Linux's console driver polls), the third device window the bus scans.
    #[divan::bench(sample_size = 1024)]
    fn bus_uart_lsr(bencher: Bencher) {
        let bus = virt_bus();
        bencher.bench_local(|| {
            let mut data = [0u8; 1];
            bus.read(black_box(UART0.0 + UART_LSR), &mut data)
                .expect("UART0 is mapped");
            data
        });
    }

    /// One iteration: a 4-byte M-mode load of CLINT `mtime` as guest code performs it: the TLB
    /// entry of an MMIO page carries `TLB_MMIO`, so every access takes the RISC-V slow path
    /// (cached translation, publish the hart's time, `Bus::read`).
    #[divan::bench(sample_size = 1024)]
    fn hart_clint_mtime(bencher: Bencher) {
        let mut cpu = hart(&[]);
        let addr = CLINT.0 + CLINT_MTIME;
        black_box(cpu.common.load(addr, MEM_W, MMU_IDX_M));
        assert_eq!(cpu.common.exception_pending, 0);
        bencher.bench_local(|| cpu.common.load(black_box(addr), MEM_W, MMU_IDX_M));
    }
}
