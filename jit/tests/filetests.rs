//! IR file tests (DESIGN.md §10): every `tests/ir/*.ir` file holds one block in the IR text form
//! plus directives in comments. Each case runs on the interpreter (the reference), on the
//! optimized block (`opt::optimize`), and on the Cranelift backend (plain and optimized); all
//! must meet the case's expectations and agree with each other on the whole final state.
//!
//! Directives (anywhere in the file, one per line):
//!
//! ```text
//! ; case: <init...> => <expect...>     ; one run; a file may have several
//! ; verify-error: <substring>          ; the block must fail verification with this message
//! ```
//!
//! `init` items: `rN=V` (register), `memB[ADDR]=V` (B = 8/16/32/64 bits, little-endian),
//! `insn_count=V`, `insn_limit=V`, `pc=V`, `unmap=ADDR` (drop that page from the TLB so every
//! access to it takes the slow path), `notdirty=ADDR` (the page holds code: stores to it take
//! the slow path). `expect` items: the same `rN`, `memB[ADDR]`, `pc`, `insn_count`, plus
//! `exit=goto(N)|indirect|fault|budget|yield|halt|exception`, `fault_addr=V`,
//! `exception_pending=V`, `slow_calls=N` (memory slow-path calls: every executor must make the
//! same number, i.e. take the TLB fast path exactly when it hits). Numbers are decimal, `0x`
//! hex or `-decimal`.
//!
//! In the block text, `$rN` stands for the global offset of register N of the test CPU, and
//! `$rN+K` for K bytes into it.

use emu_jit::backend::{compile_standalone, BackendError};
use emu_jit::exec::BlockExit;
use emu_jit::interp::InterpBlock;
use emu_jit::ir::parse::parse_block;
use emu_jit::ir::verify::verify;
use emu_jit::ir::{ExitReason, IrBlock, Op, Terminal};
use emu_jit::opt::optimize;
use emu_jit::testing::{reg_offset, test_helpers, TestCpu};
use std::path::{Path, PathBuf};

fn num(s: &str) -> Result<u64, String> {
    let t = s.replace('_', "");
    let r = if let Some(h) = t.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(d) = t.strip_prefix('-') {
        d.parse::<u64>().ok().map(u64::wrapping_neg)
    } else {
        t.parse::<u64>().ok()
    };
    r.ok_or_else(|| format!("bad number `{s}`"))
}

/// One `key=value` item of a case line.
#[derive(Clone, Debug)]
enum Item {
    Reg(usize, u64),
    Mem(u32, u64, u64),
    Pc(u64),
    InsnCount(u64),
    InsnLimit(u64),
    Unmap(u64),
    NotDirty(u64),
    Exit(BlockExit),
    SlowCalls(u64),
    FaultAddr(u64),
    ExceptionPending(u64),
}

fn parse_exit(s: &str) -> Result<BlockExit, String> {
    Ok(match s {
        "indirect" => BlockExit::Indirect,
        "fault" => BlockExit::Fault,
        "budget" => BlockExit::Budget,
        "yield" => BlockExit::Exit(ExitReason::Yield),
        "halt" => BlockExit::Exit(ExitReason::Halt),
        "exception" => BlockExit::Exit(ExitReason::Exception),
        _ => {
            let n = s
                .strip_prefix("goto(")
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("bad exit `{s}`"))?;
            BlockExit::Goto {
                slot: num(n)? as u32,
            }
        }
    })
}

