//! Lowering of one IR block to a Cranelift function (the semantics are those of `ir/mod.rs`,
//! `exec.rs` and the interpreter).
//!
//! Guest globals: a global whose every access in the block has the same offset and type, and
//! which overlaps no other access nor the `CpuCommon` header, lives in a Cranelift variable.
//! It is loaded once at the latest point that every later path passes through before its first
//! use (branches only go forward, so that point is found on the linear op order), or not at all
//! when its first access is a store at such a point. Any global stored to earlier in the linear
//! order is written back at exits, before helpers that read or write state, before each guest
//! memory access and on cold fault paths (storing a clean value is harmless); after a helper
//! that writes state every loaded global is reloaded. At a memory access the write-back is on
//! the hot path, as TCG syncs its globals before a `qemu_ld`/`qemu_st`, and marks the globals
//! clean: each value is stored once, not once more in the slow path of every later access of
//! its block, and no value has to stay live into those cold paths. That cuts a memory-heavy
//! block's compile time by about 40 % (`micro -- cranelift_compile`: block/64
//! 1.19 → 0.71 ms, block/32 0.56 → 0.36 ms) at the cost of a store to the state on the hot
//! path, which 7-Zip's run time does not show. The instruction count is kept as the entry
//! value plus a constant per instruction (the position of the `InsnStart` in the block).
//!
//! Exits: a `Goto` exit tail-calls whatever its chain slot holds, passing its exit code; an
//! empty slot (0) is replaced by the unlinked-exit stub's address with a `select`, and the
//! stub returns that code to the engine. One block per exit instead of a branch to two
//! (chained, unlinked): compiling the 46,822 blocks of a boot under `--engine jit` took 6–7 %
//! less time (9,387 → 8,706 and 7,962 → 7,454 ms, two alternated pairs). Exits to another
//! page still branch, as an empty slot sends them to the jump cache; so do jump-cache probes
//! (`Indirect` exits): the same `select` there made that compile slower (8,926 and 9,116 ms
//! against 7,804 and 8,702).
//!
//! Regions: with chaining on, several blocks can be lowered into one function
//! ([`RegionMember`]; the engine picks blocks that form a loop through the first), and a `Goto`
//! to the start of any of them (the first block's own start included: a self loop) becomes a
//! jump inside the function. A jump to a member in another virtual page is guarded: the
//! guest may have remapped that page since the region was formed, so the jump stays inside
//! only while the jump cache's entry for the member's pc names the member's physical address
//! (the engine drops a page's entries when the guest flushes it from its TLB); otherwise it is
//! the usual exit to another page. The first block's globals are loaded on entry, before
//! the loop it heads; other globals where a block first needs them, unless they are defined
//! on every jump into it (`plan`): a value stays in a register across blocks and iterations.
//! What is dirty is written back at the jump, as at a branch, so each block starts clean. The
//! jump does what the exit and the next block's entry would: it moves the instruction count
//! on (in a register, and into the state, with the target's pc where it changes, as the
//! target's memory slow paths count from them: site.rs) and checks the budget, leaving with
//! `Budget` in a cold block, so a region stops at the instruction its blocks would stop at
//! when chained. Each block keeps its own id in exit codes and its own chain slots, so the engine
//! links and remembers exits per block as usual.
//!
//! A region is the code of every block in it (the engine installs it for each): whoever enters
//! compiled code — the dispatch loop, a chained exit, the jump cache — has stored the pc of
//! the block it enters, so the function's entry picks that block's start by the state's pc,
//! and loads there the globals the jumps into it would have brought. A loop entered at any of
//! its blocks runs in the region, not in its blocks' own code until it reaches the first.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::{
    types, AbiParam, Block, InstBuilder, MemFlagsData, Signature, StackSlotData, StackSlotKind,
    Type as ClType, Value as ClValue,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, Variable};

use super::site::SlowSite;
use super::{block_signature, encode_exit, BackendError, ChainSlots};
use crate::env::{
    tlb_table_offset, CpuCommon, NB_MMU_MODES, OFFSET_EXCEPTION_PENDING, OFFSET_INSN_COUNT,
    OFFSET_INSN_LIMIT, OFFSET_PC, OFFSET_TLB_ADDEND, OFFSET_TLB_ADDR_READ, OFFSET_TLB_ADDR_WRITE,
    OFFSET_TLB_PTR, PAGE_BITS, PAGE_MASK, TLB_ENTRIES, TLB_ENTRY_SIZE,
};
use crate::exec::BlockExit;
use crate::ir::{
    BinOp, Cond, ExitReason, ExtKind, IrBlock, Label, MemOp, Op, Terminal, Type, UnOp, Value,
};

const _: () = assert!(TLB_ENTRY_SIZE.is_power_of_two() && TLB_ENTRIES.is_power_of_two());
const TLB_ENTRY_SHIFT: u32 = TLB_ENTRY_SIZE.trailing_zeros();
/// `(vaddr >> TLB_INDEX_SHIFT) & TLB_OFFSET_MASK` is the byte offset of the entry in its table.
const TLB_INDEX_SHIFT: u32 = PAGE_BITS - TLB_ENTRY_SHIFT;
const TLB_OFFSET_MASK: u64 = ((TLB_ENTRIES as u64) - 1) << TLB_ENTRY_SHIFT;

fn cl_type(ty: Type) -> ClType {
    match ty {
        Type::I8 => types::I8,
        Type::I16 => types::I16,
        Type::I32 => types::I32,
        Type::I64 => types::I64,
        Type::I128 => types::I128,
        Type::F32 => types::F32,
        Type::F64 => types::F64,
    }
}

fn int_cc(c: Cond) -> IntCC {
    match c {
        Cond::Eq => IntCC::Equal,
        Cond::Ne => IntCC::NotEqual,
        Cond::Lt => IntCC::SignedLessThan,
        Cond::Ge => IntCC::SignedGreaterThanOrEqual,
        Cond::Ltu => IntCC::UnsignedLessThan,
        Cond::Geu => IntCC::UnsignedGreaterThanOrEqual,
        Cond::Gt => IntCC::SignedGreaterThan,
        Cond::Le => IntCC::SignedLessThanOrEqual,
        Cond::Gtu => IntCC::UnsignedGreaterThan,
        Cond::Leu => IntCC::UnsignedLessThanOrEqual,
    }
}

fn flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

/// A global kept in a Cranelift variable.
struct Cached {
    offset: u32,
    ty: Type,
    var: Variable,
}

/// One block of a function ([`lower_region`]): its IR, its id (named in its exit codes) and its
/// chain slots.
#[derive(Clone, Copy)]
pub struct RegionMember<'a> {
    pub block: &'a IrBlock,
    pub id: u32,
    pub slots: Option<ChainSlots>,
    /// The block is a longer block's first instructions, cut where another member starts:
    /// its last op, a `Goto` to that member, continues the same block, so the jump does not
    /// check the budget (the longer block has no boundary there). The engine cuts only where
    /// the rest of the longer block is the other member exactly (same last instruction).
    pub cut: bool,
    /// The guest physical address of the block's first instruction (`BlockKey::phys_pc`): a
    /// jump to it from a member in another virtual page continues inside the function only
    /// while the page still maps there ([`Lower::exit`]).
    pub phys_pc: u64,
}

/// Whether `block` calls a helper that stores the pc and instruction count or may change the
/// state (its memory slow paths then pass absolute sites: site.rs).
fn calls_state_helpers(block: &IrBlock) -> bool {
    block.ops.iter().any(|op| match op {
        Op::Call { helper, .. } => block
            .helper(*helper)
            .is_none_or(|d| d.effects.reads_state || d.effects.writes_state),
        _ => false,
    })
}

/// The globals of `block` in `(offset, type, op index, is a store)` order of access.
fn global_accesses(block: &IrBlock) -> impl Iterator<Item = (u32, Type, usize, bool)> + '_ {
    block
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match *op {
            Op::LoadGlobal { ty, offset, .. } => Some((offset, ty, i, false)),
            Op::StoreGlobal { ty, offset, .. } => Some((offset, ty, i, true)),
            _ => None,
        })
}

