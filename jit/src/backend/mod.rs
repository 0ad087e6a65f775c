//! Tier 1: the Cranelift backend (DESIGN.md §2). Lowers a verified, optimized [`IrBlock`] to
//! host code with exactly the interpreter's semantics, and owns the executable memory.
//!
//! All Cranelift-facing code of emu lives in this module (Cranelift's API changes every release).
//!
//! ABI of a compiled block (`tail` calling convention, so chained exits can `return_call`):
//! `fn(state: *mut CpuCommon) -> u64`, the result encoding a [`BlockExit`] plus the id of the
//! block that exited (see [`encode_exit`]). Rust enters compiled code through a small
//! System V trampoline (`fn(state, entry) -> u64`): on x86-64 an assembly one (unwind.rs)
//! that the memory slow path's thunks return through on a guest fault, elsewhere one compiled
//! once per [`CodeArena`].
//!
//! Design choices, after the measurements in DESIGN.md §2: one reused `Context` per compiling
//! thread; `opt_level=none`, backtracking register allocation, the verifier only in debug
//! builds; helpers and the memory slow path called by absolute address (no relocations, so
//! code compiled on a background thread is just bytes); the memory slow path through
//! `preserve_all` thunks; faults checked only on the slow path (on x86-64 by the thunk itself,
//! which leaves compiled code on a fault), with dirty globals stored before the access and
//! the access's pc and instruction count passed as one constant (site.rs).
//!
//! Exits that continue in other compiled code, without returning to Rust: a `Goto` loads its
//! chain slot (filled by the TB cache) and tail-calls it if non-null; an `Indirect` probes the
//! engine's [`JumpCache`] and tail-calls on a hit. Every block checks the budget on entry, so a
//! chain of any length stops at the exact instruction count.

mod arena;
mod lower;
pub mod perfmap;
mod site;
mod stats;
#[cfg(target_arch = "x86_64")]
mod unwind;

/// One block of a region ([`Compiler::compile_region`]): its IR, its id (returned in exit
/// codes) and its chain slots.
pub use lower::RegionMember as RegionBlock;

use std::sync::atomic::{AtomicU64, Ordering};

use cranelift_codegen::ir::{types, AbiParam, Function, InstBuilder, Signature, UserFuncName};
use cranelift_codegen::isa::{CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};

use crate::env::CpuCommon;
use crate::exec::BlockExit;
use crate::ir::{ExitReason, IrBlock};

/// Errors of the backend. `Unsupported` and `CodeFull` are limits (the caller falls back to the
/// interpreter, or flushes the code cache); the others are bugs in emu.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The block uses an operation/type combination tier 1 does not lower yet; it keeps running
    /// on the interpreter.
    #[error("tier 1 cannot lower {0}")]
    Unsupported(String),
    /// The block is malformed (an undefined value or label): a bug in the lifter or a pass.
    #[error("malformed IR block: {0}")]
    Malformed(String),
    /// Cranelift rejected the generated function: a bug in this backend.
    #[error("cranelift failed: {0}")]
    Codegen(String),
    /// The host ISA is not supported by Cranelift.
    #[error("host ISA unavailable to cranelift: {0}")]
    Isa(String),
    /// The executable code arena is full: flush the translation cache and retry.
    #[error("code memory full or unavailable: {0}")]
    CodeFull(String),
}

/// Kinds in the low byte of a compiled block's return value.
const KIND_BUDGET: u64 = 0;
const KIND_GOTO: u64 = 1;
const KIND_INDIRECT: u64 = 2;
const KIND_EXCEPTION: u64 = 3;
const KIND_YIELD: u64 = 4;
const KIND_HALT: u64 = 5;
const KIND_FAULT: u64 = 6;

/// Encode an exit as a compiled block returns it: bits 0..8 kind, 8..32 Goto slot, 32..64 the
/// id of the block (so the engine knows which block of a chain exited).
pub fn encode_exit(exit: BlockExit, block_id: u32) -> u64 {
    let (kind, slot) = match exit {
        BlockExit::Budget => (KIND_BUDGET, 0),
        BlockExit::Goto { slot } => (KIND_GOTO, u64::from(slot)),
        BlockExit::Indirect => (KIND_INDIRECT, 0),
        BlockExit::Exit(ExitReason::Exception) => (KIND_EXCEPTION, 0),
        BlockExit::Exit(ExitReason::Yield) => (KIND_YIELD, 0),
        BlockExit::Exit(ExitReason::Halt) => (KIND_HALT, 0),
        BlockExit::Fault => (KIND_FAULT, 0),
    };
    kind | ((slot & 0xff_ffff) << 8) | (u64::from(block_id) << 32)
}

/// Decode a compiled block's return value into the exit and the id of the exiting block.
pub fn decode_exit(raw: u64) -> (BlockExit, u32) {
    let slot = ((raw >> 8) & 0xff_ffff) as u32;
    let exit = match raw & 0xff {
        KIND_GOTO => BlockExit::Goto { slot },
        KIND_INDIRECT => BlockExit::Indirect,
        KIND_EXCEPTION => BlockExit::Exit(ExitReason::Exception),
        KIND_YIELD => BlockExit::Exit(ExitReason::Yield),
        KIND_HALT => BlockExit::Exit(ExitReason::Halt),
        KIND_FAULT => BlockExit::Fault,
        _ => BlockExit::Budget,
    };
    (exit, (raw >> 32) as u32)
}

/// Where a block's `Goto` exits find their successors: an array of one code pointer per `Goto`
/// exit (0 = not linked), owned by the translation cache at a stable address.
#[derive(Clone, Copy, Debug)]
pub struct ChainSlots {
    pub addr: *const AtomicU64,
    pub len: usize,
}

// SAFETY: the slots are atomics that outlive every compiled block referencing them (the cache
// keeps them until it frees the code memory); the pointer is only baked into generated code.
unsafe impl Send for ChainSlots {}

/// Entries of the jump cache (a power of two).
pub const JUMP_CACHE_ENTRIES: usize = 4096;
/// See [`JumpCache::index`].
pub(crate) const JUMP_CACHE_PAGE_SHIFT: u32 = crate::env::PAGE_BITS;
const JUMP_FILLED_WORDS: usize = JUMP_CACHE_ENTRIES / 64;
const _: () = assert!(JUMP_CACHE_ENTRIES.is_multiple_of(64));