fn parse_item(tok: &str) -> Result<Item, String> {
    let (k, v) = tok
        .split_once('=')
        .ok_or_else(|| format!("expected key=value, found `{tok}`"))?;
    if k == "exit" {
        return Ok(Item::Exit(parse_exit(v)?));
    }
    let v = num(v)?;
    if let Some(r) = k.strip_prefix('r') {
        let i: usize = r.parse().map_err(|_| format!("bad register `{k}`"))?;
        if i >= 32 {
            return Err(format!("no register {k}"));
        }
        return Ok(Item::Reg(i, v));
    }
    if let Some(rest) = k.strip_prefix("mem") {
        let (bits, addr) = rest
            .strip_suffix(']')
            .and_then(|r| r.split_once('['))
            .ok_or_else(|| format!("bad memory item `{k}`"))?;
        let bits: u32 = bits.parse().map_err(|_| format!("bad width in `{k}`"))?;
        if ![8, 16, 32, 64].contains(&bits) {
            return Err(format!("bad width in `{k}`"));
        }
        return Ok(Item::Mem(bits / 8, num(addr)?, v));
    }
    Ok(match k {
        "pc" => Item::Pc(v),
        "insn_count" => Item::InsnCount(v),
        "insn_limit" => Item::InsnLimit(v),
        "unmap" => Item::Unmap(v),
        "notdirty" => Item::NotDirty(v),
        "slow_calls" => Item::SlowCalls(v),
        "fault_addr" => Item::FaultAddr(v),
        "exception_pending" => Item::ExceptionPending(v),
        _ => return Err(format!("unknown key `{k}`")),
    })
}

struct Case {
    line: usize,
    init: Vec<Item>,
    expect: Vec<Item>,
}

struct TestFile {
    block: IrBlock,
    cases: Vec<Case>,
}

enum Parsed {
    Run(TestFile),
    VerifyError(IrBlock, String),
}

fn substitute_regs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("$r") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        let Ok(n) = after[..digits].parse::<u32>() else {
            out.push_str("$r");
            rest = after;
            continue;
        };
        // `$rN+K`: a byte offset inside the register.
        let mut offset = reg_offset(n);
        let mut tail = &after[digits..];
        if let Some(plus) = tail.strip_prefix('+') {
            let k = plus.chars().take_while(char::is_ascii_digit).count();
            offset += plus[..k].parse::<u32>().unwrap_or(0);
            tail = &plus[k..];
        }
        out.push_str(&format!("{offset:#x}"));
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn load(path: &Path) -> Result<Parsed, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let block = parse_block(&substitute_regs(&text), &test_helpers()).map_err(|e| e.to_string())?;
    let mut cases = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if let Some(msg) = l.strip_prefix("; verify-error:") {
            return Ok(Parsed::VerifyError(block, msg.trim().to_string()));
        }
        let Some(body) = l.strip_prefix("; case:") else {
            continue;
        };
        let (init, expect) = body
            .split_once("=>")
            .ok_or_else(|| format!("line {}: a case needs `=>`", i + 1))?;
        let items = |s: &str| -> Result<Vec<Item>, String> {
            s.split_whitespace()
                .map(|t| parse_item(t).map_err(|e| format!("line {}: {e}", i + 1)))
                .collect()
        };
        cases.push(Case {
            line: i + 1,
            init: items(init)?,
            expect: items(expect)?,
        });
    }
    if cases.is_empty() {
        return Err("no `; case:` lines".into());
    }
    Ok(Parsed::Run(TestFile { block, cases }))
}

/// The final state of one run, compared across executors.
#[derive(Debug, PartialEq)]
struct Outcome {
    exit: BlockExit,
    pc: u64,
    insn_count: u64,
    exception_pending: u64,
    fault_addr: u64,
    /// Slow-path calls: both tiers must take the TLB fast path exactly when it hits.
    slow_calls: u64,
    regs: [u64; 32],
    ram: Vec<u8>,
}

fn setup(init: &[Item]) -> Box<TestCpu> {
    let mut cpu = TestCpu::new();
    for it in init {
        match *it {
            Item::Reg(i, v) => cpu.regs[i] = v,
            Item::Mem(bytes, a, v) => assert!(cpu.write_mem(a, bytes, v), "init outside RAM"),
            Item::Pc(v) => cpu.common.pc = v,
            Item::InsnCount(v) => cpu.common.insn_count = v,
            Item::InsnLimit(v) => cpu.common.insn_limit = v,
            Item::Unmap(a) => cpu.unmap_page(a),
            Item::NotDirty(a) => cpu.set_notdirty(a),
            Item::Exit(_) | Item::FaultAddr(_) | Item::ExceptionPending(_) | Item::SlowCalls(_) => {
            }
        }
    }
    cpu
}