/// The globals that can live in a variable, given every access of the function: each with its
/// type and its first access (op index, whether a store). A global qualifies when every access
/// has the same type and overlaps no other access nor the `CpuCommon` header.
fn cacheable(accesses: &[(u32, Type, usize, bool)]) -> Vec<(u32, Type, usize, bool)> {
    let mut by_offset: HashMap<u32, (Type, usize, bool, bool)> = HashMap::new();
    for &(off, ty, i, is_store) in accesses {
        let e = by_offset.entry(off).or_insert((ty, i, is_store, true));
        if e.0 != ty {
            e.3 = false;
        }
    }
    // Every access's byte range (not one per offset: an offset accessed with two types may
    // reach into a neighbour).
    let mut ranges: Vec<(u32, u32)> = accesses
        .iter()
        .map(|&(o, ty, ..)| (o, o.saturating_add(ty.bytes())))
        .collect();
    ranges.sort_unstable();
    ranges.dedup();
    let header_end = std::mem::size_of::<CpuCommon>() as u32;
    let mut out: Vec<_> = by_offset
        .iter()
        .filter(|&(&off, &(ty, _, _, consistent))| {
            let end = off.saturating_add(ty.bytes());
            let overlaps = ranges
                .iter()
                .any(|&(o, e)| (o, e) != (off, end) && o < end && off < e);
            consistent && !overlaps && off >= header_end
        })
        .map(|(&off, &(ty, first, first_is_store, _))| (off, ty, first, first_is_store))
        .collect();
    out.sort_unstable_by_key(|&(o, ..)| o);
    out
}

/// Where one block first defines each cached global (indexed like [`Lower::cached`]): `None`
/// if it does not access it, else the op before which it is loaded (`None`: its first access
/// is a store that every later path passes) and the op from which it is defined.
type MemberPlan = Vec<Option<(Option<usize>, usize)>>;

/// The plan of a function: its cached globals (offset, type), each block's [`MemberPlan`],
/// which globals each block finds defined on entry, and which the function loads on entry.
struct Plan {
    globals: Vec<(u32, Type)>,
    members: Vec<MemberPlan>,
    avail_in: Vec<Vec<bool>>,
    entry_loads: Vec<bool>,
}

/// `crossed[p]`: some branch from before op `p` lands at or after `p`, so a value defined
/// just before `p` does not reach every later op.
fn crossed_points(block: &IrBlock) -> Vec<bool> {
    let n = block.ops.len();
    let mut label_pos: HashMap<Label, usize> = HashMap::new();
    for (i, op) in block.ops.iter().enumerate() {
        if let Op::Label(l) = op {
            label_pos.insert(*l, i);
        }
    }
    let mut diff = vec![0i32; n + 2];
    for (s, op) in block.ops.iter().enumerate() {
        let l = match op {
            Op::Br(l) | Op::BrCond { label: l, .. } => l,
            _ => continue,
        };
        if let Some(&t) = label_pos.get(l) {
            if t > s {
                diff[s + 1] += 1;
                diff[t + 1] -= 1;
            }
        }
    }
    let mut crossed = vec![false; n + 1];
    let mut acc = 0;
    for (p, c) in crossed.iter_mut().enumerate() {
        acc += diff[p];
        *c = acc > 0;
    }
    crossed
}

/// Each cached global's first definition in `block`: loaded at the latest point that every
/// later path passes through before its first use (branches only go forward, so that point
/// is found on the linear op order), or not at all when its first access is a store at such
/// a point.
fn member_plan(block: &IrBlock, index: &HashMap<u32, usize>, cached: usize) -> MemberPlan {
    let crossed = crossed_points(block);
    let mut plan = vec![None; cached];
    for (off, _, first, is_store) in global_accesses(block) {
        let Some(slot) = index.get(&off).and_then(|&c| plan.get_mut(c)) else {
            continue;
        };
        if slot.is_some() {
            continue;
        }
        *slot = Some(if is_store && !crossed[first] {
            (None, first)
        } else {
            let mut p = first;
            while crossed[p] {
                p -= 1;
            }
            (Some(p), p)
        });
    }
    plan
}

/// Plan the globals of a function of `members` (one block, or a region when `region`).
///
/// A region's first block has the globals it reads loaded in the function's entry block,
/// before the loop it heads, so values carried around the loop stay in registers. Every other global is
/// loaded where its block first needs it, unless it is defined on every jump into that
/// block, which a must-be-defined fixed point over the jumps decides (a global defined before
/// a jump stays defined: a helper that writes state reloads what is defined).
fn plan(members: &[RegionMember<'_>], region: bool) -> Plan {
    let accesses: Vec<_> = members
        .iter()
        .flat_map(|m| global_accesses(m.block))
        .collect();
    let globals: Vec<(u32, Type)> = cacheable(&accesses)
        .into_iter()
        .map(|(off, ty, ..)| (off, ty))
        .collect();
    let index: HashMap<u32, usize> = globals
        .iter()
        .enumerate()
        .map(|(c, &(off, _))| (off, c))
        .collect();
    let n = globals.len();
    let plans: Vec<MemberPlan> = members
        .iter()
        .map(|m| member_plan(m.block, &index, n))
        .collect();
    let entry_loads: Vec<bool> = match plans.first() {
        Some(head) if region => head
            .iter()
            .map(|e| matches!(e, Some((Some(_), _))))
            .collect(),
        _ => vec![false; n],
    };
    // Jumps inside the function: (source block, op index of the `Goto`, target block).
    let mut jumps = Vec::new();
    if region {
        for (m, member) in members.iter().enumerate() {
            for (q, op) in member.block.ops.iter().enumerate() {
                if let Op::Exit(Terminal::Goto { pc }) = *op {
                    if let Some(t) = members.iter().position(|t| t.block.start_pc == pc) {
                        jumps.push((m, q, t));
                    }
                }
            }
        }
    }
    let start = |t: usize| {
        if t == 0 {
            entry_loads.clone()
        } else {
            vec![true; n]
        }
    };
    let mut avail_in: Vec<Vec<bool>> = (0..members.len()).map(start).collect();
    let mut changed = true;
    while changed {
        changed = false;
        for t in 0..members.len() {
            let mut new = start(t);
            let mut reached = t == 0;
            for &(m, q, _) in jumps.iter().filter(|j| j.2 == t) {
                reached = true;
                for (c, v) in new.iter_mut().enumerate() {
                    let before = plans[m][c].is_some_and(|(_, d)| d < q);
                    *v &= avail_in[m][c] || before;
                }
            }
            if !reached {
                new = vec![false; n];
            }
            if new != avail_in[t] {
                avail_in[t] = new;
                changed = true;
            }
        }
    }
    Plan {
        globals,
        members: plans,
        avail_in,
        entry_loads,
    }
}

struct Lower<'a, 'f> {
    b: FunctionBuilder<'f>,
    /// The blocks of the function; the first is its entry.
    members: &'a [RegionMember<'a>],
    /// Whether some `Goto` jumps to a member's start inside the function (see module docs).
    region: bool,
    /// Entry of each member (region mode), sealed at the end (jumps back come later).
    heads: Vec<Block>,
    /// The member being lowered, its IR, id and chain slots.
    member: usize,
    block: &'a IrBlock,
    block_id: u32,
    slots: Option<ChainSlots>,
    state: ClValue,
    /// Address of the guest's TLB tables (`CpuCommon::tlb`), loaded on entry.
    tlb_base: ClValue,
    /// Instruction count on entry minus the instructions "already accounted" (see module docs).
    base: Variable,
    values: Vec<Option<Variable>>,
    labels: Vec<Block>,
    cached: Vec<Cached>,
    cached_by_offset: HashMap<u32, usize>,
    defined: Vec<bool>,
    dirty: Vec<bool>,
    /// Per cached global, the op of the current block before which it is loaded unless
    /// already defined (see [`member_plan`]).
    load_at: Vec<Option<usize>>,
    /// Each block's [`MemberPlan`], and the globals it finds defined on entry.
    member_plans: Vec<MemberPlan>,
    avail_in: Vec<Vec<bool>>,
    /// Instructions started so far, and the PC of the current one.
    insn_idx: u32,
    insn_pc: u64,
    goto_slot: u32,
    /// The op being lowered is the last of a cut member ([`RegionMember::cut`]).
    at_cut: bool,
    /// The state holds the current member's start pc and instruction count wherever its
    /// code runs, so a memory slow path passes its distance from them (site.rs); false for a
    /// member whose helpers store them or may change the state.
    relative_sites: bool,
    terminated: bool,
    helper_sig: Option<cranelift_codegen::ir::SigRef>,
    /// The cold block every memory slow path branches to when it recorded a fault: the slow
    /// path already has the globals, pc and instruction count, so it only returns `Fault`.
    mem_fault: Option<Block>,
    /// The engine's jump cache ([`super::JumpCache`]) and this block's flags, if `Indirect`
    /// exits probe it.
    jump_cache: Option<super::JumpProbe>,
    /// The unlinked-exit stub ([`super::unlinked_exit_stub`]), if it could be built.
    exit_stub: Option<usize>,
    frontend: TargetFrontendConfig,
}