/// One jump-cache entry, as generated code reads it: guest virtual pc, the translation flags
/// of the block (`BlockKey::flags`), the entry point of its compiled block, then the guest
/// physical address the pc was found at (`BlockKey::phys_pc`: what a region's guard on a
/// jump to another page compares, lower.rs). Empty: flags [`EMPTY_FLAGS`], which no
/// translation has (flags are 32 bits), so an empty entry matches no probe whatever its pc:
/// generated code compares pc and flags and needs no test of the code pointer.
#[repr(C)]
#[derive(Debug, Default)]
pub struct JumpEntry {
    pub pc: AtomicU64,
    pub flags: AtomicU64,
    pub code: AtomicU64,
    pub phys: AtomicU64,
}

/// The flags of an empty [`JumpEntry`]: above any `u32`.
const EMPTY_FLAGS: u64 = u64::MAX;

/// Bytes per [`JumpEntry`] (generated code indexes the table with it).
pub(crate) const JUMP_ENTRY_SIZE: usize = 32;
/// Offsets of [`JumpEntry`]'s fields, as generated code reads them.
pub(crate) const JUMP_ENTRY_PC: i32 = std::mem::offset_of!(JumpEntry, pc) as i32;
pub(crate) const JUMP_ENTRY_FLAGS: i32 = std::mem::offset_of!(JumpEntry, flags) as i32;
pub(crate) const JUMP_ENTRY_CODE: i32 = std::mem::offset_of!(JumpEntry, code) as i32;
pub(crate) const JUMP_ENTRY_PHYS: i32 = std::mem::offset_of!(JumpEntry, phys) as i32;
const _: () = assert!(std::mem::size_of::<JumpEntry>() == JUMP_ENTRY_SIZE);

/// What a compiled block's `Indirect` (and cross-page `Goto`) exits probe: the jump cache's
/// address and the translation flags of the block being compiled — its successor runs under
/// the same flags unless the block ends with a `Yield` (a regime change never reaches a
/// jump-cache exit), so a hit must match both pc and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JumpProbe {
    pub addr: usize,
    pub flags: u32,
}

/// The per-vCPU jump cache for `Indirect` exits (DESIGN.md §2): a direct-mapped table from
/// (guest virtual pc, translation flags) to compiled code, probed by generated code, filled by
/// the engine.
///
/// An entry stays valid while the guest's virtual-to-physical mapping does, so the engine
/// drops the entries of a page when the guest flushes that page from its TLB
/// ([`JumpCache::clear_page`], which looks at the filled entries only), and everything after a
/// whole TLB flush, when another vCPU's state runs, on every invalidation and on every flush.
/// Privilege and other translation-mode changes need no clear: the flags are part of the tag.
///
/// (Grouping a page's entries in the index, as QEMU's `tb_jmp_cache_hash_func` does so that
/// a page flush clears one range, was measured and rejected: 7-Zip's hot pages then competed
/// for 32 entries each and 1.5 times as many exits went back to the dispatch loop.)
pub struct JumpCache {
    entries: Box<[JumpEntry]>,
    /// One bit per entry filled since it was last cleared, so clearing costs what was used.
    filled: [u64; JUMP_FILLED_WORDS],
}

impl Default for JumpCache {
    fn default() -> Self {
        Self::new()
    }
}

impl JumpCache {
    pub fn new() -> JumpCache {
        JumpCache {
            entries: (0..JUMP_CACHE_ENTRIES)
                .map(|_| JumpEntry {
                    flags: AtomicU64::new(EMPTY_FLAGS),
                    ..JumpEntry::default()
                })
                .collect(),
            filled: [0; JUMP_FILLED_WORDS],
        }
    }

    /// The table's address, baked into generated code.
    pub fn addr(&self) -> usize {
        self.entries.as_ptr() as usize
    }

    /// The entry for `pc`: low pc bits (instructions are at least 2-byte aligned) mixed with
    /// the page number, so the same offset in different pages (a call and its return, a loop
    /// spanning two pages) lands in different entries. Generated code computes the same.
    pub(crate) fn index(pc: u64) -> usize {
        (((pc >> 1) ^ (pc >> JUMP_CACHE_PAGE_SHIFT)) as usize) & (JUMP_CACHE_ENTRIES - 1)
    }

    /// Map (`pc`, `flags`) to compiled code at `code`, for the block found at physical
    /// address `phys` (under the mapping the entry lives as long as).
    pub fn insert(&mut self, pc: u64, flags: u32, phys: u64, code: usize) {
        let i = Self::index(pc);
        if let Some(e) = self.entries.get(i) {
            // Empty first, so generated code never pairs the new pc with old code.
            e.flags.store(EMPTY_FLAGS, Ordering::Relaxed);
            e.pc.store(pc, Ordering::Relaxed);
            e.code.store(code as u64, Ordering::Relaxed);
            e.phys.store(phys, Ordering::Relaxed);
            e.flags.store(u64::from(flags), Ordering::Release);
            if let Some(w) = self.filled.get_mut(i / 64) {
                *w |= 1 << (i % 64);
            }
        }
    }

    /// The code for (`pc`, `flags`), if cached.
    pub fn get(&self, pc: u64, flags: u32) -> Option<usize> {
        let e = self.entries.get(Self::index(pc))?;
        let hit = e.flags.load(Ordering::Acquire) == u64::from(flags)
            && e.pc.load(Ordering::Relaxed) == pc;
        hit.then(|| e.code.load(Ordering::Relaxed) as usize)
    }

    /// The physical address (`pc`, `flags`) was found at, if cached: what `pc` maps to now.
    pub fn phys(&self, pc: u64, flags: u32) -> Option<u64> {
        let e = self.entries.get(Self::index(pc))?;
        self.get(pc, flags)?;
        Some(e.phys.load(Ordering::Relaxed))
    }

    pub fn clear(&mut self) {
        self.clear_where(|_| true);
    }

    /// Drop every entry whose pc lies in the virtual page of `vaddr`, or in the page before
    /// (its block may reach into this page: a block spans at most two pages).
    pub fn clear_page(&mut self, vaddr: u64) {
        let page = vaddr & crate::env::PAGE_MASK;
        let before = page.wrapping_sub(crate::env::PAGE_SIZE);
        self.clear_where(|pc| {
            let p = pc & crate::env::PAGE_MASK;
            p == page || p == before
        });
    }