fn outcome(cpu: &TestCpu, exit: BlockExit) -> Outcome {
    Outcome {
        exit,
        pc: cpu.common.pc,
        insn_count: cpu.common.insn_count,
        exception_pending: cpu.common.exception_pending,
        fault_addr: cpu.fault_addr,
        slow_calls: cpu.slow_calls,
        regs: cpu.regs,
        ram: cpu.ram.to_vec(),
    }
}

fn check(cpu: &TestCpu, exit: BlockExit, expect: &[Item]) -> Vec<String> {
    let mut errs = Vec::new();
    let mut exit_err = None;
    let mut want = |what: String, got: u64, exp: u64| {
        if got != exp {
            errs.push(format!("{what} = {got:#x}, expected {exp:#x}"));
        }
    };
    for it in expect {
        match *it {
            Item::Reg(i, v) => want(format!("r{i}"), cpu.regs[i], v),
            Item::Mem(bytes, a, v) => want(
                format!("mem{}[{a:#x}]", bytes * 8),
                cpu.read_mem(a, bytes).unwrap_or(!v),
                v,
            ),
            Item::Pc(v) => want("pc".into(), cpu.common.pc, v),
            Item::InsnCount(v) => want("insn_count".into(), cpu.common.insn_count, v),
            Item::InsnLimit(v) => want("insn_limit".into(), cpu.common.insn_limit, v),
            Item::FaultAddr(v) => want("fault_addr".into(), cpu.fault_addr, v),
            Item::ExceptionPending(v) => {
                want("exception_pending".into(), cpu.common.exception_pending, v)
            }
            Item::SlowCalls(v) => want("slow_calls".into(), cpu.slow_calls, v),
            Item::Unmap(_) | Item::NotDirty(_) => {}
            Item::Exit(e) => {
                if e != exit {
                    exit_err = Some(format!("exit = {exit:?}, expected {e:?}"));
                }
            }
        }
    }
    errs.extend(exit_err);
    errs
}

type Runner<'a> = Box<dyn Fn(&mut TestCpu) -> BlockExit + 'a>;