/// Lower one block, or a region of blocks (the first is the entry; see the module docs), into
/// the function `b` builds.
pub(super) fn lower_region(
    b: FunctionBuilder<'_>,
    members: &[RegionMember<'_>],
    jump_cache: Option<super::JumpProbe>,
    frontend: TargetFrontendConfig,
) -> Result<(), BackendError> {
    let Some(first) = members.first() else {
        return Err(BackendError::Malformed("a region without blocks".into()));
    };
    // Jumps inside the function replace chained exits: only with chaining on.
    let region = first.slots.is_some()
        && members.iter().any(|m| {
            m.block.ops.iter().any(|op| match op {
                Op::Exit(Terminal::Goto { pc }) => members.iter().any(|t| t.block.start_pc == *pc),
                _ => false,
            })
        });
    // Without jumps between them, only the first block is reachable.
    let members = if region { members } else { &members[..1] };
    let plan = plan(members, region);
    let l = Lower {
        b,
        members,
        region,
        heads: Vec::new(),
        member: 0,
        block: first.block,
        block_id: first.id,
        slots: first.slots,
        state: ClValue::from_u32(0),
        tlb_base: ClValue::from_u32(0),
        base: Variable::from_u32(0),
        values: Vec::new(),
        labels: Vec::new(),
        cached: Vec::new(),
        cached_by_offset: HashMap::new(),
        defined: Vec::new(),
        dirty: Vec::new(),
        load_at: Vec::new(),
        member_plans: Vec::new(),
        avail_in: Vec::new(),
        insn_idx: 0,
        relative_sites: false,
        insn_pc: first.block.start_pc,
        goto_slot: 0,
        at_cut: false,
        terminated: false,
        helper_sig: None,
        mem_fault: None,
        jump_cache,
        exit_stub: super::unlinked_exit_stub(),
        frontend,
    };
    l.run(plan)
}

impl Lower<'_, '_> {
    fn run(mut self, plan: Plan) -> Result<(), BackendError> {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.switch_seal(entry);
        self.state = self.b.block_params(entry)[0];
        // The TLB tables live on the heap (env.rs): their address, once per function, in the
        // entry block, which dominates every access (in region mode each member loads it
        // again: `lower_member`).
        if !self.region {
            self.tlb_base = self.load_state(types::I64, OFFSET_TLB_PTR);
        }
        for &(offset, ty) in &plan.globals {
            let var = self.b.declare_var(cl_type(ty));
            self.cached_by_offset.insert(offset, self.cached.len());
            self.cached.push(Cached { offset, ty, var });
        }
        self.member_plans = plan.members;
        self.avail_in = plan.avail_in;
        self.defined = vec![false; self.cached.len()];
        self.dirty = vec![false; self.cached.len()];

        // Budget check on entry (exec.rs): run nothing if the budget is spent.
        let count = self.load_state(types::I64, OFFSET_INSN_COUNT);
        let limit = self.load_state(types::I64, OFFSET_INSN_LIMIT);
        self.base = self.b.declare_var(types::I64);
        self.b.def_var(self.base, count);
        let spent = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, count, limit);
        let budget = self.b.create_block();
        let body = self.b.create_block();
        self.b.ins().brif(spent, budget, &[], body, &[]);
        self.b.set_cold_block(budget);
        self.switch_seal(budget);
        if !self.region {
            let pc = self.b.ins().iconst(types::I64, self.block.start_pc as i64);
            self.store_state(pc, OFFSET_PC);
        }
        self.ret(BlockExit::Budget);
        self.switch_seal(body);
        self.terminated = false;

        if self.region {
            self.heads = self.members.iter().map(|_| self.b.create_block()).collect();
            // Entered at the member whose start is in the state's pc (module docs): it loads
            // the globals its jumps in bring. A self-looping block alone has none to pick.
            // The first block, where a loop is usually entered, is tested first.
            if self.members.len() > 1 {
                let pc = self.load_state(types::I64, OFFSET_PC);
                let start = self.members[0].block.start_pc;
                let at = self.b.ins().icmp_imm_s(IntCC::Equal, pc, start as i64);
                let at_head = self.b.create_block();
                let next = self.b.create_block();
                self.b.ins().brif(at, at_head, &[], next, &[]);
                self.switch_seal(next);
                for k in 1..self.members.len() {
                    let start = self.members[k].block.start_pc;
                    let at = self.b.ins().icmp_imm_s(IntCC::Equal, pc, start as i64);
                    let enter = self.b.create_block();
                    let next = self.b.create_block();
                    self.b.ins().brif(at, enter, &[], next, &[]);
                    self.switch_seal(enter);
                    let brought = self.avail_in.get(k).cloned().unwrap_or_default();
                    for (c, &load) in brought.iter().enumerate() {
                        if load {
                            self.reload(c);
                        }
                    }
                    self.b.ins().jump(self.heads[k], &[]);
                    self.switch_seal(next);
                }
                self.b.ins().jump(at_head, &[]);
                self.switch_seal(at_head);
            }
            // At the first block, its globals are loaded before the loop it heads (`plan`).
            for (c, &load) in plan.entry_loads.iter().enumerate() {
                if load {
                    self.reload(c);
                }
            }
            let head = self.heads[0];
            self.b.ins().jump(head, &[]);
        }
        for i in 0..self.members.len() {
            self.lower_member(i)?;
        }
        if let Some(fb) = self.mem_fault {
            self.switch_seal(fb);
            self.ret(BlockExit::Fault);
        }
        self.b.seal_all_blocks();
        self.b.finalize(self.frontend);
        Ok(())
    }

    /// Emit member `i`'s ops (in region mode, from its head block on).
    fn lower_member(&mut self, i: usize) -> Result<(), BackendError> {
        let m = self.members[i];
        let block = m.block;
        self.member = i;
        self.block = block;
        self.block_id = m.id;
        self.slots = m.slots;
        self.values = vec![None; block.values.len()];
        self.labels = (0..block.labels).map(|_| self.b.create_block()).collect();
        self.insn_idx = 0;
        self.insn_pc = block.start_pc;
        self.goto_slot = 0;
        self.relative_sites = !calls_state_helpers(block);
        self.dirty.iter_mut().for_each(|d| *d = false);
        self.defined = self.avail_in.get(i).cloned().unwrap_or_default();
        self.defined.resize(self.cached.len(), false);
        self.load_at = self
            .member_plans
            .get(i)
            .map(|p| p.iter().map(|e| e.and_then(|(at, _)| at)).collect())
            .unwrap_or_default();
        self.load_at.resize(self.cached.len(), None);
        if let Some(&head) = self.heads.get(i) {
            // Not sealed until the end: jumps back to it come later.
            self.b.switch_to_block(head);
            self.terminated = false;
            // The TLB tables' address again, for this block's accesses: live across the
            // whole region, it would be spilled and reloaded from the stack anyway.
            self.tlb_base = self.load_state(types::I64, OFFSET_TLB_PTR);
        }
        for (k, op) in block.ops.iter().enumerate() {
            // First loads of cached globals placed here, unless defined on every way in.
            for c in 0..self.cached.len() {
                if self.load_at[c] == Some(k) && !self.defined[c] {
                    self.reload(c);
                }
            }
            self.at_cut = m.cut && k + 1 == block.ops.len();
            self.op(op)?;
        }
        self.at_cut = false;
        if !self.terminated {
            // A path falling off the end (the verifier forbids it): like the interpreter, a
            // fault at the last instruction.
            self.flush_dirty();
            self.store_pc_const(self.insn_pc);
            self.store_count(self.before());
            self.ret(BlockExit::Fault);
        }
        // Unused label blocks are empty: give them a terminator so the function is valid.
        for lb in self.labels.clone() {
            if self.b.func.layout.first_inst(lb).is_none() {
                self.switch_seal(lb);
                self.ret(BlockExit::Budget);
            }
        }
        Ok(())
    }

    /// Continue emitting in `blk`. Branches only go forward, so every predecessor of a block
    /// has been emitted when we switch to it: seal it now, which lets the SSA builder resolve
    /// variables directly instead of through placeholder block parameters.
    fn switch_seal(&mut self, blk: Block) {
        self.b.switch_to_block(blk);
        self.b.seal_block(blk);
    }

    fn load_state(&mut self, ty: ClType, offset: u32) -> ClValue {
        self.b.ins().load(ty, flags(), self.state, offset as i32)
    }

    fn store_state(&mut self, v: ClValue, offset: u32) {
        self.b.ins().store(flags(), v, self.state, offset as i32);
    }

    fn ret(&mut self, exit: BlockExit) {
        let code = self
            .b
            .ins()
            .iconst(types::I64, encode_exit(exit, self.block_id) as i64);
        self.b.ins().return_(&[code]);
        self.terminated = true;
    }

    fn reload(&mut self, c: usize) {
        let (ty, off, var) = {
            let g = &self.cached[c];
            (cl_type(g.ty), g.offset, g.var)
        };
        let v = self.load_state(ty, off);
        self.b.def_var(var, v);
        self.defined[c] = true;
    }

    fn flush_dirty(&mut self) {
        for c in 0..self.cached.len() {
            if self.dirty[c] {
                let (var, off) = (self.cached[c].var, self.cached[c].offset);
                let v = self.b.use_var(var);
                self.store_state(v, off);
            }
        }
    }

    /// Before a branch or a memory access: store the dirty globals on the path that executes
    /// it and mark them clean, as TCG syncs globals at the end of each basic block and before
    /// each guest memory access (an access is straight-line code: every path through it has
    /// stored them). Exits after it store
    /// only what is written after it, so a block with many exits (a superblock, every memory
    /// access's fault exit) does not store every global again at each one.
    ///
    /// Why clean is right for every path: a path reaches an op either linearly from the last
    /// label it jumped to, passing every branch in between (each of which flushed), or it
    /// jumped there from a branch (which flushed everything dirty before it). So what is dirty
    /// on any path at an op is a subset of what was written since the last branch in linear
    /// order — which is what `dirty` tracks.
    fn flush_at_branch(&mut self) {
        self.flush_dirty();
        self.dirty.iter_mut().for_each(|d| *d = false);
    }

    /// Store the instruction count as `entry + retired`.
    fn store_count(&mut self, retired: u32) {
        let base = self.b.use_var(self.base);
        let v = self.b.ins().iadd_imm_s(base, i64::from(retired));
        self.store_state(v, OFFSET_INSN_COUNT);
    }

    /// Instructions before the current one.
    fn before(&self) -> u32 {
        self.insn_idx.saturating_sub(1)
    }

    fn store_pc_const(&mut self, pc: u64) {
        let v = self.b.ins().iconst(types::I64, pc as i64);
        self.store_state(v, OFFSET_PC);
    }

    /// Fill `fb` (already branched to) as the cold fault exit of the current instruction.
    fn fill_fault_block(&mut self, fb: Block) {
        self.b.set_cold_block(fb);
        self.switch_seal(fb);
        self.flush_dirty();
        self.store_pc_const(self.insn_pc);
        self.store_count(self.before());
        self.ret(BlockExit::Fault);
    }

    /// The shared memory-fault exit ([`Lower::mem_fault`]), created on first use and filled
    /// at the end of the function (it is sealed once all its predecessors exist).
    fn mem_fault_block(&mut self) -> Block {
        if let Some(b) = self.mem_fault {
            return b;
        }
        let b = self.b.create_block();
        self.b.set_cold_block(b);
        self.mem_fault = Some(b);
        b
    }

    /// Branch to a cold fault exit if `exception_pending` is set; continue in a fresh block.
    fn check_pending(&mut self) {
        let pending = self.load_state(types::I64, OFFSET_EXCEPTION_PENDING);
        let fb = self.b.create_block();
        let cont = self.b.create_block();
        self.b.ins().brif(pending, fb, &[], cont, &[]);
        self.fill_fault_block(fb);
        self.switch_seal(cont);
        self.terminated = false;
    }

    fn var_of(&mut self, v: Value) -> Result<Variable, BackendError> {
        let idx = v.0 as usize;
        let ty = self
            .block
            .value_type(v)
            .ok_or_else(|| BackendError::Malformed(format!("unknown value v{}", v.0)))?;
        let slot = self
            .values
            .get_mut(idx)
            .ok_or_else(|| BackendError::Malformed(format!("unknown value v{}", v.0)))?;
        if let Some(var) = *slot {
            return Ok(var);
        }
        let var = self.b.declare_var(cl_type(ty));
        self.values[idx] = Some(var);
        Ok(var)
    }

    fn use_val(&mut self, v: Value) -> Result<ClValue, BackendError> {
        let var = self.var_of(v)?;
        Ok(self.b.use_var(var))
    }

    fn def(&mut self, v: Value, x: ClValue) -> Result<(), BackendError> {
        let var = self.var_of(v)?;
        self.b.def_var(var, x);
        Ok(())
    }

    fn label_block(&self, l: Label) -> Result<Block, BackendError> {
        self.labels
            .get(l.0 as usize)
            .copied()
            .ok_or_else(|| BackendError::Malformed(format!("unknown label L{}", l.0)))
    }

    /// After an unconditional transfer, later ops until the next label are unreachable; they go
    /// into a fresh block with no predecessors.
    fn start_dead_block(&mut self) {
        let dead = self.b.create_block();
        self.switch_seal(dead);
        self.terminated = false;
    }

    fn op(&mut self, op: &Op) -> Result<(), BackendError> {
        if self.terminated {
            if let Op::Label(_) = op {
            } else {
                self.start_dead_block();
            }
        }
        match *op {
            Op::InsnStart { pc, .. } => {
                self.insn_idx += 1;
                self.insn_pc = pc;
            }
            Op::Const { dst, ty, imm } => {
                let v = self.constant(ty, imm);
                self.def(dst, v)?;
            }
            Op::Mov { dst, src, .. } => {
                let v = self.use_val(src)?;
                self.def(dst, v)?;
            }
            Op::LoadGlobal { dst, ty, offset } => {
                let v = match self.cached_by_offset.get(&offset) {
                    Some(&c) => {
                        let var = self.cached[c].var;
                        self.b.use_var(var)
                    }
                    None => self.load_state(cl_type(ty), offset),
                };
                self.def(dst, v)?;
            }
            Op::StoreGlobal { src, offset, .. } => {
                let v = self.use_val(src)?;
                match self.cached_by_offset.get(&offset) {
                    Some(&c) => {
                        let var = self.cached[c].var;
                        self.b.def_var(var, v);
                        self.defined[c] = true;
                        self.dirty[c] = true;
                    }
                    None => self.store_state(v, offset),
                }
            }
            Op::Unary { op, ty, dst, src } => {
                let a = self.use_val(src)?;
                let v = self.unary(op, ty, a)?;
                self.def(dst, v)?;
            }
            Op::Binary { op, ty, dst, a, b } => {
                let a = self.use_val(a)?;
                let bv = self.use_val(b)?;
                let v = self.binary(op, ty, a, bv)?;
                self.def(dst, v)?;
            }
            Op::Ext {
                kind,
                from,
                to,
                dst,
                src,
            } => {
                let a = self.use_val(src)?;
                let v = if from == to {
                    a
                } else {
                    match kind {
                        ExtKind::Zext => self.b.ins().uextend(cl_type(to), a),
                        ExtKind::Sext => self.b.ins().sextend(cl_type(to), a),
                        ExtKind::Trunc => self.b.ins().ireduce(cl_type(to), a),
                    }
                };
                self.def(dst, v)?;
            }
            Op::SetCond {
                cond,
                ty,
                dst,
                a,
                b,
            } => {
                let a = self.use_val(a)?;
                let bv = self.use_val(b)?;
                let v = self.icmp(cond, ty, a, bv)?;
                self.def(dst, v)?;
            }
            Op::Select {
                dst,
                cond_val,
                a,
                b,
                ..
            } => {
                let c = self.use_val(cond_val)?;
                let a = self.use_val(a)?;
                let bv = self.use_val(b)?;
                let v = self.b.ins().select(c, a, bv);
                self.def(dst, v)?;
            }
            Op::Load {
                ty,
                mem,
                mmu_idx,
                dst,
                addr,
            } => {
                let a = self.use_val(addr)?;
                let raw = self.mem_access(mem, mmu_idx, a, None);
                let v = self.mem_result(ty, raw, mem.signed);
                self.def(dst, v)?;
            }
            Op::Store {
                ty,
                mem,
                mmu_idx,
                src,
                addr,
            } => {
                let a = self.use_val(addr)?;
                let s = self.use_val(src)?;
                let s64 = self.as_u64(ty, s);
                self.mem_access(mem, mmu_idx, a, Some(s64));
            }
            Op::Call {
                helper,
                ref args,
                dst,
            } => {
                let def = self.block.helper(helper).ok_or_else(|| {
                    BackendError::Malformed(format!("unknown helper h{}", helper.0))
                })?;
                if args.len() > 4 {
                    return Err(BackendError::Malformed(format!(
                        "helper {} called with {} arguments",
                        def.name,
                        args.len()
                    )));
                }
                let fx = def.effects;
                if fx.reads_state || fx.writes_state {
                    self.flush_dirty();
                }
                if fx.reads_state {
                    self.store_pc_const(self.insn_pc);
                    self.store_count(self.before());
                }
                let mut argv = vec![self.state];
                for &a in args {
                    argv.push(self.use_val(a)?);
                }
                while argv.len() < 5 {
                    argv.push(self.b.ins().iconst(types::I64, 0));
                }
                let sig = self.helper_sig();
                let callee = self.b.ins().iconst(types::I64, def.func as usize as i64);
                let call = self.b.ins().call_indirect(sig, callee, &argv);
                let r = self.b.inst_results(call)[0];
                if let Some(d) = dst {
                    self.def(d, r)?;
                }
                if fx.writes_state {
                    for c in 0..self.cached.len() {
                        if self.defined[c] {
                            self.reload(c);
                        }
                    }
                }
                if fx.may_raise {
                    self.check_pending();
                }
            }
            Op::Label(l) => {
                let lb = self.label_block(l)?;
                if !self.terminated {
                    self.b.ins().jump(lb, &[]);
                }
                self.switch_seal(lb);
                self.terminated = false;
            }
            Op::Br(l) => {
                let lb = self.label_block(l)?;
                self.flush_at_branch();
                self.b.ins().jump(lb, &[]);
                self.terminated = true;
            }
            Op::BrCond {
                cond,
                ty,
                a,
                b,
                label,
            } => {
                let lb = self.label_block(label)?;
                self.flush_at_branch();
                let a = self.use_val(a)?;
                let bv = self.use_val(b)?;
                let c = self.icmp(cond, ty, a, bv)?;
                let cont = self.b.create_block();
                self.b.ins().brif(c, lb, &[], cont, &[]);
                self.switch_seal(cont);
            }
            Op::Exit(t) => self.exit(t)?,
        }
        Ok(())
    }

    fn helper_sig(&mut self) -> cranelift_codegen::ir::SigRef {
        if let Some(s) = self.helper_sig {
            return s;
        }
        let mut sig = Signature::new(CallConv::SystemV);
        for _ in 0..5 {
            sig.params.push(AbiParam::new(types::I64));
        }
        sig.returns.push(AbiParam::new(types::I64));
        let s = self.b.import_signature(sig);
        self.helper_sig = Some(s);
        s
    }

    fn exit(&mut self, t: Terminal) -> Result<(), BackendError> {
        if let Terminal::Goto { pc } = t {
            let inside = self
                .members
                .iter()
                .position(|m| m.block.start_pc == pc)
                .filter(|_| self.region);
            // A member in another virtual page is where this pc maps only while the guest's
            // mapping stays as it was when the region was formed: the jump stays inside
            // while the jump cache still maps the pc to the member's physical address (the
            // engine drops entries whose page the guest remapped), else it is an exit.
            let other_page = pc & PAGE_MASK != self.block.start_pc & PAGE_MASK;
            match (inside, self.jump_cache) {
                (Some(target), _) if !other_page => {
                    self.jump_inside(target, !self.at_cut);
                    return Ok(());
                }
                (Some(target), Some(probe)) => {
                    self.flush_at_branch();
                    let slot = self.goto_slot;
                    let phys = self.members[target].phys_pc;
                    let mapped = self.maps_to(probe, pc, phys);
                    let stay = self.b.create_block();
                    let leave = self.b.create_block();
                    self.b.ins().brif(mapped, stay, &[], leave, &[]);
                    self.switch_seal(stay);
                    self.jump_inside(target, !self.at_cut);
                    // Not mapped as it was: the exit a jump to another page always is.
                    self.b.set_cold_block(leave);
                    self.switch_seal(leave);
                    self.terminated = false;
                    self.goto_slot = slot;
                }
                _ => {}
            }
        }
        self.flush_dirty();
        match t {
            Terminal::Goto { pc } => {
                self.store_pc_const(pc);
                self.store_count(self.insn_idx);
                let slot = self.goto_slot;
                self.goto_slot += 1;
                // Direct chains stay inside one virtual page (tb.rs); a jump to another page
                // can still stay in compiled code through the jump cache.
                let other_page = pc & PAGE_MASK != self.block.start_pc & PAGE_MASK;
                let probes = other_page && self.jump_cache.is_some();
                match (self.slots, self.exit_stub) {
                    (Some(s), Some(stub)) if (slot as usize) < s.len && !probes => {
                        // Go where the slot leads, the linked block or (an empty slot holds
                        // 0) the stub, which returns the exit code passed along.
                        let code = encode_exit(BlockExit::Goto { slot }, self.block_id);
                        let code = self.b.ins().iconst(types::I64, code as i64);
                        let linked = self.load_slot(s, slot);
                        let stub = self.b.ins().iconst(types::I64, stub as i64);
                        let target = self.b.ins().select(linked, linked, stub);
                        let sig = self.b.import_signature(block_signature());
                        self.b
                            .ins()
                            .return_call_indirect(sig, target, &[self.state, code]);
                        self.terminated = true;
                    }
                    (Some(s), _) if (slot as usize) < s.len => {
                        let target = self.load_slot(s, slot);
                        let chain = self.b.create_block();
                        let unlinked = self.b.create_block();
                        self.b.ins().brif(target, chain, &[], unlinked, &[]);
                        self.switch_seal(chain);
                        let sig = self.b.import_signature(block_signature());
                        self.b
                            .ins()
                            .return_call_indirect(sig, target, &[self.state, self.state]);
                        self.switch_seal(unlinked);
                        match self.jump_cache {
                            Some(probe) if other_page => {
                                let v = self.b.ins().iconst(types::I64, pc as i64);
                                self.probe_jump_cache(probe, v, BlockExit::Goto { slot });
                            }
                            _ => self.ret(BlockExit::Goto { slot }),
                        }
                    }
                    _ => self.ret(BlockExit::Goto { slot }),
                }
            }
            Terminal::Indirect { pc } => {
                let v = self.use_val(pc)?;
                self.store_state(v, OFFSET_PC);
                self.store_count(self.insn_idx);
                match self.jump_cache {
                    Some(probe) => self.probe_jump_cache(probe, v, BlockExit::Indirect),
                    None => self.ret(BlockExit::Indirect),
                }
            }
            Terminal::Exit { reason, pc } => {
                self.store_pc_const(pc);
                self.store_count(self.retired_at_exit(reason));
                self.ret(BlockExit::Exit(reason));
            }
            Terminal::ExitDynamic { reason, pc } => {
                let v = self.use_val(pc)?;
                self.store_state(v, OFFSET_PC);
                self.store_count(self.retired_at_exit(reason));
                self.ret(BlockExit::Exit(reason));
            }
        }
        Ok(())
    }

    /// A `Goto` to the start of member `target`: a jump inside the function (module docs).
    /// Dirty globals are written back first, as at a branch, so every member starts clean.
    /// The budget is checked unless the jump continues a cut block ([`RegionMember::cut`]).
    fn jump_inside(&mut self, target: usize, check: bool) {
        // Keep the chain-slot numbering of the interpreter: this `Goto` owns a slot.
        self.goto_slot += 1;
        self.flush_at_branch();
        let head = self.heads[target];
        let base = self.b.use_var(self.base);
        let count = self.b.ins().iadd_imm_s(base, i64::from(self.insn_idx));
        self.b.def_var(self.base, count);
        // The target's start pc and count, which its slow paths count from (site.rs). The pc
        // is there already when the target is this member and nothing here stored another.
        let start = self.members[target].block.start_pc;
        if start != self.block.start_pc || !self.relative_sites {
            self.store_pc_const(start);
        }
        self.store_state(count, OFFSET_INSN_COUNT);
        if !check {
            self.b.ins().jump(head, &[]);
            self.terminated = true;
            return;
        }
        // The budget check of the block's entry: a chain of blocks stops at the same
        // instruction count whether its blocks run as a region or one by one.
        let limit = self.load_state(types::I64, OFFSET_INSN_LIMIT);
        let spent = self
            .b
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, count, limit);
        let budget = self.b.create_block();
        self.b.ins().brif(spent, budget, &[], head, &[]);
        self.b.set_cold_block(budget);
        self.switch_seal(budget);
        // The target's pc and count are in the state already (above).
        self.ret(BlockExit::Budget);
    }

    /// Whether the jump cache maps constant `pc` (under this block's flags) to physical
    /// address `phys`: the guard of a jump to a member in another virtual page.
    fn maps_to(&mut self, probe: super::JumpProbe, pc: u64, phys: u64) -> ClValue {
        let pc = self.b.ins().iconst(types::I64, pc as i64);
        let entry = self.jump_entry(probe, pc);
        let hit = self.jump_entry_tagged(probe, entry, pc);
        let tag_phys = self
            .b
            .ins()
            .load(types::I64, flags(), entry, super::JUMP_ENTRY_PHYS);
        let same_phys = self.b.ins().icmp_imm_s(IntCC::Equal, tag_phys, phys as i64);
        self.b.ins().band(hit, same_phys)
    }

    /// The address of `pc`'s jump-cache entry: `JumpCache::index(pc)`, computed at compile
    /// time for a constant pc.
    fn jump_entry(&mut self, probe: super::JumpProbe, pc: ClValue) -> ClValue {
        let base = probe.addr;
        match self.const_of(pc) {
            Some(k) => {
                let addr = base + super::JumpCache::index(k) * super::JUMP_ENTRY_SIZE;
                self.b.ins().iconst(types::I64, addr as i64)
            }
            None => {
                let lo = self.b.ins().ushr_imm_s(pc, 1);
                let hi = self
                    .b
                    .ins()
                    .ushr_imm_s(pc, i64::from(super::JUMP_CACHE_PAGE_SHIFT));
                let idx = self.b.ins().bxor(lo, hi);
                let idx = self
                    .b
                    .ins()
                    .band_imm_s(idx, (super::JUMP_CACHE_ENTRIES - 1) as i64);
                let off = self
                    .b
                    .ins()
                    .ishl_imm_s(idx, i64::from(super::JUMP_ENTRY_SIZE.trailing_zeros()));
                let table = self.b.ins().iconst(types::I64, base as i64);
                self.b.ins().iadd(table, off)
            }
        }
    }

    /// Whether the jump-cache entry at `entry` is tagged with `pc` and this block's flags.
    fn jump_entry_tagged(
        &mut self,
        probe: super::JumpProbe,
        entry: ClValue,
        pc: ClValue,
    ) -> ClValue {
        let tag = self
            .b
            .ins()
            .load(types::I64, flags(), entry, super::JUMP_ENTRY_PC);
        let tag_flags = self
            .b
            .ins()
            .load(types::I64, flags(), entry, super::JUMP_ENTRY_FLAGS);
        let same = self.b.ins().icmp(IntCC::Equal, tag, pc);
        let same_flags = self
            .b
            .ins()
            .icmp_imm_s(IntCC::Equal, tag_flags, i64::from(probe.flags));
        self.b.ins().band(same, same_flags)
    }

    /// The code pointer chain slot `slot` of `s` holds now (0: not linked).
    fn load_slot(&mut self, s: ChainSlots, slot: u32) -> ClValue {
        let addr = self
            .b
            .ins()
            .iconst(types::I64, (s.addr as usize + slot as usize * 8) as i64);
        self.b
            .ins()
            .load(types::I64, MemFlagsData::trusted(), addr, 0)
    }

    /// Exit through the jump cache: if the entry for `pc` holds compiled code, tail-call it;
    /// otherwise return `miss_exit` to the engine.
    fn probe_jump_cache(&mut self, probe: super::JumpProbe, pc: ClValue, miss_exit: BlockExit) {
        let entry = self.jump_entry(probe, pc);
        let tagged = self.jump_entry_tagged(probe, entry, pc);
        let target = self
            .b
            .ins()
            .load(types::I64, flags(), entry, super::JUMP_ENTRY_CODE);
        // An empty entry's flags match no probe (`JumpEntry`): a tag match is a hit.
        let chain = self.b.create_block();
        let miss = self.b.create_block();
        self.b.ins().brif(tagged, chain, &[], miss, &[]);
        self.switch_seal(chain);
        let sig = self.b.import_signature(block_signature());
        self.b
            .ins()
            .return_call_indirect(sig, target, &[self.state, self.state]);
        self.switch_seal(miss);
        self.ret(miss_exit);
    }

    /// `v + k`, folded into `x + (c + k)` when `v` is `x + c` for a constant `c` (a guest
    /// address is usually base register plus offset): one `lea` instead of a second
    /// constant in a register, which instruction selection does not merge by itself.
    fn add_const(&mut self, v: ClValue, k: i64) -> ClValue {
        let dfg = &self.b.func.dfg;
        let folded = dfg
            .value_def(v)
            .inst()
            .and_then(|inst| match dfg.insts[inst] {
                cranelift_codegen::ir::InstructionData::Binary {
                    opcode: cranelift_codegen::ir::Opcode::Iadd,
                    args: [a, b],
                } => match (self.const_of(a), self.const_of(b)) {
                    (_, Some(c)) => Some((a, c)),
                    (Some(c), _) => Some((b, c)),
                    _ => None,
                },
                _ => None,
            });
        match folded {
            Some((x, c)) => self.b.ins().iadd_imm_s(x, (c as i64).wrapping_add(k)),
            None => self.b.ins().iadd_imm_s(v, k),
        }
    }

    /// The value of `v` if it is an `iconst`.
    fn const_of(&self, v: ClValue) -> Option<u64> {
        let dfg = &self.b.func.dfg;
        let inst = dfg.value_def(v).inst()?;
        match dfg.insts[inst] {
            cranelift_codegen::ir::InstructionData::UnaryImm { imm, .. } => Some(imm.bits() as u64),
            _ => None,
        }
    }

    /// exec.rs: the exiting instruction retires unless it raises.
    fn retired_at_exit(&self, reason: ExitReason) -> u32 {
        match reason {
            ExitReason::Exception => self.before(),
            ExitReason::Yield | ExitReason::Halt => self.insn_idx,
        }
    }

    fn constant(&mut self, ty: Type, imm: u64) -> ClValue {
        match ty {
            Type::F32 => self.b.ins().f32const(Ieee32::with_bits(imm as u32)),
            Type::F64 => self.b.ins().f64const(Ieee64::with_bits(imm)),
            Type::I128 => {
                let lo = self.b.ins().iconst(types::I64, imm as i64);
                self.b.ins().uextend(types::I128, lo)
            }
            _ => {
                let masked = (u128::from(imm) & ty.mask()) as u64;
                self.b.ins().iconst(cl_type(ty), masked as i64)
            }
        }
    }

    fn icmp(
        &mut self,
        cond: Cond,
        ty: Type,
        a: ClValue,
        b: ClValue,
    ) -> Result<ClValue, BackendError> {
        if ty.is_float() {
            return Err(BackendError::Unsupported(format!("compare on {ty:?}")));
        }
        Ok(self.b.ins().icmp(int_cc(cond), a, b))
    }

    fn unary(&mut self, op: UnOp, ty: Type, a: ClValue) -> Result<ClValue, BackendError> {
        if ty.is_float() && op != UnOp::Bitcast {
            return Err(BackendError::Unsupported(format!("{op:?} on {ty:?}")));
        }
        Ok(match op {
            UnOp::Not => self.b.ins().bnot(a),
            UnOp::Neg => self.b.ins().ineg(a),
            UnOp::Clz => self.b.ins().clz(a),
            UnOp::Ctz => self.b.ins().ctz(a),
            UnOp::Popcnt => self.b.ins().popcnt(a),
            UnOp::Bswap => {
                if ty == Type::I8 {
                    a
                } else {
                    self.b.ins().bswap(a)
                }
            }
            UnOp::Bitcast => {
                let to = cl_type(ty);
                if self.b.func.dfg.value_type(a) == to {
                    a
                } else {
                    self.b.ins().bitcast(to, MemFlagsData::new(), a)
                }
            }
        })
    }

    fn binary(
        &mut self,
        op: BinOp,
        ty: Type,
        a: ClValue,
        b: ClValue,
    ) -> Result<ClValue, BackendError> {
        if ty.is_float() {
            return Err(BackendError::Unsupported(format!("{op:?} on {ty:?}")));
        }
        let wide = ty == Type::I128;
        let clt = cl_type(ty);
        let v = match op {
            // `x + c + k` as one add (`add_const`): a pointer moved and then accessed at an
            // offset (`addi sp, sp, -n` then `sd ra, m(sp)`) costs no constant in a register.
            // The 46,763 blocks of a boot under `--engine jit`: 37.80 → 37.01 MB of code.
            BinOp::Add if ty == Type::I64 => match (self.const_of(a), self.const_of(b)) {
                (_, Some(k)) => self.add_const(a, k as i64),
                (Some(k), None) => self.add_const(b, k as i64),
                (None, None) => self.b.ins().iadd(a, b),
            },
            BinOp::Sub if ty == Type::I64 => match self.const_of(b) {
                Some(k) => self.add_const(a, (k as i64).wrapping_neg()),
                None => self.b.ins().isub(a, b),
            },
            BinOp::Add => self.b.ins().iadd(a, b),
            BinOp::Sub => self.b.ins().isub(a, b),
            BinOp::Mul => self.b.ins().imul(a, b),
            BinOp::And => self.b.ins().band(a, b),
            BinOp::Or => self.b.ins().bor(a, b),
            BinOp::Xor => self.b.ins().bxor(a, b),
            BinOp::AndNot => {
                let nb = self.b.ins().bnot(b);
                self.b.ins().band(a, nb)
            }
            BinOp::OrNot => {
                let nb = self.b.ins().bnot(b);
                self.b.ins().bor(a, nb)
            }
            BinOp::XorNot => {
                let nb = self.b.ins().bnot(b);
                self.b.ins().bxor(a, nb)
            }
            BinOp::Shl | BinOp::Shr | BinOp::Sar | BinOp::Rotl | BinOp::Rotr => {
                // The amount is taken modulo the width (ir/mod.rs); mask explicitly so the
                // semantics never depend on the host's shift behaviour for narrow types. A
                // constant amount (most guest shifts) is masked here: with opt_level=none
                // Cranelift would materialize the constant and mask it at run time.
                let width_mask = u64::from(ty.bits() - 1);
                let amt = match self.const_of(b) {
                    Some(k) => {
                        let amt_ty = self.b.func.dfg.value_type(b);
                        self.b.ins().iconst(amt_ty, (k & width_mask) as i64)
                    }
                    None => self.b.ins().band_imm_s(b, width_mask as i64),
                };
                match op {
                    BinOp::Shl => self.b.ins().ishl(a, amt),
                    BinOp::Shr => self.b.ins().ushr(a, amt),
                    BinOp::Sar => self.b.ins().sshr(a, amt),
                    BinOp::Rotl => self.b.ins().rotl(a, amt),
                    _ => self.b.ins().rotr(a, amt),
                }
            }
            BinOp::MinS | BinOp::MaxS | BinOp::MinU | BinOp::MaxU => {
                let cc = match op {
                    BinOp::MinS => IntCC::SignedLessThan,
                    BinOp::MaxS => IntCC::SignedGreaterThan,
                    BinOp::MinU => IntCC::UnsignedLessThan,
                    _ => IntCC::UnsignedGreaterThan,
                };
                let c = self.b.ins().icmp(cc, a, b);
                self.b.ins().select(c, a, b)
            }
            BinOp::MulHs | BinOp::MulHu | BinOp::MulHsu if wide => {
                return Err(BackendError::Unsupported(format!("{op:?} on I128")));
            }
            BinOp::MulHs | BinOp::MulHu | BinOp::MulHsu if ty == Type::I64 => match op {
                BinOp::MulHs => self.b.ins().smulhi(a, b),
                BinOp::MulHu => self.b.ins().umulhi(a, b),
                _ => {
                    // hi_su(a, b) = hi_uu(a, b) - (a < 0 ? b : 0)
                    let hu = self.b.ins().umulhi(a, b);
                    let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, a, 0);
                    let zero = self.b.ins().iconst(types::I64, 0);
                    let corr = self.b.ins().select(neg, b, zero);
                    self.b.ins().isub(hu, corr)
                }
            },
            BinOp::MulHs | BinOp::MulHu | BinOp::MulHsu => {
                // Narrow: widen to I64, multiply, take the high half.
                let (wa, wb) = match op {
                    BinOp::MulHs => (
                        self.b.ins().sextend(types::I64, a),
                        self.b.ins().sextend(types::I64, b),
                    ),
                    BinOp::MulHu => (
                        self.b.ins().uextend(types::I64, a),
                        self.b.ins().uextend(types::I64, b),
                    ),
                    _ => (
                        self.b.ins().sextend(types::I64, a),
                        self.b.ins().uextend(types::I64, b),
                    ),
                };
                let p = self.b.ins().imul(wa, wb);
                let hi = self.b.ins().sshr_imm_s(p, i64::from(ty.bits()));
                self.b.ins().ireduce(clt, hi)
            }
            BinOp::DivS | BinOp::DivU | BinOp::RemS | BinOp::RemU if wide => {
                return Err(BackendError::Unsupported(format!("{op:?} on I128")));
            }
            BinOp::DivU | BinOp::RemU => {
                // Total division, RISC-V Unprivileged ISA §13.2: x/0 = all ones, x%0 = x.
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                let one = self.b.ins().iconst(clt, 1);
                let d = self.b.ins().select(zero, one, b);
                if op == BinOp::DivU {
                    let q = self.b.ins().udiv(a, d);
                    let ones = self.b.ins().iconst(clt, (ty.mask() as u64) as i64);
                    self.b.ins().select(zero, ones, q)
                } else {
                    let r = self.b.ins().urem(a, d);
                    self.b.ins().select(zero, a, r)
                }
            }
            BinOp::DivS | BinOp::RemS => {
                // x/0 = -1, x%0 = x, MIN/-1 = MIN, MIN%-1 = 0. Dividing by 1 instead of 0 or
                // -1 (for MIN) avoids the host trap and gives MIN / 0 already.
                let zero = self.b.ins().icmp_imm_s(IntCC::Equal, b, 0);
                let min = self.constant(ty, 1u64 << (ty.bits() - 1));
                let is_min = self.b.ins().icmp(IntCC::Equal, a, min);
                let all = (ty.mask() as u64) as i64;
                let m1 = self.constant(ty, all as u64);
                let is_m1 = self.b.ins().icmp(IntCC::Equal, b, m1);
                let ovf = self.b.ins().band(is_min, is_m1);
                let bad = self.b.ins().bor(zero, ovf);
                let one = self.b.ins().iconst(clt, 1);
                let d = self.b.ins().select(bad, one, b);
                if op == BinOp::DivS {
                    let q = self.b.ins().sdiv(a, d);
                    let m1 = self.b.ins().iconst(clt, all);
                    self.b.ins().select(zero, m1, q)
                } else {
                    let r = self.b.ins().srem(a, d);
                    self.b.ins().select(zero, a, r)
                }
            }
        };
        Ok(v)
    }

    /// A memory result (u64, extended per the MemOp) as a value of `ty`.
    fn mem_result(&mut self, ty: Type, raw: ClValue, signed: bool) -> ClValue {
        match ty {
            Type::I64 => raw,
            Type::I8 | Type::I16 | Type::I32 => self.b.ins().ireduce(cl_type(ty), raw),
            Type::I128 => {
                if signed {
                    self.b.ins().sextend(types::I128, raw)
                } else {
                    self.b.ins().uextend(types::I128, raw)
                }
            }
            Type::F32 => {
                let w = self.b.ins().ireduce(types::I32, raw);
                self.b.ins().bitcast(types::F32, MemFlagsData::new(), w)
            }
            Type::F64 => self.b.ins().bitcast(types::F64, MemFlagsData::new(), raw),
        }
    }

    /// A value of `ty` as a u64 (its low bits; narrower integers zero-extended).
    fn as_u64(&mut self, ty: Type, v: ClValue) -> ClValue {
        match ty {
            Type::I64 => v,
            Type::I8 | Type::I16 | Type::I32 => self.b.ins().uextend(types::I64, v),
            Type::I128 => self.b.ins().ireduce(types::I64, v),
            Type::F32 => {
                let w = self.b.ins().bitcast(types::I32, MemFlagsData::new(), v);
                self.b.ins().uextend(types::I64, w)
            }
            Type::F64 => self.b.ins().bitcast(types::I64, MemFlagsData::new(), v),
        }
    }

    /// The slow-path site of the current instruction's access (site.rs): relative to the
    /// member's start where the state holds it, else absolute after storing the pc and count.
    fn slow_site(&mut self, mem: MemOp, mmu_idx: u8) -> SlowSite {
        let site = SlowSite::absolute(mem, mmu_idx);
        let relative = self
            .relative_sites
            .then(|| {
                let delta = self.insn_pc.wrapping_sub(self.block.start_pc);
                site.relative(self.before(), delta)
            })
            .flatten();
        relative.unwrap_or_else(|| {
            self.store_pc_const(self.insn_pc);
            self.store_count(self.before());
            site
        })
    }

    /// The softmmu access (env.rs): inline TLB probe, host access on a hit, the guest's slow
    /// path otherwise, then a cold fault exit if it recorded an exception. Returns the loaded
    /// u64 (extended per `mem`) for loads.
    fn mem_access(
        &mut self,
        mem: MemOp,
        mmu_idx: u8,
        addr: ClValue,
        store: Option<ClValue>,
    ) -> ClValue {
        // The slow path and a fault see every global in the state (module docs): written back
        // here, on the path every outcome of the access takes.
        self.flush_at_branch();
        let table = tlb_table_offset(u32::from(mmu_idx) % NB_MMU_MODES as u32) as i32;
        // off = tlb_index(addr) * TLB_ENTRY_SIZE, as one shift and one mask (both powers of 2).
        let off = self.b.ins().ushr_imm_s(addr, i64::from(TLB_INDEX_SHIFT));
        let off = self.b.ins().band_imm_s(off, TLB_OFFSET_MASK as i64);
        let entry = self.b.ins().iadd(self.tlb_base, off);
        let tag_off = if store.is_some() || mem.store_intent {
            OFFSET_TLB_ADDR_WRITE
        } else {
            OFFSET_TLB_ADDR_READ
        };
        let tag = self
            .b
            .ins()
            .load(types::I64, flags(), entry, table + tag_off as i32);
        // env::tlb_compare_addr: the page of the last byte, or for aligned-only accesses the
        // address with its misaligned bits kept.
        let size_mask = u64::from(mem.size()) - 1;
        let masked = if mem.aligned || size_mask == 0 {
            self.b
                .ins()
                .band_imm_s(addr, (PAGE_MASK | size_mask) as i64)
        } else {
            let last = self.add_const(addr, size_mask as i64);
            self.b.ins().band_imm_s(last, PAGE_MASK as i64)
        };
        let hit = self.b.ins().icmp(IntCC::Equal, masked, tag);

        let fast = self.b.create_block();
        let slow = self.b.create_block();
        // The slow path reaches `join` through a block of its own, cold like it: a direct
        // branch would be a critical edge, whose split block Cranelift lays out among the hot
        // code (a taken jump over it on every hit).
        let slow_done = self.b.create_block();
        let join = self.b.create_block();
        let loads = store.is_none();
        if loads {
            self.b.append_block_param(join, types::I64);
            self.b.append_block_param(slow_done, types::I64);
        }
        self.b.ins().brif(hit, fast, &[], slow, &[]);

        // Hit: the entry was filled for a page wholly inside checked guest RAM (env.rs).
        self.switch_seal(fast);
        let addend =
            self.b
                .ins()
                .load(types::I64, flags(), entry, table + OFFSET_TLB_ADDEND as i32);
        let host = self.b.ins().iadd(addr, addend);
        let hf = MemFlagsData::new().with_notrap();
        let result = match store {
            Some(v) => {
                match mem.size_log2 {
                    0 => self.b.ins().istore8(hf, v, host, 0),
                    1 => self.b.ins().istore16(hf, v, host, 0),
                    2 => self.b.ins().istore32(hf, v, host, 0),
                    _ => self.b.ins().store(hf, v, host, 0),
                };
                None
            }
            None => Some(match (mem.size_log2, mem.signed) {
                (0, false) => self.b.ins().uload8(types::I64, hf, host, 0),
                (0, true) => self.b.ins().sload8(types::I64, hf, host, 0),
                (1, false) => self.b.ins().uload16(types::I64, hf, host, 0),
                (1, true) => self.b.ins().sload16(types::I64, hf, host, 0),
                (2, false) => self.b.ins().uload32(hf, host, 0),
                (2, true) => self.b.ins().sload32(hf, host, 0),
                _ => self.b.ins().load(types::I64, hf, host, 0),
            }),
        };
        let args: Vec<_> = result.into_iter().map(Into::into).collect();
        self.b.ins().jump(join, &args);

        // Miss: the guest's slow path, in cold code. The globals are in the state already
        // (above), and, as for the interpreter, the slow path sees the pc and instruction
        // count of this instruction (set from the site: site.rs): MMIO sees the exact guest
        // time, and a fault leaves nothing more to store.
        self.b.set_cold_block(slow);
        self.switch_seal(slow);
        let site = self.slow_site(mem, mmu_idx);
        let site = self.b.ins().iconst(types::I64, site.0 as i64);
        let thunks = super::slow_thunks();
        let (conv, f) = match thunks {
            Some(t) => {
                let a = if store.is_some() { t.store } else { t.load };
                (
                    CallConv::PreserveAll,
                    self.b.ins().iconst(types::I64, a as i64),
                )
            }
            None => (
                CallConv::SystemV,
                self.b
                    .ins()
                    .iconst(types::I64, super::slow_entry(store.is_some()) as i64),
            ),
        };
        let sig = self
            .b
            .import_signature(super::slow_signature(conv, store.is_some()));
        let result = match store {
            Some(v) => {
                self.b
                    .ins()
                    .call_indirect(sig, f, &[self.state, addr, v, site]);
                None
            }
            None if thunks.is_some() => {
                // The thunk stores the value into a stack slot (preserve_all returns nothing).
                let slot = self.b.create_sized_stack_slot(StackSlotData::new(
                    StackSlotKind::ExplicitSlot,
                    8,
                    3,
                ));
                let out = self.b.ins().stack_addr(types::I64, slot, 0);
                self.b
                    .ins()
                    .call_indirect(sig, f, &[self.state, addr, site, out]);
                Some(self.b.ins().load(types::I64, flags(), out, 0))
            }
            None => {
                let call = self
                    .b
                    .ins()
                    .call_indirect(sig, f, &[self.state, addr, site]);
                Some(self.b.inst_results(call)[0])
            }
        };
        let args: Vec<_> = result.into_iter().map(Into::into).collect();
        if thunks.is_some_and(|t| t.unwinds) {
            // A fault does not come back here (unwind.rs).
            self.b.ins().jump(join, &args);
        } else {
            let pending = self.load_state(types::I64, OFFSET_EXCEPTION_PENDING);
            let fb = self.mem_fault_block();
            self.b.ins().brif(pending, fb, &[], slow_done, &args);
            self.b.set_cold_block(slow_done);
            self.switch_seal(slow_done);
            let passed: Vec<_> = self
                .b
                .block_params(slow_done)
                .iter()
                .map(|&v| v.into())
                .collect();
            self.b.ins().jump(join, &passed);
        }

        self.switch_seal(join);
        self.terminated = false;
        if loads {
            self.b.block_params(join)[0]
        } else {
            self.b.ins().iconst(types::I64, 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{BinOp, Builder};

    /// Offsets of three guest registers past the `CpuCommon` header.
    fn reg(i: u32) -> u32 {
        std::mem::size_of::<CpuCommon>() as u32 + 8 * i
    }

    /// A block at `pc` that adds the registers `reads` into register `write`, then jumps to
    /// `to`.
    fn block(pc: u64, reads: &[u32], write: u32, to: u64) -> IrBlock {
        let mut b = Builder::new(pc);
        b.insn_start(pc, 0);
        let mut acc = b.iconst(Type::I64, 1);
        for &r in reads {
            let v = b.load_global(Type::I64, reg(r));
            acc = b.binary(BinOp::Add, Type::I64, acc, v);
        }
        b.store_global(Type::I64, reg(write), acc);
        b.goto(to);
        b.set_guest_size(4);
        b.finish()
    }

    #[test]
    fn a_region_loads_what_a_jump_does_not_bring() {
        // A (0x100) reads r1, writes r2, jumps to B; B (0x104) reads r1 and r3, writes r2,
        // jumps back to A.
        let a = block(0x100, &[1], 2, 0x104);
        let b = block(0x104, &[1, 3], 2, 0x100);
        let members = [
            RegionMember {
                block: &a,
                id: 0,
                slots: None,
                cut: false,
                phys_pc: a.start_pc,
            },
            RegionMember {
                block: &b,
                id: 1,
                slots: None,
                cut: false,
                phys_pc: b.start_pc,
            },
        ];
        let p = plan(&members, true);
        let c = |r: u32| p.globals.iter().position(|&(o, _)| o == reg(r));
        let (Some(r1), Some(r2), Some(r3)) = (c(1), c(2), c(3)) else {
            panic!("r1..r3 are cached: {:?}", p.globals);
        };
        // What A reads is loaded before the loop; r2 (A only writes it) and r3 are not.
        assert!(p.entry_loads[r1] && !p.entry_loads[r2] && !p.entry_loads[r3]);
        // A is entered with r1 defined (from the entry and from B's jump back); B with r1
        // and r2 (from A), not r3: B loads r3 where it first reads it.
        assert!(p.avail_in[0][r1] && !p.avail_in[0][r2] && !p.avail_in[0][r3]);
        assert_eq!(p.avail_in[1][r1..=r2], [true, true]);
        assert!(!p.avail_in[1][r3]);
        assert!(p.members[1][r3].is_some_and(|(at, _)| at.is_some()));
        // One block on its own loads lazily, on entry nothing.
        let single = plan(&members[..1], false);
        assert!(single.entry_loads.iter().all(|&l| !l));
        assert!(single.avail_in[0].iter().all(|&d| !d));
    }
}