    /// Empty the filled entries whose pc satisfies `drop`.
    fn clear_where(&mut self, drop: impl Fn(u64) -> bool) {
        for (w, word) in self.filled.iter_mut().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                let Some(e) = self.entries.get(w * 64 + b as usize) else {
                    continue;
                };
                if drop(e.pc.load(Ordering::Relaxed)) {
                    e.flags.store(EMPTY_FLAGS, Ordering::Relaxed);
                    e.code.store(0, Ordering::Relaxed);
                    *word &= !(1 << b);
                }
            }
        }
    }

    /// Whether nothing was inserted since the last clear.
    pub fn is_empty(&self) -> bool {
        self.filled.iter().all(|&w| w == 0)
    }
}

/// Machine code for one block, position independent (no relocations): ready to be installed.
#[derive(Debug, Clone)]
pub struct CompiledBlock {
    pub bytes: Vec<u8>,
    pub alignment: u64,
}

fn make_isa() -> Result<OwnedTargetIsa, BackendError> {
    let mut flags = settings::builder();
    let set = |f: &mut settings::Builder, k: &str, v: &str| {
        f.set(k, v)
            .map_err(|e| BackendError::Isa(format!("setting {k}={v}: {e}")))
    };
    set(&mut flags, "opt_level", "none")?;
    set(&mut flags, "regalloc_algorithm", "backtracking")?;
    set(
        &mut flags,
        "enable_verifier",
        if cfg!(debug_assertions) {
            "true"
        } else {
            "false"
        },
    )?;
    // x86-64 tail calls need frame pointers (DESIGN.md §2).
    set(&mut flags, "preserve_frame_pointers", "true")?;
    set(&mut flags, "is_pic", "false")?;
    let isa_builder = cranelift_native::builder().map_err(|e| BackendError::Isa(e.to_string()))?;
    isa_builder
        .finish(settings::Flags::new(flags))
        .map_err(|e| BackendError::Isa(e.to_string()))
}

/// The signature of every compiled block: `tail fn(i64 state, i64 exit) -> i64`. Blocks
/// ignore `exit`: it is the exit code a `Goto` exit passes to whatever its chain slot leads
/// to, which the unlinked-exit stub ([`unlinked_exit_stub`]) returns. Callers with no exit
/// code to pass (the trampoline, jump-cache hits) pass the state again.
fn block_signature() -> Signature {
    let mut sig = Signature::new(CallConv::Tail);
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    sig
}

/// Compiles IR blocks to bytes. One per compiling thread: it reuses its Cranelift `Context`.
pub struct Compiler {
    isa: OwnedTargetIsa,
    ctx: Context,
    fctx: FunctionBuilderContext,
    jump_cache: Option<JumpProbe>,
}

impl Compiler {
    pub fn new() -> Result<Compiler, BackendError> {
        Ok(Compiler {
            isa: make_isa()?,
            ctx: Context::new(),
            fctx: FunctionBuilderContext::new(),
            jump_cache: None,
        })
    }

    /// Make `Indirect` exits of the blocks compiled from now on probe the jump cache at
    /// `probe.addr` ([`JumpCache::addr`]) for their target under `probe.flags` (the flags of
    /// the block's key) and tail-call its code on a hit. The cache must outlive all code
    /// compiled with it.
    pub fn set_jump_cache(&mut self, probe: Option<JumpProbe>) {
        self.jump_cache = probe;
    }

    /// Compile `block`. `block_id` is returned in the exit code (see [`encode_exit`]); `slots`
    /// holds the chain slots of its `Goto` exits (None: never chain).
    pub fn compile(
        &mut self,
        block: &IrBlock,
        block_id: u32,
        slots: Option<ChainSlots>,
    ) -> Result<CompiledBlock, BackendError> {
        self.compile_region(&[RegionBlock {
            block,
            id: block_id,
            slots,
            cut: false,
            // Read only by a jump to another page's member: a block alone has none.
            phys_pc: block.start_pc,
        }])
    }

