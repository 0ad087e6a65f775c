//! The execution engine (DESIGN.md §2): block lookup, translation, the two tiers, tier-up
//! through a background compile thread, chaining and invalidation. The machine's run loop calls
//! [`Engine::run`] until the guest needs it (exception, yield, halt, budget).
//!
//! Determinism: which tier runs a block depends on when the compile thread finishes, but both
//! tiers execute the same IR with the same semantics and exit at the same instruction counts,
//! so guest-visible results never depend on it. Heat is counted here, in the dispatch loop,
//! never in generated code.
//!
//! Staying in compiled code: a `Goto` to the same virtual page is chained directly (its slot
//! is filled when both blocks are compiled, tb.rs); a `Goto` to another page and an `Indirect`
//! go through the per-vCPU jump cache (backend `JumpCache`, tagged with pc and translation
//! flags), which is filled here after such an exit and cleared when `run` starts on another
//! vCPU state or after the guest flushed its whole TLB (the virtual-to-physical mapping may
//! have changed), on invalidation and on flush; after single-page TLB flushes
//! (`CpuCommon::take_tlb_flushes`) only those pages' entries are dropped. A block that
//! jumps to its own start loops inside its compiled function.
//!
//! Debugging and tracing (gdb stub, `-d`): breakpoints are checked at block entry, before the
//! block runs; in debug mode ([`Engine::set_debug_mode`]) every block is one instruction long,
//! so every instruction starts a block and single-stepping is a budget of one instruction.
//! With `nochain` (debug mode, `-d exec`), blocks are neither chained nor found through the
//! jump cache, and compiled blocks do not loop on themselves: every block run passes through
//! this dispatch loop. A [`TraceSink`] sees each new translation and, when asked, each block
//! before it runs. When all of this is off, the cost is one flag test per translated block
//! and one per dispatch.
//!
//! Assumption about guests: a block is physically contiguous from `BlockKey::phys_pc` over its
//! `guest_size` bytes (the `Guest` trait has no way to name a second physical page), so the
//! pages registered for self-modifying-code detection are computed from `phys_pc`.

use std::any::Any;
use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{unbounded, Receiver, Sender};

use crate::backend::{
    BackendError, ChainSlots, CodeArena, CompiledBlock, Compiler, JumpCache, JumpProbe, RegionBlock,
};
use crate::codemap::CodeMap;
use crate::env::{CpuCommon, TlbFlushes, PAGE_MASK};
use crate::exec::BlockExit;
use crate::guest::{BlockKey, Guest};
use crate::helper::GuestState;
use crate::ir::{Builder, ExitReason, IrBlock};
use crate::tb::{TbCache, TbId, Tier, NO_SUCCESSOR};

/// Interpreter dispatches of a block before it may be sent to the compile thread (tiered
/// mode). DESIGN.md §2 estimates that compiling pays off after ~2,000–5,000 runs when it is
/// paid on the vCPU's thread; here it is paid on the compile thread, on a host core the vCPU
/// does not use, so what matters is that core's capacity: blocks tier up after few runs, and
/// [`MAX_IN_FLIGHT`] keeps the queue short so that, when the compile thread is busy, the
/// blocks that reach it next are the ones that keep running (their heat is checked on every
/// dispatch) rather than the ones that happened to cross a threshold first. Tunable with the
/// environment variable `EMU_TIER_UP` (benchmarks).
pub const TIER_UP_THRESHOLD: u32 = 200;

/// Most blocks queued for the compile thread at once (tiered mode). The thread takes the
/// newest first, so a newly hot block waits for the compile in progress, and older ones wait
/// until the thread catches up with what the guest runs. With newest-first, 8, 32 and 64
/// gave the same boot as 16 (interpreted runs within run-to-run noise).
pub const MAX_IN_FLIGHT: usize = 16;

/// Most guest instructions per block.
pub const MAX_BLOCK_INSNS: u32 = 64;

/// Budget exits from compiled code that must land on a compiled block before the engine
/// compiles it again as the head of a region ([`Engine::budget_sample`]). A budget exit ends
/// every time slice wherever the guest is, so these are samples of where guest time goes,
/// taken at deterministic instruction counts.
pub const REGION_SAMPLES: u16 = 8;

/// Most blocks in a region ([`Engine::region_of`]): a hot block and the blocks of a loop
/// through it, compiled as one function.
pub const MAX_REGION_BLOCKS: usize = 16;

/// Most guest instructions in a region (its blocks' sum; compile time grows with it).
pub const MAX_REGION_INSNS: u32 = 256;

/// Translations kept (including invalidated ones, whose ids are not reused) before the whole
/// cache is flushed: bounds memory for guests that keep rewriting their code.
pub const MAX_CACHED_BLOCKS: usize = 1 << 18;

/// Which tiers run guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The IR interpreter only.
    Interp,
    /// Every block compiled synchronously before its first run.
    Jit,
    /// Interpret; compile hot blocks in the background.
    Tiered,
}

impl FromStr for EngineKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self, EngineError> {
        match s {
            "interp" => Ok(EngineKind::Interp),
            "jit" => Ok(EngineKind::Jit),
            "tiered" => Ok(EngineKind::Tiered),
            _ => Err(EngineError::UnknownKind(s.to_string())),
        }
    }
}

/// Why the engine handed control back to the run loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// A guest exception is pending in the state (`exception_pending`); `pc` is the faulting
    /// instruction.
    Exception,
    /// Translation state or interrupt enables changed: re-check interrupts.
    Yield,
    /// WFI: sleep until an interrupt is pending.
    Halt,
    /// `insn_count >= insn_limit`.
    Budget,
}