fn run_file(path: &Path) -> Vec<String> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let parsed = match load(path) {
        Ok(p) => p,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    let file = match parsed {
        Parsed::VerifyError(block, msg) => {
            return match verify(&block) {
                Ok(()) => vec![format!("{name}: verified, expected an error with `{msg}`")],
                Err(e) if e.to_string().contains(&msg) => vec![],
                Err(e) => vec![format!("{name}: error `{e}` does not contain `{msg}`")],
            };
        }
        Parsed::Run(f) => f,
    };
    if let Err(e) = verify(&file.block) {
        return vec![format!("{name}: {e}")];
    }
    let mut errs = Vec::new();
    // The text form round-trips.
    let text = file.block.to_string();
    match parse_block(&text, &test_helpers()) {
        Ok(back) if back.to_string() == text && back.ops == file.block.ops => {}
        Ok(_) => errs.push(format!("{name}: text form does not round-trip")),
        Err(e) => errs.push(format!("{name}: printed form does not parse: {e}")),
    }
    let mut optimized = file.block.clone();
    optimize(&mut optimized);
    let plain = InterpBlock::new(&file.block);
    let opt = InterpBlock::new(&optimized);
    let mut runners: Vec<(&str, &IrBlock, Runner)> = vec![
        (
            "interp",
            &file.block,
            // SAFETY: the pointer is the test CPU's own, borrowed for the call, and the
            // block's globals are its registers.
            Box::new(|c: &mut TestCpu| unsafe { plain.run(c.state_ptr()) }),
        ),
        (
            "interp+opt",
            &optimized,
            // SAFETY: as above.
            Box::new(|c: &mut TestCpu| unsafe { opt.run(c.state_ptr()) }),
        ),
    ];
    for (label, b) in [("cranelift", &file.block), ("cranelift+opt", &optimized)] {
        match compile_standalone(b) {
            Ok(code) => runners.push((
                label,
                b,
                // SAFETY: as above.
                Box::new(move |c: &mut TestCpu| unsafe { code.run(c.state_ptr()) }),
            )),
            // A documented tier-1 limit: the engine runs such blocks on the interpreter.
            Err(BackendError::Unsupported(what)) => {
                eprintln!("{name}: {label}: skipped, tier 1 cannot lower {what}")
            }
            Err(e) => errs.push(format!("{name}: {label}: compile failed: {e}")),
        }
    }
    for case in &file.cases {
        let mut reference: Option<Outcome> = None;
        for (label, block, run) in &runners {
            let mut cpu = setup(&case.init);
            let exit = run(&mut cpu);
            // Goto slots number the exits of the block that ran; the optimizer may remove
            // unreachable ones. Check the slot's target is the new pc, then name it by the
            // original block's numbering.
            let exit = match exit {
                BlockExit::Goto { slot } => {
                    let target = goto_targets(block).get(slot as usize).copied();
                    if target != Some(cpu.common.pc) {
                        errs.push(format!(
                            "{name}:{} [{label}]: goto slot {slot} targets {target:x?}, pc is {:#x}",
                            case.line, cpu.common.pc
                        ));
                    }
                    let orig = goto_targets(&file.block)
                        .iter()
                        .position(|&t| Some(t) == target)
                        .unwrap_or(usize::MAX);
                    BlockExit::Goto { slot: orig as u32 }
                }
                e => e,
            };
            for e in check(&cpu, exit, &case.expect) {
                errs.push(format!("{name}:{} [{label}]: {e}", case.line));
            }
            let o = outcome(&cpu, exit);
            match &reference {
                None => reference = Some(o),
                Some(r) if *r != o => errs.push(format!(
                    "{name}:{} [{label}] disagrees with the interpreter: {}",
                    case.line,
                    diff(r, &o)
                )),
                Some(_) => {}
            }
        }
    }
    if !errs.is_empty() {
        errs.push(format!("{name}: optimized block was:\n{optimized}"));
    }
    errs
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

fn diff(a: &Outcome, b: &Outcome) -> String {
    let mut d = Vec::new();
    if a.exit != b.exit {
        d.push(format!("exit {:?} vs {:?}", a.exit, b.exit));
    }
    for (what, x, y) in [
        ("pc", a.pc, b.pc),
        ("insn_count", a.insn_count, b.insn_count),
        (
            "exception_pending",
            a.exception_pending,
            b.exception_pending,
        ),
        ("fault_addr", a.fault_addr, b.fault_addr),
        ("slow_calls", a.slow_calls, b.slow_calls),
    ] {
        if x != y {
            d.push(format!("{what} {x:#x} vs {y:#x}"));
        }
    }
    for (i, (x, y)) in a.regs.iter().zip(&b.regs).enumerate() {
        if x != y {
            d.push(format!("r{i} {x:#x} vs {y:#x}"));
        }
    }
    if let Some(i) = a.ram.iter().zip(&b.ram).position(|(x, y)| x != y) {
        d.push(format!("RAM differs first at offset {i:#x}"));
    }
    d.join(", ")
}

fn ir_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "ir"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn ir_file_tests() {
    let files = ir_files();
    // `EMU_IR_FILE=name` runs the files whose name contains it.
    let filter = std::env::var("EMU_IR_FILE").unwrap_or_default();
    let mut failures = Vec::new();
    let mut ran = 0;
    for f in &files {
        if !f.to_string_lossy().contains(&filter) {
            continue;
        }
        ran += 1;
        failures.extend(run_file(f));
    }
    assert!(ran > 0, "no IR files matched");
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if filter.is_empty() {
        assert!(files.len() >= 25, "only {} IR files", files.len());
    }
}