    /// Compile a region: blocks lowered into one function entered at the first, in which a
    /// `Goto` to another block's start is a jump (lower.rs) — guarded when the block is in
    /// another virtual page, whose mapping may change under the code. Each block keeps its id
    /// in exit codes and its own chain slots; all have the same translation flags and either
    /// all have slots or none. The caller guarantees that the code of each block stays valid
    /// as long as the function is reachable (it invalidates all of them when any of their
    /// physical pages is written).
    pub fn compile_region(
        &mut self,
        blocks: &[RegionBlock<'_>],
    ) -> Result<CompiledBlock, BackendError> {
        // A Cranelift panic is a bug in emu or Cranelift, but it must not take the emulator
        // down: the block stays on the interpreter.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.compile_inner(blocks)))
                .unwrap_or_else(|_| Err(BackendError::Codegen("cranelift panicked".into())));
        if result.is_err() {
            // Lowering may have stopped half-way: start the next block from clean contexts.
            self.fctx = FunctionBuilderContext::new();
            self.ctx = Context::new();
        }
        result
    }

    fn compile_inner(&mut self, blocks: &[RegionBlock<'_>]) -> Result<CompiledBlock, BackendError> {
        if blocks
            .iter()
            .any(|b| b.slots.is_some() != blocks[0].slots.is_some())
        {
            return Err(BackendError::Malformed(
                "a region mixes chained and unchained blocks".into(),
            ));
        }
        self.ctx.clear();
        self.ctx.func = Function::with_name_signature(UserFuncName::user(0, 0), block_signature());
        {
            let builder = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            lower::lower_region(builder, blocks, self.jump_cache, self.isa.frontend_config())?;
        }
        let code = self
            .ctx
            .compile(&*self.isa, &mut Default::default())
            .map_err(|e| {
                BackendError::Codegen(format!("{:?} in\n{}", e.inner, e.func.display()))
            })?;
        if !code.buffer.relocs().is_empty() {
            return Err(BackendError::Codegen(
                "generated code needs relocations".into(),
            ));
        }
        Ok(CompiledBlock {
            bytes: code.code_buffer().to_vec(),
            alignment: u64::from(code.buffer.alignment),
        })
    }
}

/// Default size of the executable arena; when it fills, the engine flushes all translations.
pub const CODE_ARENA_BYTES: usize = 256 << 20;

/// Executable memory for compiled blocks, plus the trampoline that enters them (installed
/// first). Installing copies the bytes into one reservation ([`arena::CodeMemory`]: a bump
/// allocator over pages mapped writable and, separately, executable), so it costs a copy, not
/// a system call. Dropping it frees all code: only do so when no code runs and no pointer into
/// it (chain slots) remains.
pub struct CodeArena {
    memory: arena::CodeMemory,
    trampoline: Trampoline,
    installed: usize,
}

/// `fn(state, entry) -> u64`: enters compiled code from Rust (the state is a `CpuCommon`).
type Trampoline = unsafe extern "C" fn(*mut std::ffi::c_void, *const u8) -> u64;

impl CodeArena {
    /// Reserve `reserve_bytes` of code memory (committed as it fills).
    pub fn new(reserve_bytes: usize) -> Result<CodeArena, BackendError> {
        let mut memory = arena::CodeMemory::new(reserve_bytes)
            .map_err(|e| BackendError::CodeFull(format!("reserving code memory: {e}")))?;
        let trampoline = match slow_thunks() {
            // The thunks that leave on a fault need their own entry (unwind.rs).
            #[cfg(target_arch = "x86_64")]
            Some(SlowThunks { unwinds: true, .. }) => unwind::emu_enter_compiled as Trampoline,
            _ => {
                let tramp = build_trampoline()?;
                let entry = install_bytes(&mut memory, &tramp)?;
                perfmap::record(entry as usize, tramp.bytes.len(), &"emu_trampoline");
                // SAFETY: `entry` is the executable copy of position-independent code compiled
                // with the platform's C calling convention and the signature (i64, i64) -> i64;
                // it lives as long as `memory`, which the arena owns together with the pointer.
                unsafe { std::mem::transmute::<*const u8, Trampoline>(entry) }
            }
        };
        Ok(CodeArena {
            memory,
            trampoline,
            installed: 0,
        })
    }

    /// Copy compiled bytes into executable memory; returns the entry point.
    pub fn install(&mut self, code: &CompiledBlock) -> Result<*const u8, BackendError> {
        self.install_inner(code, None)
    }

    /// [`CodeArena::install`] of the block (or, with `region`, the region headed by the block)
    /// translated from guest virtual `pc`: with the perf map on ([`perfmap::enable`]), its line
    /// names the guest pc (`guest_<pc>_b<n>`, a region `guest_<pc>_r<n>`).
    pub fn install_for(
        &mut self,
        code: &CompiledBlock,
        pc: u64,
        region: bool,
    ) -> Result<*const u8, BackendError> {
        self.install_inner(code, Some((pc, region)))
    }

    fn install_inner(
        &mut self,
        code: &CompiledBlock,
        pc: Option<(u64, bool)>,
    ) -> Result<*const u8, BackendError> {
        let ptr = install_bytes(&mut self.memory, code)?;
        let n = self.installed;
        self.installed += 1;
        if perfmap::enabled() {
            let len = code.bytes.len();
            match pc {
                Some((pc, false)) => {
                    perfmap::record(ptr as usize, len, &format_args!("guest_{pc:#x}_b{n}"))
                }
                Some((pc, true)) => {
                    perfmap::record(ptr as usize, len, &format_args!("guest_{pc:#x}_r{n}"))
                }
                None => perfmap::record(ptr as usize, len, &format_args!("emu_b{n}")),
            }
        }
        Ok(ptr)
    }

    /// Number of blocks installed.
    pub fn installed(&self) -> usize {
        self.installed
    }

    /// Bytes of code memory used so far (trampoline and alignment padding included), and the
    /// size of the reservation.
    pub fn usage(&self) -> (usize, usize) {
        (self.memory.used(), self.memory.capacity())
    }

    /// Run compiled code starting at `entry` (and whatever it chains to).
    ///
    /// # Safety
    /// `entry` must come from [`CodeArena::install`] of this arena; `state` must point to a live
    /// guest state (a `CpuCommon` first field) that nothing else borrows, whose helpers and slow
    /// path match the ones the code was compiled against; every non-zero chain slot reachable
    /// from the code must hold an entry point of this arena. The state's pc is the start pc of
    /// the block at `entry` (of one of its blocks, for a region), as every exit from compiled
    /// code leaves it and the engine dispatches by it: memory slow paths count from it
    /// (site.rs).
    pub unsafe fn enter(&self, state: *mut CpuCommon, entry: *const u8) -> (BlockExit, u32) {
        // SAFETY: the caller's contract (above); the trampoline matches the thunks the code
        // was compiled against (both follow `slow_thunks`, fixed for the process).
        decode_exit(unsafe { (self.trampoline)(state.cast(), entry) })
    }
}

/// Copy `code` into `memory`: its executable address, or `CodeFull`.
fn install_bytes(
    memory: &mut arena::CodeMemory,
    code: &CompiledBlock,
) -> Result<*const u8, BackendError> {
    let align = usize::try_from(code.alignment)
        .ok()
        .filter(|a| a.is_power_of_two() && *a <= memory.max_align())
        .ok_or_else(|| BackendError::Codegen(format!("code alignment {}", code.alignment)))?;
    memory.install(&code.bytes, align).ok_or_else(|| {
        BackendError::CodeFull(format!(
            "{} bytes of code do not fit ({} of {} bytes used)",
            code.bytes.len(),
            memory.used(),
            memory.capacity()
        ))
    })
}

/// Bytes of the function `ctx` just compiled (for the perf map).
fn code_size(ctx: &Context) -> usize {
    ctx.compiled_code().map_or(0, |c| c.code_buffer().len())
}

/// `extern "C" fn(state, entry) -> u64 { entry(state) }` (a `tail` call from the C ABI), as
/// position-independent bytes.
fn build_trampoline() -> Result<CompiledBlock, BackendError> {
    let isa = make_isa()?;
    let mut sig = Signature::new(isa.default_call_conv());
    sig.params.push(AbiParam::new(types::I64));
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I64));
    let mut ctx = Context::new();
    ctx.func = Function::with_name_signature(UserFuncName::user(0, 0), sig);
    build_one_block(&mut ctx.func, isa.frontend_config(), |b, params| {
        let sig_ref = b.import_signature(block_signature());
        let call = b
            .ins()
            .call_indirect(sig_ref, params[1], &[params[0], params[0]]);
        let r = b.inst_results(call)[0];
        b.ins().return_(&[r]);
    });
    let code = ctx
        .compile(&*isa, &mut Default::default())
        .map_err(|e| BackendError::Codegen(format!("trampoline: {:?}", e.inner)))?;
    if !code.buffer.relocs().is_empty() {
        return Err(BackendError::Codegen(
            "the trampoline needs relocations".into(),
        ));
    }
    Ok(CompiledBlock {
        bytes: code.code_buffer().to_vec(),
        alignment: u64::from(code.buffer.alignment),
    })
}