/// Host errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Unknown engine name given on the command line.
    #[error("unknown execution engine `{0}`: use interp, jit or tiered")]
    UnknownKind(String),
    /// The backend could not be set up on this host.
    #[error("cannot start the Cranelift backend: {0}")]
    Backend(#[from] BackendError),
    /// The background compile thread could not be started.
    #[error("cannot start the compile thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Counters for the closing notes and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub blocks_translated: u64,
    pub blocks_compiled: u64,
    /// Total Cranelift compile time, in nanoseconds.
    pub compile_ns: u64,
    /// Blocks the backend could not lower (they stay interpreted).
    pub compile_failures: u64,
    pub interp_runs: u64,
    /// Guest instructions retired by interpreted blocks (the rest ran compiled); counted only
    /// with timing on ([`Engine::set_timing`], `--stats`).
    pub interp_insns: u64,
    /// Entries into compiled code from the dispatch loop (chained blocks not counted).
    pub native_runs: u64,
    pub chain_links: u64,
    pub blocks_invalidated: u64,
    pub flushes: u64,
    /// Exits back to the dispatch loop, which looks the next block up, by kind: a `Goto` not
    /// (yet) chained, an `Indirect` that missed the jump cache, anything else (budget, traps).
    /// Chained and jump-cache exits stay in compiled code and are not counted (hot path).
    pub lookups_goto: u64,
    pub lookups_indirect: u64,
    pub lookups_other: u64,
    /// Host time in the interpreter and in compiled code (including what it chains to) and in
    /// the slow path and helpers they call, in nanoseconds; only with [`Engine::set_timing`].
    pub interp_ns: u64,
    pub native_ns: u64,
    /// Memory slow-path calls from compiled code (TLB misses, MMIO), process-wide
    /// ([`crate::backend::slow_path_calls`]).
    pub slow_path_calls: u64,
    /// Most blocks queued for the compile thread at once (at most [`MAX_IN_FLIGHT`]).
    pub peak_in_flight: u64,
    /// Block lookups that missed the TB cache's direct-mapped front (and probed its map).
    pub front_misses: u64,
    /// Times the jump cache was emptied because the guest flushed its TLB or another vCPU
    /// ran (invalidations and flushes not counted).
    pub jump_cache_clears: u64,
    /// Pages whose jump-cache entries were dropped after the guest flushed them from its TLB.
    pub jump_cache_page_clears: u64,
    /// `Yield` exits the engine went on from itself (the run loop had nothing to do).
    pub yields_kept: u64,
    /// Blocks lifted again for the compiler (their IR is not kept, see `TbEntry::ir`).
    pub blocks_relifted: u64,
    /// Regions installed (functions of more than one block, each installed as the code of
    /// every block it holds; `blocks_compiled` counts only those that had no code before),
    /// and the blocks they hold.
    pub regions_compiled: u64,
    pub region_blocks: u64,
    /// Of those blocks, the ones cut where another block of their region starts (the rest
    /// of them is that block: `Engine::region_of`).
    pub region_blocks_cut: u64,
}

/// Default of [`Engine::set_timing`] for new engines ([`Engine::time_new_engines`]).
static TIME_NEW_ENGINES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

struct Job {
    generation: u64,
    /// The block key's translation flags (the jump-cache tag of its successors).
    flags: u32,
    /// The block to compile, then the other blocks of its region (if any).
    blocks: Vec<JobBlock>,
}

struct JobBlock {
    id: TbId,
    ir: Arc<IrBlock>,
    /// None: compile without chaining (nochain mode).
    slots: Option<ChainSlots>,
    /// `ir` is the block's first instructions only, continued by another member
    /// ([`RegionBlock::cut`]).
    cut: bool,
    /// `BlockKey::phys_pc` ([`RegionBlock::phys_pc`]).
    phys_pc: u64,
}

/// Observer of the engine's translations and block runs (`-d in_asm,op,exec,cpu`). The guest
/// is passed as `Any` so the observer can show its registers or read its code.
pub trait TraceSink: Send {
    /// A block was translated and optimized (called once per translation).
    fn translated(&mut self, _guest: &mut dyn Any, _key: &BlockKey, _ir: &IrBlock) {}
    /// Block `id` at `key` is about to run (only with [`Engine::set_tracer`]'s `exec` on).
    fn before_exec(&mut self, _guest: &mut dyn Any, _key: &BlockKey, _id: TbId) {}
}

/// What the tracer wants to see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceWants {
    /// Every new translation.
    pub translate: bool,
    /// Every block run (turns chaining and the jump cache off).
    pub exec: bool,
}

struct Done {
    generation: u64,
    /// The blocks compiled (the first is the entry).
    ids: Vec<TbId>,
    /// How many of them were cut ([`JobBlock::cut`]).
    cut: u64,
    result: Result<CompiledBlock, BackendError>,
    ns: u64,
}