/// Entry points of the memory slow-path thunks: `preserve_all` functions that call the
/// guest's `CpuCommon::slow.load/store` through [`slow_entry`] (site.rs). Calling a thunk
/// clobbers no register, so values live across a TLB miss stay in registers on the hot path
/// too (DESIGN.md §2: −15 %).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlowThunks {
    pub load: usize,
    pub store: usize,
    /// On a guest fault the thunk leaves compiled code itself (unwind.rs): generated code
    /// does not test `exception_pending` after the call.
    pub unwinds: bool,
}

/// The process-wide thunks, compiled once into a small arena that is never freed (compiled
/// blocks of every engine call them by absolute address). `None` if they cannot be built; the
/// backend then calls the slow path directly.
pub(crate) fn slow_thunks() -> Option<SlowThunks> {
    static THUNKS: std::sync::OnceLock<Option<SlowThunks>> = std::sync::OnceLock::new();
    if std::env::var("EMU_NO_THUNKS").is_ok() {
        return None;
    }
    *THUNKS.get_or_init(|| {
        // `EMU_FAULT_CHECKS` (experiments): the Cranelift thunks, and a fault test after each
        // call in generated code, on x86-64 too.
        #[cfg(target_arch = "x86_64")]
        if std::env::var("EMU_FAULT_CHECKS").is_err() {
            return Some(SlowThunks {
                load: unwind::emu_slow_load_unwinding as *const () as usize,
                store: unwind::emu_slow_store_unwinding as *const () as usize,
                unwinds: true,
            });
        }
        checked_slow_thunks()
    })
}

/// The thunks compiled by Cranelift, whose callers test for a fault.
fn checked_slow_thunks() -> Option<SlowThunks> {
    match build_slow_thunks() {
        Ok(t) => Some(t),
        Err(e) => {
            log::warn!("memory slow-path thunks unavailable ({e}); calling the slow path directly");
            None
        }
    }
}

/// Calls of the memory slow path from compiled code (TLB misses, MMIO and page-crossing
/// accesses), counted by the `preserve_all` thunks: the slow path is already a call, so the
/// count costs nothing on the hot path. Blocks built without thunks (`EMU_NO_THUNKS`) and the
/// interpreter are not counted.
static SLOW_PATH_CALLS: AtomicU64 = AtomicU64::new(0);

/// [`SLOW_PATH_CALLS`] so far (all engines of the process).
pub fn slow_path_calls() -> u64 {
    SLOW_PATH_CALLS.load(Ordering::Relaxed)
}

/// Signature of the slow-path entry ([`site::emu_slow_load_site`] /
/// [`site::emu_slow_store_site`]: state, address, [value,] site) for System V, or of its thunk
/// for `preserve_all`. Cranelift's `preserve_all` has no return values, so the load thunk
/// takes a fourth argument: where to store the loaded value.
pub(crate) fn slow_signature(call_conv: CallConv, store: bool) -> Signature {
    let mut sig = Signature::new(call_conv);
    let params = match (store, call_conv) {
        (true, _) | (false, CallConv::PreserveAll) => 4,
        (false, _) => 3,
    };
    for _ in 0..params {
        sig.params.push(AbiParam::new(types::I64));
    }
    if !store && call_conv != CallConv::PreserveAll {
        sig.returns.push(AbiParam::new(types::I64));
    }
    sig
}

/// Address of the System V slow-path entry compiled code calls (through a thunk or not).
pub(crate) fn slow_entry(store: bool) -> usize {
    if store {
        site::emu_slow_store_site as *const () as usize
    } else {
        site::emu_slow_load_site as *const () as usize
    }
}

/// Fill `func` (its signature set) with one block, whose body `body` emits given the
/// function's parameters.
fn build_one_block(
    func: &mut Function,
    frontend: cranelift_codegen::isa::TargetFrontendConfig,
    body: impl FnOnce(&mut FunctionBuilder<'_>, &[cranelift_codegen::ir::Value]),
) {
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    body(&mut b, &params);
    b.finalize(frontend);
}

/// Declare and define in `module` a one-block function `name` of signature `sig`, whose body
/// `body` emits given the function's parameters. Returns its id and code size.
fn define_resident(
    module: &mut JITModule,
    name: &str,
    sig: Signature,
    body: impl FnOnce(&mut FunctionBuilder<'_>, &[cranelift_codegen::ir::Value]),
) -> Result<(cranelift_module::FuncId, usize), BackendError> {
    let id = module
        .declare_function(name, Linkage::Local, &sig)
        .map_err(|e| BackendError::Codegen(e.to_string()))?;
    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    build_one_block(&mut ctx.func, module.isa().frontend_config(), body);
    module
        .define_function(id, &mut ctx)
        .map_err(|e| BackendError::Codegen(format!("{e:?}")))?;
    Ok((id, code_size(&ctx)))
}

fn build_slow_thunks() -> Result<SlowThunks, BackendError> {
    let isa = make_isa()?;
    let jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    let mut module = JITModule::new(jb);
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for store in [false, true] {
        let sig = slow_signature(CallConv::PreserveAll, store);
        let name = if store {
            "emu_slow_store"
        } else {
            "emu_slow_load"
        };
        let (id, size) = define_resident(&mut module, name, sig, |b, params| {
            let counter = b
                .ins()
                .iconst(types::I64, SLOW_PATH_CALLS.as_ptr() as usize as i64);
            let one = b.ins().iconst(types::I64, 1);
            b.ins().atomic_rmw(
                types::I64,
                cranelift_codegen::ir::MemFlagsData::trusted(),
                cranelift_codegen::ir::AtomicRmwOp::Add,
                counter,
                one,
            );
            let f = b.ins().iconst(types::I64, slow_entry(store) as i64);
            let callee = b.import_signature(slow_signature(CallConv::SystemV, store));
            if store {
                b.ins().call_indirect(callee, f, params);
            } else {
                let call = b.ins().call_indirect(callee, f, &params[..3]);
                let r = b.inst_results(call)[0];
                b.ins().store(
                    cranelift_codegen::ir::MemFlagsData::trusted(),
                    r,
                    params[3],
                    0,
                );
            }
            b.ins().return_(&[]);
        })?;
        sizes.push(size);
        ids.push(id);
    }
    module
        .finalize_definitions()
        .map_err(|e| BackendError::CodeFull(e.to_string()))?;
    let thunks = SlowThunks {
        load: module.get_finalized_function(ids[0]) as usize,
        store: module.get_finalized_function(ids[1]) as usize,
        unwinds: false,
    };
    if let [load, store] = sizes[..] {
        perfmap::record(thunks.load, load, &"emu_slow_load_thunk");
        perfmap::record(thunks.store, store, &"emu_slow_store_thunk");
    }
    // The thunks live for the whole process: compiled blocks of any engine may call them.
    keep_resident(module);
    Ok(thunks)
}

/// Entry point of the unlinked-exit stub, a function of the blocks' signature that returns
/// its `exit` argument: a `Goto` exit tail-calls its chain slot's target, or this stub when
/// the slot is empty, passing its exit code either way, so the exit needs no branch and no
/// second block (the compile thread allocates registers for fewer blocks). Compiled once
/// into a module that is never freed (blocks of every engine jump to it by absolute address).
/// `None` if it cannot be built; exits then branch on the slot.
pub(crate) fn unlinked_exit_stub() -> Option<usize> {
    static STUB: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *STUB.get_or_init(|| match build_unlinked_exit_stub() {
        Ok(entry) => Some(entry),
        Err(e) => {
            log::warn!("unlinked-exit stub unavailable ({e}); exits branch on their slot");
            None
        }
    })
}

/// A module whose code stays mapped for the whole process and is never used again.
struct ResidentModule {
    _module: JITModule,
}

// SAFETY: after finalization nothing calls into the module or reads it: it is only kept so
// its code memory stays mapped.
unsafe impl Send for ResidentModule {}

/// Keeps `module`'s code mapped for the rest of the process. The module is held in a static,
/// not forgotten: the fuzz targets run LeakSanitizer, which reports a forgotten module's heap
/// (the `ir_parse` and `riscv_lifter` targets failed on their first input when the stub's
/// module was `mem::forget`-ed).
fn keep_resident(module: JITModule) {
    static RESIDENT: parking_lot::Mutex<Vec<ResidentModule>> = parking_lot::Mutex::new(Vec::new());
    RESIDENT.lock().push(ResidentModule { _module: module });
}

fn build_unlinked_exit_stub() -> Result<usize, BackendError> {
    let isa = make_isa()?;
    let jb = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    let mut module = JITModule::new(jb);
    let (id, size) = define_resident(
        &mut module,
        "emu_unlinked_exit",
        block_signature(),
        |b, params| {
            b.ins().return_(&[params[1]]);
        },
    )?;
    module
        .finalize_definitions()
        .map_err(|e| BackendError::CodeFull(e.to_string()))?;
    let entry = module.get_finalized_function(id) as usize;
    perfmap::record(entry, size, &"emu_unlinked_exit");
    // The stub lives for the whole process: compiled blocks of any engine jump to it.
    keep_resident(module);
    Ok(entry)
}

/// One block compiled on its own (no chaining), for tests.
pub struct StandaloneCode {
    arena: CodeArena,
    entry: *const u8,
    start_pc: u64,
}

/// Compile one block into its own small arena.
pub fn compile_standalone(block: &IrBlock) -> Result<StandaloneCode, BackendError> {
    let mut compiler = Compiler::new()?;
    let code = compiler.compile(block, 0, None)?;
    let mut arena = CodeArena::new(1 << 20)?;
    let entry = arena.install(&code)?;
    Ok(StandaloneCode {
        arena,
        entry,
        start_pc: block.start_pc,
    })
}

impl StandaloneCode {
    /// Run the block once, entered as the engine enters it: with its start in the state's pc.
    ///
    /// # Safety
    /// `state` must point to a live guest state (starting with `CpuCommon`) that nothing else
    /// borrows, with the helpers the block names and a slow path valid for it.
    pub unsafe fn run(&self, state: *mut CpuCommon) -> BlockExit {
        // SAFETY: `entry` was installed in `arena`; the caller vouches for `state`, whose pc
        // is set as `enter` requires; the block was compiled without chain slots.
        unsafe {
            (*state).pc = self.start_pc;
            self.arena.enter(state, self.entry).0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{BinOp, Builder, MemOp, Terminal, Type};
    use crate::testing::{
        assert_observed_slow_path, observed_slow_path_text, observing_slow_load, reg_offset,
        TestCpu, ADD3, GET_REG, RAISE_IF, RAM_BASE,
    };

    fn run(block: &IrBlock, cpu: &mut TestCpu) -> BlockExit {
        let code = compile_standalone(block).expect("compiles");
        // SAFETY: `cpu` is a live TestCpu borrowed only here; the block uses test helpers.
        unsafe { code.run(cpu.state_ptr()) }
    }

    #[test]
    fn globals_memory_and_goto() {
        let mut b = Builder::new(0x100);
        b.insn_start(0x100, 0);
        let r1 = b.load_global(Type::I64, reg_offset(1));
        let r2 = b.binary_imm(BinOp::Add, Type::I64, r1, 5);
        b.store_global(Type::I64, reg_offset(1), r2);
        b.insn_start(0x104, 0);
        let a = b.iconst(Type::I64, RAM_BASE + 16);
        b.store(Type::I64, MemOp::new(3, false, true), 0, r2, a);
        let l = b.load(Type::I32, MemOp::new(0, true, false), 0, a);
        let l64 = b.sext(Type::I32, Type::I64, l);
        b.store_global(Type::I64, reg_offset(2), l64);
        b.goto(0x200);
        let block = b.finish();
        let mut cpu = TestCpu::new();
        cpu.regs[1] = 0xfb;
        assert_eq!(run(&block, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_eq!(cpu.regs[1], 0x100);
        assert_eq!(cpu.read_mem(RAM_BASE + 16, 8), Some(0x100));
        assert_eq!(cpu.regs[2], 0);
        assert_eq!(cpu.common.pc, 0x200);
        assert_eq!(cpu.common.insn_count, 2);
        assert_eq!(cpu.slow_calls, 0);
    }

    /// Globals are written back before a memory access (lower.rs): the slow path sees every
    /// store made before it, and they are clean after it, so a write the slow path made to
    /// one stays, as in the interpreter; a fault leaves them in the state.
    #[test]
    fn globals_are_in_the_state_at_a_slow_path_and_clean_after_it() {
        let helpers = crate::testing::test_helpers();
        let parse = |text: String| crate::ir::parse::parse_block(&text, &helpers).expect("parses");
        let block = parse(observed_slow_path_text(false));
        let mut cpu = TestCpu::new();
        cpu.common.slow.load = observing_slow_load;
        assert_eq!(run(&block, &mut cpu), BlockExit::Goto { slot: 0 });
        assert_observed_slow_path(&cpu, false);

        // The same block with a faulting access.
        let block = parse(observed_slow_path_text(true));
        let mut cpu = TestCpu::new();
        assert_eq!(run(&block, &mut cpu), BlockExit::Fault);
        assert_observed_slow_path(&cpu, true);
    }

    #[test]
    fn faults_helpers_and_budget() {
        let mut b = Builder::new(0x100);
        b.insn_start(0x100, 0);
        let r1 = b.load_global(Type::I64, reg_offset(1));
        let one = b.iconst(Type::I64, 1);
        let s = b.call(&ADD3, &[r1, one, one]).expect("result");
        b.store_global(Type::I64, reg_offset(1), s);
        b.insn_start(0x104, 0);
        let three = b.iconst(Type::I64, 3);
        let g = b.call(&GET_REG, &[three]).expect("result");
        b.store_global(Type::I64, reg_offset(4), g);
        b.insn_start(0x108, 0);
        let bad = b.iconst(Type::I64, 0x10);
        b.load(Type::I64, MemOp::new(3, false, false), 0, bad);
        b.insn_start(0x10c, 0);
        b.call(&RAISE_IF, &[one]);
        b.exit(Terminal::Goto { pc: 0 });
        let block = b.finish();

        let mut cpu = TestCpu::new();
        cpu.regs[1] = 7;
        cpu.regs[3] = 9;
        cpu.common.insn_count = 10;
        assert_eq!(run(&block, &mut cpu), BlockExit::Fault);
        assert_eq!(cpu.regs[1], 9);
        assert_eq!(cpu.regs[4], 9);
        assert_eq!(cpu.common.pc, 0x108);
        assert_eq!(cpu.common.insn_count, 12);
        assert_eq!(cpu.fault_addr, 0x10);

        cpu.common.insn_limit = 12;
        cpu.common.exception_pending = 0;
        assert_eq!(run(&block, &mut cpu), BlockExit::Budget);
        assert_eq!(cpu.common.pc, 0x100);
        assert_eq!(cpu.common.insn_count, 12);
    }

    #[test]
    fn a_global_overlapped_by_a_wider_access_is_not_cached() {
        let mut b = Builder::new(0);
        b.insn_start(0, 0);
        // reg1 is accessed as I32 and as I64; its upper half is also read as its own I32.
        let _low = b.load_global(Type::I32, reg_offset(1));
        let _high = b.load_global(Type::I32, reg_offset(1) + 4);
        let c = b.iconst(Type::I64, 0x1111_2222_3333_4444);
        b.store_global(Type::I64, reg_offset(1), c);
        let high = b.load_global(Type::I32, reg_offset(1) + 4);
        let wide = b.zext(Type::I32, Type::I64, high);
        b.store_global(Type::I64, reg_offset(2), wide);
        b.goto(4);
        let block = b.finish();
        let mut cpu = TestCpu::new();
        run(&block, &mut cpu);
        assert_eq!(cpu.regs[2], 0x1111_2222);
    }

    #[test]
    fn total_division() {
        for (op, a, b_, want) in [
            (BinOp::DivS, i64::MIN as u64, u64::MAX, i64::MIN as u64),
            (BinOp::RemS, i64::MIN as u64, u64::MAX, 0),
            (BinOp::DivU, 5, 0, u64::MAX),
            (BinOp::RemU, 5, 0, 5),
            (BinOp::DivS, 7, 0, u64::MAX),
            (BinOp::RemS, (-7i64) as u64, 2, (-1i64) as u64),
        ] {
            let mut b = Builder::new(0);
            b.insn_start(0, 0);
            let x = b.iconst(Type::I64, a);
            let y = b.iconst(Type::I64, b_);
            let r = b.binary(op, Type::I64, x, y);
            b.store_global(Type::I64, reg_offset(5), r);
            b.goto(4);
            let block = b.finish();
            let mut cpu = TestCpu::new();
            run(&block, &mut cpu);
            assert_eq!(cpu.regs[5], want, "{op:?} {a:#x} {b_:#x}");
        }
    }

    #[test]
    fn jump_cache_maps_pcs_until_cleared() {
        let mut jc = JumpCache::new();
        // Another pc with the same entry.
        let far = (1..)
            .map(|k: u64| 0x8000_0000 + 2 * k)
            .find(|&pc| JumpCache::index(pc) == JumpCache::index(0x8000_0000))
            .expect("pcs share entries");
        assert_eq!(jc.get(0x8000_0000, 1), None);
        assert!(jc.is_empty());
        jc.insert(0x8000_0000, 1, 0x9000_0000, 0x1000);
        assert_eq!(jc.get(0x8000_0000, 1), Some(0x1000));
        assert_eq!(jc.phys(0x8000_0000, 1), Some(0x9000_0000));
        assert_eq!(jc.phys(0x8000_0000, 3), None);
        // The flags are part of the tag: the same pc in another mode misses.
        assert_eq!(jc.get(0x8000_0000, 3), None);
        jc.insert(far, 1, far, 0x2000);
        // Same index: the second replaced the first.
        assert_eq!(jc.get(0x8000_0000, 1), None);
        assert_eq!(jc.phys(0x8000_0000, 1), None);
        assert_eq!(jc.get(far, 1), Some(0x2000));
        jc.clear();
        assert!(jc.is_empty());
        // An empty entry matches no probe, whatever its pc (cleared entries keep theirs).
        assert_eq!(jc.get(far, 1), None);
        assert_eq!(jc.get(u64::MAX, 0), None);
        assert_eq!(JumpCache::new().get(0, 0), None);
        assert_eq!(JumpCache::new().get(0, u32::MAX), None);
    }

    #[test]
    fn clearing_a_page_keeps_other_pages_entries() {
        let mut jc = JumpCache::new();
        let page = 0x8040_3000u64;
        let pcs = [
            page,
            page + 0x7f0,
            page + 0xf00,
            page + 0x1000,
            page - 0x1000,
            page + 0x5000,
        ];
        for (i, &pc) in pcs.iter().enumerate() {
            jc.insert(pc, 1, pc, 0x1000 + i);
        }
        for (i, &pc) in pcs.iter().enumerate() {
            assert_eq!(jc.get(pc, 1), Some(0x1000 + i), "{pc:#x}");
        }
        jc.clear_page(page + 0x123);
        for pc in &pcs[..3] {
            assert_eq!(jc.get(*pc, 1), None, "{pc:#x} is in the flushed page");
        }
        // A block starting on the page before may reach into the flushed page.
        assert_eq!(jc.get(page - 0x1000, 1), None);
        assert_eq!(jc.get(page + 0x1000, 1), Some(0x1003));
        assert_eq!(jc.get(page + 0x5000, 1), Some(0x1005));
        assert!(!jc.is_empty());
        jc.clear_page(page + 0x5000);
        jc.clear_page(page + 0x1000);
        assert!(jc.is_empty(), "the filled bits follow the clears");
    }

    #[test]
    fn compiler_recovers_after_declining_a_block() {
        let mut compiler = Compiler::new().expect("host ISA");
        let mut b = Builder::new(0);
        b.insn_start(0, 0);
        let x = b.iconst(Type::I128, 5);
        let q = b.binary(BinOp::DivU, Type::I128, x, x);
        let lo = b.trunc(Type::I128, Type::I64, q);
        b.store_global(Type::I64, reg_offset(1), lo);
        b.goto(4);
        let i128_div = b.finish();
        assert!(matches!(
            compiler.compile(&i128_div, 0, None),
            Err(BackendError::Unsupported(_))
        ));
        let mut b = Builder::new(0);
        b.insn_start(0, 0);
        b.goto(4);
        assert!(compiler.compile(&b.finish(), 0, None).is_ok());
    }

    /// A block that adds `k` to reg 1 and exits with `Goto` slot 0.
    fn add_block(k: u64) -> IrBlock {
        let mut b = Builder::new(0x100);
        b.insn_start(0x100, 0);
        let r1 = b.load_global(Type::I64, reg_offset(1));
        let r2 = b.binary_imm(BinOp::Add, Type::I64, r1, k);
        b.store_global(Type::I64, reg_offset(1), r2);
        b.goto(0x104);
        b.finish()
    }

    #[test]
    fn blocks_share_an_arena_until_it_is_full() {
        let mut compiler = Compiler::new().expect("host ISA");
        let mut arena = CodeArena::new(1).expect("code arena");
        let (used, capacity) = arena.usage();
        // The trampoline comes first, unless it is the assembly one (unwind.rs).
        let asm_entry = slow_thunks().is_some_and(|t| t.unwinds);
        assert!(used > 0 || asm_entry, "the trampoline comes first");
        let mut entries = Vec::new();
        let err = loop {
            let k = entries.len() as u64 + 1;
            let code = compiler.compile(&add_block(k), 0, None).expect("compiles");
            assert!(
                code.bytes.len() < capacity / 4,
                "a page holds several blocks"
            );
            match arena.install(&code) {
                Ok(entry) => {
                    assert_eq!(entry as u64 % code.alignment, 0);
                    entries.push((k, entry));
                }
                Err(e) => break e,
            }
        };
        assert!(matches!(err, BackendError::CodeFull(_)), "{err}");
        assert!(entries.len() >= 4, "{} blocks in a page", entries.len());
        assert_eq!(arena.installed(), entries.len());
        assert!(arena.usage().0 <= capacity);
        // Every block, the first and the last included, still runs what it was compiled from.
        for (k, entry) in entries {
            let mut cpu = TestCpu::new();
            cpu.regs[1] = 1000;
            // SAFETY: `cpu` is borrowed only here; `entry` was installed in `arena` and compiled
            // without chain slots or helpers.
            let (exit, _) = unsafe { arena.enter(cpu.state_ptr(), entry) };
            assert_eq!(exit, BlockExit::Goto { slot: 0 });
            assert_eq!(cpu.regs[1], 1000 + k);
        }
    }

    #[test]
    fn an_alignment_beyond_a_page_is_refused() {
        let mut arena = CodeArena::new(1 << 16).expect("code arena");
        let code = CompiledBlock {
            bytes: vec![0xcc; 4],
            alignment: 1 << 20,
        };
        assert!(matches!(
            arena.install(&code),
            Err(BackendError::Codegen(_))
        ));
        assert_eq!(arena.installed(), 0);
    }

    #[test]
    fn slow_path_thunks_build() {
        assert!(slow_thunks().is_some());
    }

    #[test]
    fn exit_encoding_round_trips() {
        let exits = [
            BlockExit::Budget,
            BlockExit::Goto { slot: 3 },
            BlockExit::Indirect,
            BlockExit::Exit(ExitReason::Exception),
            BlockExit::Exit(ExitReason::Yield),
            BlockExit::Exit(ExitReason::Halt),
            BlockExit::Fault,
        ];
        for e in exits {
            assert_eq!(decode_exit(encode_exit(e, 77)), (e, 77));
        }
    }
}