/// The background compile thread and its channels.
struct Worker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    /// Results sent so far: the dispatch loop compares it with what it has received (one
    /// load) instead of polling the channel before every block.
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// `jump_cache`: address of the engine's jump cache, baked into compiled code.
    fn start(jump_cache: usize) -> Result<Worker, EngineError> {
        // Fail early (on this thread) if the host ISA is unsupported.
        drop(Compiler::new()?);
        let (jobs_tx, jobs_rx) = unbounded::<Job>();
        let (done_tx, done_rx) = unbounded::<Done>();
        let sent = Arc::new(AtomicU64::new(0));
        let sent_by_thread = Arc::clone(&sent);
        let thread = std::thread::Builder::new()
            .name("emu-jit-compile".into())
            .spawn(move || {
                let mut compiler = match Compiler::new() {
                    Ok(c) => c,
                    Err(e) => {
                        log::error!("compile thread: {e}");
                        return;
                    }
                };
                // Newest job first: a block queued last was dispatched last, so it is the
                // one running now; blocks queued earlier may belong to a phase the guest has
                // left (boot: interpreted runs -12 % against first-come order, docs/benchmarks.md).
                let mut pending: Vec<Job> = Vec::new();
                loop {
                    if pending.is_empty() {
                        match jobs_rx.recv() {
                            Ok(job) => pending.push(job),
                            Err(_) => return,
                        }
                    }
                    pending.extend(jobs_rx.try_iter());
                    let Some(job) = pending.pop() else {
                        continue;
                    };
                    let t = Instant::now();
                    // Without slots (nochain) the code must not probe the jump cache either.
                    let chained = job.blocks.first().is_some_and(|b| b.slots.is_some());
                    compiler.set_jump_cache(chained.then_some(JumpProbe {
                        addr: jump_cache,
                        flags: job.flags,
                    }));
                    let blocks: Vec<RegionBlock<'_>> = job
                        .blocks
                        .iter()
                        .map(|b| RegionBlock {
                            block: &b.ir,
                            id: b.id.0,
                            slots: b.slots,
                            cut: b.cut,
                            phys_pc: b.phys_pc,
                        })
                        .collect();
                    let result = compiler.compile_region(&blocks);
                    let done = Done {
                        generation: job.generation,
                        ids: job.blocks.iter().map(|b| b.id).collect(),
                        cut: job.blocks.iter().filter(|b| b.cut).count() as u64,
                        result,
                        ns: t.elapsed().as_nanos() as u64,
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
                    sent_by_thread.fetch_add(1, Ordering::Release);
                }
            })?;
        Ok(Worker {
            jobs: Some(jobs_tx),
            done: done_rx,
            sent,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop.
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs one vCPU's guest code (one engine per vCPU).
pub struct Engine {
    kind: EngineKind,
    code_map: Arc<CodeMap>,
    cache: TbCache,
    /// Jobs sent to the compile thread whose result has not been received yet: the dispatch
    /// loop only polls the channel while this is non-zero.
    in_flight: usize,
    /// Results taken from the compile thread's channel (see `Worker::sent`).
    received: u64,
    /// Synchronous compiler (Jit mode).
    compiler: Option<Compiler>,
    arena: Option<CodeArena>,
    /// Time block runs for [`EngineStats`] (`--stats`).
    timing: bool,
    worker: Option<Worker>,
    /// Targets of `Indirect` exits for compiled code.
    jump_cache: JumpCache,
    /// The vCPU state the jump cache was filled under.
    jump_regime: usize,
    /// Bumped by every flush, so late results of the compile thread are dropped.
    generation: u64,
    builder: Builder,
    stats: EngineStats,
    max_insns: u32,
    tier_up: u32,
    /// [`MAX_REGION_INSNS`], or `EMU_REGION_INSNS` (experiments; 0: no regions).
    region_insns: u32,
    /// [`REGION_SAMPLES`] unless set (tests).
    region_samples: u16,
    max_blocks: usize,
    /// Block-entry breakpoints (guest virtual PCs).
    breakpoints: BTreeSet<u64>,
    /// A breakpoint at this PC is not reported for the next block (resuming from it).
    skip_breakpoint: Option<u64>,
    /// The breakpoint that stopped the last `run`, until taken.
    breakpoint_hit: Option<u64>,
    /// One-instruction blocks (debugging).
    debug_mode: bool,
    /// No chaining, no jump cache, no compiled self-loops.
    nochain: bool,
    tracer: Option<Box<dyn TraceSink>>,
    trace_wants: TraceWants,
    /// Any of breakpoints, nochain or exec tracing: the one flag the dispatch loop tests.
    hooks: bool,
}

impl Engine {
    pub fn new(kind: EngineKind, code_map: Arc<CodeMap>) -> Result<Engine, EngineError> {
        let jump_cache = JumpCache::new();
        let (compiler, worker) = match kind {
            EngineKind::Interp => (None, None),
            EngineKind::Jit => (Some(Compiler::new()?), None),
            EngineKind::Tiered => (None, Some(Worker::start(jump_cache.addr())?)),
        };
        Ok(Engine {
            kind,
            code_map,
            cache: TbCache::new(),
            compiler,
            arena: None,
            timing: TIME_NEW_ENGINES.load(std::sync::atomic::Ordering::Relaxed),
            worker,
            in_flight: 0,
            received: 0,
            jump_cache,
            jump_regime: 0,
            generation: 0,
            builder: Builder::new(0),
            stats: EngineStats::default(),
            max_insns: MAX_BLOCK_INSNS,
            tier_up: std::env::var("EMU_TIER_UP")
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(TIER_UP_THRESHOLD)
                .max(1),
            region_insns: std::env::var("EMU_REGION_INSNS")
                .ok()
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(MAX_REGION_INSNS),
            region_samples: REGION_SAMPLES,
            max_blocks: MAX_CACHED_BLOCKS,
            breakpoints: BTreeSet::new(),
            skip_breakpoint: None,
            breakpoint_hit: None,
            debug_mode: false,
            nochain: false,
            tracer: None,
            trace_wants: TraceWants::default(),
            hooks: false,
        })
    }

    /// Debug mode: every block is one guest instruction, nothing is chained. Changing it
    /// flushes the translations (their sizes depend on it).
    pub fn set_debug_mode(&mut self, on: bool) {
        if on != self.debug_mode {
            self.debug_mode = on;
            self.update_nochain();
            self.flush();
        }
    }

    pub fn debug_mode(&self) -> bool {
        self.debug_mode
    }

    fn update_nochain(&mut self) {
        let nochain = self.debug_mode || self.trace_wants.exec;
        if nochain != self.nochain {
            self.nochain = nochain;
            // Existing code has chain slots and jump-cache probes baked in.
            self.flush();
        }
        self.update_hooks();
    }

    fn update_hooks(&mut self) {
        self.hooks = self.nochain || self.trace_wants.exec || !self.breakpoints.is_empty();
    }

    /// Stop before running the instruction at guest virtual `pc` (reported by
    /// [`Engine::take_breakpoint_hit`]). Returns false if it was already set.
    pub fn add_breakpoint(&mut self, pc: u64) -> bool {
        let new = self.breakpoints.insert(pc);
        self.update_hooks();
        new
    }

    /// Returns false if no breakpoint was set at `pc`.
    pub fn remove_breakpoint(&mut self, pc: u64) -> bool {
        let had = self.breakpoints.remove(&pc);
        self.update_hooks();
        had
    }

    pub fn breakpoints(&self) -> &BTreeSet<u64> {
        &self.breakpoints
    }

    /// The next `run` does not stop at a breakpoint at `pc` before its first block (resuming
    /// from a breakpoint).
    pub fn skip_breakpoint_once(&mut self, pc: u64) {
        self.skip_breakpoint = Some(pc);
    }

    /// The breakpoint that made the last `run` return (with [`RunExit::Yield`]), if any.
    pub fn take_breakpoint_hit(&mut self) -> Option<u64> {
        self.breakpoint_hit.take()
    }

    /// Install (or remove) the trace observer and say what it wants to see.
    pub fn set_tracer(&mut self, tracer: Option<Box<dyn TraceSink>>, wants: TraceWants) {
        self.trace_wants = if tracer.is_some() {
            wants
        } else {
            TraceWants::default()
        };
        self.tracer = tracer;
        self.update_nochain();
    }

    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// Change the number of interpreter runs before tier-up (tests, tuning).
    pub fn set_tier_up_threshold(&mut self, runs: u32) {
        self.tier_up = runs.max(1);
    }

    /// Budget exits landing on a compiled block before it heads a region (default
    /// [`REGION_SAMPLES`]; at least 1).
    pub fn set_region_samples(&mut self, samples: u16) {
        self.region_samples = samples.max(1);
    }

    /// Change how many translations are kept before a full flush (tests, tuning).
    pub fn set_max_cached_blocks(&mut self, n: usize) {
        self.max_blocks = n.max(1);
    }

    /// Change the most guest instructions per block.
    pub fn set_max_block_insns(&mut self, n: u32) {
        self.max_insns = n.max(1);
    }

    pub fn stats(&self) -> EngineStats {
        EngineStats {
            slow_path_calls: crate::backend::slow_path_calls(),
            front_misses: self.cache.front_misses(),
            ..self.stats
        }
    }

    /// Make engines created from now on measure time as with [`Engine::set_timing`] (for
    /// `--stats`, before the machine is built).
    pub fn time_new_engines(on: bool) {
        TIME_NEW_ENGINES.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Measure host time in the interpreter and in compiled code (`--stats`): two clock reads
    /// per block run from the dispatch loop.
    pub fn set_timing(&mut self, on: bool) {
        self.timing = on;
    }

    /// The translation cache (for tests and statistics).
    pub fn cache(&self) -> &TbCache {
        &self.cache
    }

    /// Drop all translations and free all code memory.
    pub fn flush(&mut self) {
        self.jump_cache.clear();
        self.cache.clear();
        // Dropping the arena frees the code: nothing runs now (we hold `&mut self`) and the
        // chain slots pointing into it were just dropped with the cache.
        self.arena = None;
        self.code_map.clear();
        self.generation += 1;
        self.stats.flushes += 1;
    }

    /// Wait until the compile thread has finished everything queued so far and install it
    /// (tests and benchmarks; the run loop never waits).
    pub fn wait_for_compiles(&mut self) {
        // Every job sent (blocks and regions, of any generation) gets exactly one result.
        while self.in_flight > 0 {
            let Some(done) = self.worker.as_ref().and_then(|w| w.done.recv().ok()) else {
                return;
            };
            self.install_done(done);
        }
    }

    /// Run blocks until the guest needs the run loop.
    pub fn run<G: Guest + GuestState + 'static>(&mut self, guest: &mut G) -> RunExit {
        // The exit of the previous block, to fill its chain slot: (block, slot).
        let mut from: Option<(TbId, u32, u64)> = None;
        self.follow_mapping(guest.common());
        // Another vCPU sharing this engine may have turned pages into code since this one ran.
        guest.sync_code_pages();
        let mut indirect = false;
        loop {
            for page in self.code_map.take_dirty() {
                let n = self.cache.invalidate_page(page);
                self.stats.blocks_invalidated += n as u64;
                from = None;
                self.jump_cache.clear();
            }
            self.poll_compiled();
            {
                let c = guest.common();
                if c.insn_count >= c.insn_limit {
                    return RunExit::Budget;
                }
            }
            // After a `Goto`, the block it led to last time, if the chaining rule lets us skip
            // computing the key and looking it up (tb.rs); hooks want every lookup.
            let known = match from {
                Some((src, slot, generation)) if generation == self.generation && !self.hooks => {
                    self.cache.successor(src, slot).and_then(|id| {
                        let key = self.cache.get(id)?.key;
                        (key.pc == guest.common().pc).then_some((key, id))
                    })
                }
                _ => None,
            };
            let (key, id) = match known {
                Some(k) => k,
                None => {
                    let Some(key) = guest.block_key() else {
                        return RunExit::Exception;
                    };
                    if self.hooks && !self.breakpoints.is_empty() {
                        let skip = self.skip_breakpoint.take();
                        if self.breakpoints.contains(&key.pc) && skip != Some(key.pc) {
                            self.breakpoint_hit = Some(key.pc);
                            return RunExit::Yield;
                        }
                    }
                    let id = match self.cache.lookup_fast(&key) {
                        Some(id) => id,
                        None => self.translate(guest, key),
                    };
                    (key, id)
                }
            };
            if self.hooks {
                if self.trace_wants.exec {
                    if let Some(t) = self.tracer.as_mut() {
                        t.before_exec(guest, &key, id);
                    }
                }
                if self.nochain {
                    from = None;
                    indirect = false;
                }
            }
            if std::mem::take(&mut indirect) {
                if let Some(code) = self.cache.get(id).and_then(|e| e.code) {
                    self.jump_cache.insert(key.pc, key.flags, key.phys_pc, code);
                }
            }
            if let Some((src, slot, generation)) = from.take() {
                if generation == self.generation {
                    self.cache.set_successor(src, slot, id);
                    if self.cache.link(src, slot, id) {
                        self.stats.chain_links += 1;
                    } else if let Some(code) = self.cache.get(id).and_then(|e| e.code) {
                        // Not chainable (another page): compiled code finds it here.
                        self.jump_cache.insert(key.pc, key.flags, key.phys_pc, code);
                    }
                }
            }
            let (exit, last) = self.execute(guest, id);
            match exit {
                BlockExit::Goto { .. } => self.stats.lookups_goto += 1,
                BlockExit::Indirect => self.stats.lookups_indirect += 1,
                _ => self.stats.lookups_other += 1,
            }
            match exit {
                BlockExit::Goto { slot } => from = Some((last, slot, self.generation)),
                BlockExit::Indirect => indirect = true,
                BlockExit::Exit(ExitReason::Exception) | BlockExit::Fault => {
                    return RunExit::Exception
                }
                BlockExit::Exit(ExitReason::Yield) => {
                    // Most yields (a CSR write, `sfence.vma`) need nothing from the run loop:
                    // go on here, after following the TLB flushes it may have made.
                    if self.hooks || guest.yield_needs_run_loop() {
                        return RunExit::Yield;
                    }
                    self.stats.yields_kept += 1;
                    self.follow_mapping(guest.common());
                }
                BlockExit::Exit(ExitReason::Halt) => return RunExit::Halt,
                BlockExit::Budget => {
                    self.budget_sample(guest, last);
                    return RunExit::Budget;
                }
            }
        }
    }

    /// The jump cache holds what this vCPU state's mapping gave (see `JumpCache`): another
    /// state empties it, TLB flushes drop what they may have remapped.
    fn follow_mapping(&mut self, c: &mut CpuCommon) {
        let state = c as *const CpuCommon as usize;
        let flushes = c.take_tlb_flushes();
        let all = state != self.jump_regime || flushes == TlbFlushes::All;
        if all {
            if !self.jump_cache.is_empty() {
                self.stats.jump_cache_clears += 1;
            }
            self.jump_cache.clear();
            self.jump_regime = state;
        } else if let TlbFlushes::Pages(pages) = flushes {
            for &page in pages {
                self.jump_cache.clear_page(page);
            }
            self.stats.jump_cache_page_clears += pages.len() as u64;
        }
    }

    /// Lift, check and optimize the block at `key`.
    fn lift<G: Guest>(&mut self, guest: &mut G, key: &BlockKey) -> IrBlock {
        self.lift_in_builder(guest, key, self.max_insns);
        self.builder.take()
    }

    /// [`Engine::lift`], leaving the block in the engine's builder (a translation copies out
    /// only the IR it keeps).
    fn lift_in_builder<G: Guest>(&mut self, guest: &mut G, key: &BlockKey, max_insns: u32) {
        self.builder.reset(key.pc);
        let max_insns = if self.debug_mode { 1 } else { max_insns };
        guest.translate(key, max_insns, &mut self.builder);
        if cfg!(debug_assertions) {
            let ir = self.builder.block();
            if let Err(e) = crate::ir::verify::verify(ir) {
                // A lifter bug, never a guest fault: loud in debug builds.
                panic!(
                    "lifter produced an invalid block at {:#x}: {e}\n{ir}",
                    key.pc
                );
            }
        }
        // Optimized in the builder, the block leaves it at its optimized size.
        crate::opt::optimize(self.builder.block_mut());
    }

    /// Translate the block at `key` ([`Engine::lift`]) and register its code pages.
    fn translate<G: Guest + 'static>(&mut self, guest: &mut G, key: BlockKey) -> TbId {
        if self.cache.len() >= self.max_blocks {
            self.flush();
        }
        self.lift_in_builder(guest, &key, self.max_insns);
        let ir = self.builder.block();
        if self.trace_wants.translate {
            if let Some(t) = self.tracer.as_mut() {
                t.translated(guest, &key, ir);
            }
        }
        let size = ir.guest_size;
        // Jit mode compiles the block at once: keep its IR for that.
        let id = self.cache.insert(key, ir, self.kind == EngineKind::Jit);
        self.stats.blocks_translated += 1;
        for page in crate::tb::covered_pages(key.phys_pc, size) {
            if self.code_map.add_page(page) {
                guest.code_page_added(page & PAGE_MASK);
            }
        }
        id
    }

    /// Run block `id` on the tier it has reached. Returns the exit and the block that exited
    /// (another one when compiled code chained).
    fn execute<G: Guest + GuestState>(&mut self, guest: &mut G, id: TbId) -> (BlockExit, TbId) {
        if self.kind == EngineKind::Jit {
            if let Some(Tier::Interp) = self.cache.get(id).map(|e| e.tier) {
                self.compile_sync(guest, id);
            }
        }
        let Some(entry) = self.cache.get_mut(id) else {
            // The cache was flushed (code memory full) while compiling: nothing ran, so look
            // the pc up again.
            return (BlockExit::Indirect, id);
        };
        let state = guest.state_ptr();
        if let (Some(code), Some(arena)) = (entry.code, self.arena.as_ref()) {
            // Compiled code is entered at the block the state's pc names (`CodeArena::enter`);
            // checked in debug builds only, nothing on the dispatch path of a release build.
            debug_assert_eq!(
                // SAFETY: `state` is the guest's live state (as below); a read of one field.
                unsafe { (*state).pc },
                entry.key.pc,
                "entered at the state's pc"
            );
            self.stats.native_runs += 1;
            let t0 = self.timing.then(std::time::Instant::now);
            // SAFETY: `code` was installed in `arena` (flushes drop both together); `state` is
            // the guest's state, exclusively borrowed through `guest` for this call, and the
            // block was lifted by this guest, so its helpers and slow path match; chain slots
            // only ever hold entry points of this arena (tb.rs).
            let (exit, last) = unsafe { arena.enter(state, code as *const u8) };
            if let Some(t0) = t0 {
                self.stats.native_ns += t0.elapsed().as_nanos() as u64;
            }
            return (exit, TbId(last));
        }
        entry.heat = entry.heat.saturating_add(1);
        let queue = self.kind == EngineKind::Tiered
            && entry.tier == Tier::Interp
            && entry.heat >= self.tier_up
            && self.in_flight < MAX_IN_FLIGHT;
        self.stats.interp_runs += 1;
        // Timing (`--stats`) also counts the instructions interpreted: nothing of it on the
        // dispatch path of a plain run.
        // SAFETY: `state` is the guest's live state, exclusively borrowed through `guest`, and
        // no reference into it is alive here.
        let t0 = self
            .timing
            .then(|| (std::time::Instant::now(), unsafe { (*state).insn_count }));
        // SAFETY: as above; the block was lifted by this guest, so its globals lie inside the
        // state.
        let exit = unsafe { entry.interp.run(state) };
        if let Some((t0, before)) = t0 {
            self.stats.interp_ns += t0.elapsed().as_nanos() as u64;
            // SAFETY: as for `before`.
            let after = unsafe { (*state).insn_count };
            self.stats.interp_insns += after.wrapping_sub(before);
        }
        if queue {
            self.queue_compile(guest, id);
        }
        (exit, id)
    }

    fn arena(&mut self) -> Result<&mut CodeArena, BackendError> {
        if self.arena.is_none() {
            self.arena = Some(CodeArena::new(crate::backend::CODE_ARENA_BYTES)?);
        }
        self.arena
            .as_mut()
            .ok_or_else(|| BackendError::CodeFull("no arena".into()))
    }

    /// The IR of block `id` for the compiler: kept since translation, or lifted again (see
    /// `TbEntry::ir`; only blocks lying in one page drop theirs, so the lift reads their
    /// code by physical address and touches no page table). `None` if the new lift differs
    /// in size from the block (it cannot, while the block is valid; the block then stays
    /// interpreted).
    fn block_ir<G: Guest>(&mut self, guest: &mut G, id: TbId) -> Option<Arc<IrBlock>> {
        let entry = self.cache.get(id)?;
        if let Some(ir) = &entry.ir {
            return Some(ir.clone());
        }
        let key = entry.key;
        let (size, insns) = (entry.guest_size, entry.insn_count);
        let ir = self.lift(guest, &key);
        self.stats.blocks_relifted += 1;
        (ir.guest_size == size && ir.insn_count == insns).then(|| Arc::new(ir))
    }

    /// Jit mode: compile `id` now.
    fn compile_sync<G: Guest>(&mut self, guest: &mut G, id: TbId) {
        let Some(ir) = self.block_ir(guest, id) else {
            return;
        };
        let Some(entry) = self.cache.get(id) else {
            return;
        };
        let (slots, flags) = (entry.chain_slots(), entry.key.flags);
        let slots = (!self.nochain).then_some(slots);
        let jump_cache = slots.map(|_| JumpProbe {
            addr: self.jump_cache.addr(),
            flags,
        });
        let Some(compiler) = self.compiler.as_mut() else {
            return;
        };
        compiler.set_jump_cache(jump_cache);
        let t = Instant::now();
        let result = compiler.compile(&ir, id.0, slots);
        let ns = t.elapsed().as_nanos() as u64;
        self.install(&[id], 0, result, ns);
    }

    /// Send block `id` to the compile thread.
    fn queue_compile<G: Guest>(&mut self, guest: &mut G, id: TbId) {
        let Some(ir) = self.block_ir(guest, id) else {
            if let Some(entry) = self.cache.get_mut(id) {
                entry.tier = Tier::Failed;
            }
            return;
        };
        let Some(entry) = self.cache.get(id) else {
            return;
        };
        let blocks = vec![JobBlock {
            id,
            ir,
            slots: (!self.nochain).then(|| entry.chain_slots()),
            cut: false,
            phys_pc: entry.key.phys_pc,
        }];
        let flags = entry.key.flags;
        let sent = self.send_job(flags, blocks);
        if let Some(entry) = self.cache.get_mut(id) {
            entry.tier = if sent { Tier::Queued } else { Tier::Failed };
        }
    }

    /// Send `blocks` (a block, or a region headed by the first) to the compile thread under
    /// translation flags `flags`; whether it was sent.
    fn send_job(&mut self, flags: u32, blocks: Vec<JobBlock>) -> bool {
        let job = Job {
            generation: self.generation,
            flags,
            blocks,
        };
        let sent = self
            .worker
            .as_ref()
            .and_then(|w| w.jobs.as_ref())
            .is_some_and(|tx| tx.send(job).is_ok());
        if sent {
            self.in_flight += 1;
            self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.in_flight as u64);
        }
        sent
    }

    /// A budget exit from compiled code landed at block `id` (the time slice ended there): one
    /// more sample of where guest time goes. At [`REGION_SAMPLES`] samples a compiled block is
    /// compiled again with the loops through it as a region ([`Engine::region_of`]); its
    /// current code runs until the region is installed. Each block is tried once, and not at
    /// all once it was sent as a member of another block's region.
    fn budget_sample<G: Guest>(&mut self, guest: &mut G, id: TbId) {
        let off = self.kind != EngineKind::Tiered || self.nochain || self.debug_mode;
        if off || self.region_insns == 0 || self.in_flight >= MAX_IN_FLIGHT {
            return;
        }
        let Some(e) = self.cache.get_mut(id) else {
            return;
        };
        if e.tier != Tier::Compiled || e.region != NO_SUCCESSOR || !e.is_valid() {
            return;
        }
        e.samples = e.samples.saturating_add(1);
        if e.samples < self.region_samples {
            return;
        }
        e.region = id.0;
        let flags = e.key.flags;
        let Some(ir) = self.block_ir(guest, id) else {
            return;
        };
        let found = self.region_of(guest, id, ir);
        if found.len() < 2 {
            // A block on its own is compiled already (with its self loop, if any).
            return;
        }
        let mut blocks = Vec::with_capacity(found.len());
        for (m, ir, cut) in found {
            if let Some(e) = self.cache.get_mut(m) {
                // A member does not head a region of its own: the loop through it is
                // compiled here (its own code reaches this region through its exits).
                e.region = id.0;
                blocks.push(JobBlock {
                    id: m,
                    ir,
                    slots: Some(e.chain_slots()),
                    cut,
                    phys_pc: e.key.phys_pc,
                });
            }
        }
        self.send_job(flags, blocks);
    }

    /// The blocks to compile with hot block `head` (whose IR is `head_ir`), with their IR:
    /// `head` first, then the blocks of the loops through it. Candidates are the blocks its
    /// `Goto` exits name, already translated under the same flags, lying in one physical page
    /// and warm themselves (a quarter of the tier-up runs), then theirs, breadth first, up to
    /// twice the region's limits. A target in the jumping block's virtual page is where that
    /// block's page maps; one in another page is where the jump cache says it maps (no entry,
    /// no candidate), and the region's jump to it checks that entry again (lower.rs). Of
    /// those, the blocks from which `head` is reached again are kept, in the order found, up
    /// to [`MAX_REGION_BLOCKS`] blocks and [`MAX_REGION_INSNS`] instructions: the exits that
    /// leave the loop do not use up the region's size. Once installed, a write to any
    /// member's page invalidates every member ([`Engine::install`]).
    ///
    /// Blocks run on past conditional branches, so a loop's blocks overlap: one often ends
    /// with all of another (the block at a branch's target is the tail of the block that
    /// falls through to it). Where a block's tail is exactly another block (same last
    /// instruction), the block is cut where the other starts and the other joins the region
    /// ([`RegionBlock::cut`]): that tail is compiled once.
    ///
    /// Just `head` without chaining, in debug mode, or outside tiered mode. The flag says
    /// whether a block was cut.
    fn region_of<G: Guest>(
        &mut self,
        guest: &mut G,
        head: TbId,
        head_ir: Arc<IrBlock>,
    ) -> Vec<(TbId, Arc<IrBlock>, bool)> {
        let mut found = vec![(head, head_ir)];
        let Some(h) = self.cache.get(head) else {
            return found.into_iter().map(|(t, ir)| (t, ir, false)).collect();
        };
        let off = self.nochain || self.debug_mode || self.kind != EngineKind::Tiered;
        if off || self.region_insns == 0 {
            return found.into_iter().map(|(t, ir)| (t, ir, false)).collect();
        }
        let key = h.key;
        let min_heat = (self.tier_up / 4).max(1);
        let mut explored = h.insn_count;
        let explore_insns = self.region_insns.saturating_mul(2);
        // Each found block's edges: indices into `found`.
        let mut edges: Vec<Vec<usize>> = Vec::new();
        let mut i = 0;
        while let Some((from, ir)) = found.get(i).cloned() {
            i += 1;
            let Some(from) = self.cache.get(from).map(|e| e.key) else {
                break;
            };
            let mut out = Vec::new();
            for op in &ir.ops {
                let crate::ir::Op::Exit(crate::ir::Terminal::Goto { pc }) = *op else {
                    continue;
                };
                // In the page of the block jumping, the pc maps where that block's does;
                // in another, where it mapped when the jump cache last saw it (which the
                // region's guard on the jump checks again, lower.rs).
                let phys_pc = if pc & PAGE_MASK == from.pc & PAGE_MASK {
                    (from.phys_pc & PAGE_MASK) | (pc & !PAGE_MASK)
                } else {
                    match self.jump_cache.phys(pc, key.flags) {
                        Some(phys) => phys,
                        None => continue,
                    }
                };
                let target = BlockKey {
                    pc,
                    phys_pc,
                    flags: key.flags,
                };
                let Some(t) = self.cache.lookup(&target) else {
                    continue;
                };
                if let Some(k) = found.iter().position(|f| f.0 == t) {
                    out.push(k);
                    continue;
                }
                let Some(e) = self.cache.get(t) else {
                    continue;
                };
                let fits = found.len() < 2 * MAX_REGION_BLOCKS
                    && self.cache.pages(t).len() == 1
                    && e.heat >= min_heat
                    && explored + e.insn_count <= explore_insns;
                if !fits {
                    continue;
                }
                let count = e.insn_count;
                if let Some(ir) = self.block_ir(guest, t) {
                    explored += count;
                    out.push(found.len());
                    found.push((t, ir));
                }
            }
            edges.push(out);
        }
        // The blocks from which `head` is reached again inside what was found.
        let mut back = vec![false; found.len()];
        let mut changed = true;
        while changed {
            changed = false;
            for k in 0..found.len() {
                let reaches = edges
                    .get(k)
                    .is_some_and(|out| out.iter().any(|&t| t == 0 || back.get(t) == Some(&true)));
                if reaches && !back[k] {
                    back[k] = true;
                    changed = true;
                }
            }
        }
        // Where each found block could be cut: (instructions kept, the found block that is
        // the rest of it).
        let cuts: Vec<Option<(u32, usize)>> = found
            .iter()
            .map(|(_, ir)| Self::cut_point(ir, &found))
            .collect();
        // Of the blocks back to `head`, the ones reached from it through kept blocks, while
        // they fit; a kept block's rest joins with it (together no larger than the block).
        let mut kept = vec![false; found.len()];
        let mut reached = vec![false; found.len()];
        let (mut blocks, mut insns) = (0, 0);
        let mut looped = false;
        for k in 0..found.len() {
            let size = found[k].1.insn_count;
            let joined = std::iter::successors(Some(k), |&j| cuts[j].map(|(_, rest)| rest))
                .filter(|&j| !kept[j])
                .count();
            let fits = blocks + joined <= MAX_REGION_BLOCKS && insns + size <= self.region_insns;
            if kept[k] || !(k == 0 || (back[k] && reached[k] && fits)) {
                continue;
            }
            looped |= k > 0;
            let mut at = Some(k);
            while let Some(j) = at.filter(|&j| !kept[j]) {
                kept[j] = true;
                blocks += 1;
                insns += cuts[j].map_or(found[j].1.insn_count, |(n, _)| n);
                for &t in edges.get(j).map_or(&[][..], |o| &o[..]) {
                    if let Some(r) = reached.get_mut(t) {
                        *r = true;
                    }
                }
                at = cuts[j].map(|(_, rest)| rest);
            }
        }
        // Without a loop back to `head` the region would be `head` again, maybe cut in parts.
        if !looped {
            found.truncate(1);
            return found.into_iter().map(|(t, ir)| (t, ir, false)).collect();
        }
        // Cut the kept blocks whose rest is kept (all of them: a rest joins its block).
        let mut region = Vec::new();
        for (k, (t, ir)) in found.iter().enumerate() {
            if !kept[k] {
                continue;
            }
            let cut = cuts[k]
                .filter(|&(_, rest)| kept[rest])
                .and_then(|(n, rest)| self.cut_block(guest, *t, ir, n, found[rest].1.start_pc));
            match cut {
                Some(short) => region.push((*t, short, true)),
                None => region.push((*t, ir.clone(), false)),
            }
        }
        region
    }

    /// Where `ir` could be cut ([`Engine::region_of`]): its first instruction after the first
    /// at which one of `found` starts, if the rest of `ir` is exactly that block (same last
    /// instruction, so the same exits at the same instruction counts). Returns the
    /// instructions before it and the block's index.
    fn cut_point(ir: &IrBlock, found: &[(TbId, Arc<IrBlock>)]) -> Option<(u32, usize)> {
        let end = ir.start_pc.wrapping_add(u64::from(ir.guest_size));
        let mut n = 0u32;
        for op in &ir.ops {
            let crate::ir::Op::InsnStart { pc, .. } = *op else {
                continue;
            };
            if n > 0 {
                let rest = found.iter().position(|(_, r)| {
                    r.start_pc == pc
                        && r.start_pc.wrapping_add(u64::from(r.guest_size)) == end
                        && r.insn_count + n == ir.insn_count
                });
                if let Some(j) = rest {
                    return Some((n, j));
                }
            }
            n += 1;
        }
        None
    }

    /// Block `id` (IR `ir`) lifted again with only its first `n` instructions, ending in a
    /// `Goto` to `rest` (the pc of its next instruction), with the same exits before it;
    /// `None` if the lift does not come out so.
    fn cut_block<G: Guest>(
        &mut self,
        guest: &mut G,
        id: TbId,
        ir: &IrBlock,
        n: u32,
        rest: u64,
    ) -> Option<Arc<IrBlock>> {
        let key = self.cache.get(id)?.key;
        self.lift_in_builder(guest, &key, n);
        let short = self.builder.take();
        self.stats.blocks_relifted += 1;
        let gotos = |b: &IrBlock| -> Vec<u64> {
            b.ops
                .iter()
                .filter_map(|op| match *op {
                    crate::ir::Op::Exit(crate::ir::Terminal::Goto { pc }) => Some(pc),
                    _ => None,
                })
                .collect()
        };
        let (mine, whole) = (gotos(&short), gotos(ir));
        let ends_at_rest = matches!(
            short.ops.last(),
            Some(crate::ir::Op::Exit(crate::ir::Terminal::Goto { pc })) if *pc == rest
        );
        let same_exits = mine
            .split_last()
            .is_some_and(|(_, before)| whole.starts_with(before));
        let ok = short.insn_count == n
            && short.start_pc.wrapping_add(u64::from(short.guest_size)) == rest
            && ends_at_rest
            && same_exits;
        ok.then(|| Arc::new(short))
    }

    /// Install whatever the compile thread has finished.
    fn poll_compiled(&mut self) {
        if self.in_flight == 0 {
            return;
        }
        let Some(sent) = self.worker.as_ref().map(|w| w.sent.load(Ordering::Acquire)) else {
            return;
        };
        while self.received < sent {
            let Some(done) = self.worker.as_ref().and_then(|w| w.done.try_recv().ok()) else {
                return;
            };
            self.install_done(done);
        }
    }

    fn install_done(&mut self, done: Done) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.received += 1;
        if done.generation != self.generation {
            return;
        }
        self.install(&done.ids, done.cut, done.result, done.ns);
    }

    /// Install the code compiled for `ids` (a block, or a region: the code of each of its
    /// blocks, `cut` of which were cut).
    fn install(
        &mut self,
        ids: &[TbId],
        cut: u64,
        result: Result<CompiledBlock, BackendError>,
        ns: u64,
    ) {
        let Some(&id) = ids.first() else {
            return;
        };
        self.stats.compile_ns += ns;
        let code = match result {
            Ok(code) => code,
            Err(e) => {
                log::debug!("block {:?} stays on its current tier: {e}", id);
                self.stats.compile_failures += 1;
                if let Some(entry) = self.cache.get_mut(id).filter(|e| e.code.is_none()) {
                    entry.tier = Tier::Failed;
                }
                return;
            }
        };
        // A region holds a copy of every member's code: all must still be current.
        if !ids
            .iter()
            .all(|&m| self.cache.get(m).is_some_and(|e| e.is_valid()))
        {
            return;
        }
        if ids.len() == 1 && self.cache.get(id).is_some_and(|e| e.code.is_some()) {
            // A region holding the block came first (its code starts at the block too): keep
            // it.
            return;
        }
        let pc = self.cache.get(id).map_or(0, |e| e.key.pc);
        let installed = match self.arena() {
            Ok(arena) => arena.install_for(&code, pc, ids.len() > 1),
            Err(e) => Err(e),
        };
        match installed {
            Ok(ptr) => {
                if ids.len() > 1 {
                    self.stats.regions_compiled += 1;
                    self.stats.region_blocks += ids.len() as u64;
                    self.stats.region_blocks_cut += cut;
                    // Every member's code is the region, which holds code from every
                    // member's page: a write to any of them invalidates all.
                    let pages: BTreeSet<u64> = ids
                        .iter()
                        .flat_map(|&m| self.cache.pages(m).to_vec())
                        .collect();
                    for &m in ids {
                        for &p in &pages {
                            self.cache.invalidate_with(m, p);
                        }
                    }
                }
                // A region is the code of each of its blocks (lower.rs: it starts at the
                // block the pc names): what was chained to their old code, and the jump
                // cache, go to the new (the old stays valid, and unused, until the next
                // flush). The region's code reads every member's chain slots.
                for &m in ids {
                    // Every member is valid (checked above).
                    let Some((old, key)) = self.cache.get(m).map(|e| (e.code, e.key)) else {
                        continue;
                    };
                    if old.is_none() {
                        self.stats.blocks_compiled += 1;
                    }
                    self.cache.set_code(m, ptr as usize);
                    if let Some(old) = old {
                        if self.jump_cache.get(key.pc, key.flags) == Some(old) {
                            self.jump_cache
                                .insert(key.pc, key.flags, key.phys_pc, ptr as usize);
                        }
                    }
                    if let Some(e) = self.cache.get_mut(m) {
                        e.slots_read = true;
                    }
                }
            }
            Err(e) => {
                // The arena is full: start over (QEMU does the same); this block will be
                // translated again and tier up again.
                log::info!("code cache full ({e}); flushing all translations");
                self.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_can_move_to_a_vcpu_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<Engine>();
        let e = Engine::new(EngineKind::Tiered, Arc::new(CodeMap::new()));
        assert!(e.is_ok_and(|e| e.kind() == EngineKind::Tiered && e.cache().is_empty()));
    }
}
