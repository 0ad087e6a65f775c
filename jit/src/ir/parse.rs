//! The IR text form: parsing (the grammar is described in [`super::print`]).
//!
//! The parser checks syntax and names only (ops, types, helpers, value types); whether the block
//! is well formed is the verifier's job ([`super::verify`]), so a test can parse a bad block on
//! purpose. Input is untrusted: every error is a [`ParseError`] with line and column.

use super::print::{BINOPS, CONDS, EXTS, REASONS, TYPES, UNOPS};
use super::*;
use crate::helper::HelperDef;

/// A syntax or name error in IR text, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("IR text line {line}, column {col}: {msg}")]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

/// Values and labels are dense indices into tables; this bounds what a file can ask for.
const MAX_INDEX: u32 = 1 << 20;

/// Parse one block. `helpers` are the helpers `call` and `helper` lines may name.
pub fn parse_block(text: &str, helpers: &[&'static HelperDef]) -> Result<IrBlock, ParseError> {
    let mut p = Parser {
        known: helpers,
        block: IrBlock::default(),
        types: Vec::new(),
        first_use: Vec::new(),
        max_label: None,
        header: None,
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let code = raw.split(';').next().unwrap_or("");
        let toks = tokenize(code);
        if toks.is_empty() {
            continue;
        }
        let mut c = Cursor {
            toks,
            pos: 0,
            line,
            end_col: code.len() + 1,
        };
        p.line(&mut c)?;
        c.done()?;
    }
    p.finish(text.lines().count().max(1))
}

#[derive(Clone, Copy, Debug)]
struct Tok<'a> {
    text: &'a str,
    col: usize,
}

/// Split on whitespace and commas, keeping 1-based columns.
fn tokenize(line: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, ch) in line.char_indices() {
        let sep = ch.is_whitespace() || ch == ',';
        match (sep, start) {
            (true, Some(s)) => {
                out.push(Tok {
                    text: &line[s..i],
                    col: s + 1,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push(Tok {
            text: &line[s..],
            col: s + 1,
        });
    }
    out
}

struct Cursor<'a> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    line: usize,
    end_col: usize,
}

impl<'a> Cursor<'a> {
    fn err_at(&self, col: usize, msg: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            col,
            msg: msg.into(),
        }
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.pos).copied()
    }

    fn next(&mut self, what: &str) -> Result<Tok<'a>, ParseError> {
        match self.peek() {
            Some(t) => {
                self.pos += 1;
                Ok(t)
            }
            None => Err(self.err_at(self.end_col, format!("expected {what}"))),
        }
    }

    fn done(&self) -> Result<(), ParseError> {
        match self.peek() {
            Some(t) => Err(self.err_at(t.col, format!("unexpected `{}`", t.text))),
            None => Ok(()),
        }
    }

    fn number(&mut self, what: &str) -> Result<u64, ParseError> {
        let t = self.next(what)?;
        parse_u64(t.text).ok_or_else(|| self.err_at(t.col, format!("bad {what} `{}`", t.text)))
    }

    fn keyword<T: Copy>(&mut self, table: &[(T, &str)], what: &str) -> Result<T, ParseError> {
        let t = self.next(what)?;
        lookup(table, t.text)
            .ok_or_else(|| self.err_at(t.col, format!("unknown {what} `{}`", t.text)))
    }

    fn label(&mut self) -> Result<(Label, Tok<'a>), ParseError> {
        let t = self.next("label")?;
        let l = t
            .text
            .strip_prefix('L')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|&n| n < MAX_INDEX)
            .ok_or_else(|| self.err_at(t.col, format!("bad label `{}`", t.text)))?;
        Ok((Label(l), t))
    }
}

fn lookup<T: Copy>(table: &[(T, &str)], name: &str) -> Option<T> {
    table.iter().find(|(_, n)| *n == name).map(|(t, _)| *t)
}

/// Decimal, `0x` hex, or `-decimal` (two's complement).
fn parse_u64(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(d) = s.strip_prefix('-') {
        let n = d.parse::<u64>().ok()?;
        (n <= 1 << 63).then(|| n.wrapping_neg())
    } else {
        s.parse::<u64>().ok()
    }
}

fn parse_value_index(text: &str) -> Option<u32> {
    text.strip_prefix('v')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|&n| n < MAX_INDEX)
}

struct Header {
    insns: Option<u32>,
    labels: Option<u32>,
}

struct Parser<'h> {
    known: &'h [&'static HelperDef],
    block: IrBlock,
    /// Type of each value, from its definition or `decl`.
    types: Vec<Option<Type>>,
    /// Where each value was first mentioned, for "no type" errors.
    first_use: Vec<Option<(usize, usize)>>,
    max_label: Option<u32>,
    header: Option<Header>,
}

impl Parser<'_> {
    fn touch(&mut self, v: u32, line: usize, col: usize) {
        let i = v as usize;
        if self.types.len() <= i {
            self.types.resize(i + 1, None);
            self.first_use.resize(i + 1, None);
        }
        if let Some(slot) = self.first_use.get_mut(i) {
            slot.get_or_insert((line, col));
        }
    }

    /// A used value `vN`.
    fn use_value(&mut self, c: &mut Cursor<'_>) -> Result<Value, ParseError> {
        let t = c.next("value")?;
        let v = parse_value_index(t.text)
            .ok_or_else(|| c.err_at(t.col, format!("expected a value, found `{}`", t.text)))?;
        self.touch(v, c.line, t.col);
        Ok(Value(v))
    }

    /// A defined value `vN:ty`.
    fn def_value(&mut self, c: &mut Cursor<'_>) -> Result<(Value, Type), ParseError> {
        let t = c.next("value")?;
        let (name, ty) = t
            .text
            .split_once(':')
            .ok_or_else(|| c.err_at(t.col, format!("expected `vN:type`, found `{}`", t.text)))?;
        let v = parse_value_index(name)
            .ok_or_else(|| c.err_at(t.col, format!("expected a value, found `{name}`")))?;
        let ty =
            lookup(&TYPES, ty).ok_or_else(|| c.err_at(t.col, format!("unknown type `{ty}`")))?;
        self.touch(v, c.line, t.col);
        match self.types.get_mut(v as usize) {
            Some(Some(old)) if *old != ty => {
                return Err(c.err_at(t.col, format!("v{v} already has type {old}")));
            }
            Some(slot) => *slot = Some(ty),
            None => {}
        }
        Ok((Value(v), ty))
    }

    fn use_label(&mut self, c: &mut Cursor<'_>) -> Result<Label, ParseError> {
        let (l, _) = c.label()?;
        self.max_label = Some(self.max_label.map_or(l.0, |m| m.max(l.0)));
        Ok(l)
    }

    fn helper_by_name(&mut self, c: &Cursor<'_>, t: Tok<'_>) -> Result<HelperId, ParseError> {
        if let Some(n) = t.text.strip_prefix('#') {
            return n
                .parse::<u32>()
                .map(HelperId)
                .map_err(|_| c.err_at(t.col, format!("bad helper index `{}`", t.text)));
        }
        if let Some(i) = self.block.helpers.iter().position(|h| h.name == t.text) {
            return Ok(HelperId(i as u32));
        }
        let def = self
            .known
            .iter()
            .find(|h| h.name == t.text)
            .ok_or_else(|| c.err_at(t.col, format!("unknown helper `{}`", t.text)))?;
        self.block.helpers.push(def);
        Ok(HelperId(self.block.helpers.len() as u32 - 1))
    }

    fn memop(&mut self, c: &mut Cursor<'_>) -> Result<(MemOp, u8), ParseError> {
        let t = c.next("memory access size (e.g. u32)")?;
        let bad = || c.err_at(t.col, format!("bad memory access `{}`", t.text));
        let (signed, bits) = match t.text.split_at_checked(1) {
            Some(("s", b)) => (true, b),
            Some(("u", b)) => (false, b),
            _ => return Err(bad()),
        };
        let size_log2 = match bits {
            "8" => 0,
            "16" => 1,
            "32" => 2,
            "64" => 3,
            _ => return Err(bad()),
        };
        let mut mem = MemOp::new(size_log2, signed, false);
        let mut mmu = 0u8;
        while let Some(t) = c.peek() {
            if t.text == "aligned" {
                mem.aligned = true;
            } else if t.text == "intent" {
                mem.store_intent = true;
            } else if let Some(n) = t.text.strip_prefix("mmu=") {
                mmu = n
                    .parse::<u8>()
                    .map_err(|_| c.err_at(t.col, format!("bad MMU index `{n}`")))?;
            } else {
                break;
            }
            c.pos += 1;
        }
        Ok((mem, mmu))
    }

    fn line(&mut self, c: &mut Cursor<'_>) -> Result<(), ParseError> {
        let first = c.next("op")?;
        if self.header.is_none() {
            if first.text != "block" {
                return Err(c.err_at(first.col, "expected the `block` header line first"));
            }
            return self.header(c);
        }
        let (base, sfx) = match first.text.split_once('.') {
            Some((b, s)) => (b, Some(s)),
            None => (first.text, None),
        };
        let sfx_ty = |c: &Cursor<'_>| -> Result<Type, ParseError> {
            sfx.and_then(|s| lookup(&TYPES, s))
                .ok_or_else(|| c.err_at(first.col, format!("`{base}` needs a type suffix")))
        };
        let op = match base {
            "helper" => {
                let t = c.next("helper name")?;
                if self.block.helpers.iter().any(|h| h.name == t.text) {
                    return Err(c.err_at(t.col, format!("helper `{}` listed twice", t.text)));
                }
                self.helper_by_name(c, t)?;
                return Ok(());
            }
            "decl" => {
                self.def_value(c)?;
                return Ok(());
            }
            "insn" => {
                let pc = c.number("pc")?;
                let t = c.next("encoding")?;
                let insn = parse_u64(t.text)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| c.err_at(t.col, format!("bad encoding `{}`", t.text)))?;
                Op::InsnStart { pc, insn }
            }
            "store_global" => {
                let ty = sfx_ty(c)?;
                let t = c.next("offset")?;
                let offset = parse_u64(t.text)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| c.err_at(t.col, format!("bad offset `{}`", t.text)))?;
                let src = self.use_value(c)?;
                Op::StoreGlobal { src, ty, offset }
            }
            "store" => {
                let ty = sfx_ty(c)?;
                let (mem, mmu_idx) = self.memop(c)?;
                let src = self.use_value(c)?;
                let addr = self.use_value(c)?;
                Op::Store {
                    ty,
                    mem,
                    mmu_idx,
                    src,
                    addr,
                }
            }
            "br" => Op::Br(self.use_label(c)?),
            "brcond" => {
                let ty = sfx_ty(c)?;
                let cond = c.keyword(&CONDS, "condition")?;
                let a = self.use_value(c)?;
                let b = self.use_value(c)?;
                let label = self.use_label(c)?;
                Op::BrCond {
                    cond,
                    ty,
                    a,
                    b,
                    label,
                }
            }
            "goto" => Op::Exit(Terminal::Goto {
                pc: c.number("pc")?,
            }),
            "indirect" => Op::Exit(Terminal::Indirect {
                pc: self.use_value(c)?,
            }),
            "exit" => {
                let reason = c.keyword(&REASONS, "exit reason")?;
                Op::Exit(Terminal::Exit {
                    reason,
                    pc: c.number("pc")?,
                })
            }
            "exit_dynamic" => {
                let reason = c.keyword(&REASONS, "exit reason")?;
                Op::Exit(Terminal::ExitDynamic {
                    reason,
                    pc: self.use_value(c)?,
                })
            }
            "call" => self.call(c, None)?,
            _ if base.starts_with('L') && base.ends_with(':') && sfx.is_none() => {
                let l = base
                    .strip_prefix('L')
                    .and_then(|s| s.strip_suffix(':'))
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n < MAX_INDEX)
                    .ok_or_else(|| c.err_at(first.col, format!("bad label `{base}`")))?;
                self.max_label = Some(self.max_label.map_or(l, |m| m.max(l)));
                Op::Label(Label(l))
            }
            _ if base.starts_with('v') => {
                c.pos -= 1;
                self.assignment(c)?
            }
            _ => return Err(c.err_at(first.col, format!("unknown op `{}`", first.text))),
        };
        self.block.ops.push(op);
        Ok(())
    }

    fn call(&mut self, c: &mut Cursor<'_>, dst: Option<Value>) -> Result<Op, ParseError> {
        let t = c.next("helper name")?;
        let helper = self.helper_by_name(c, t)?;
        let mut args = Vec::new();
        while c.peek().is_some() {
            if args.len() == 4 {
                let t = c.next("")?;
                return Err(c.err_at(t.col, "a helper takes at most 4 arguments"));
            }
            args.push(self.use_value(c)?);
        }
        let args = CallArgs::new(&args).unwrap_or_default();
        Ok(Op::Call { helper, args, dst })
    }

    /// `vN:ty = op[.suffix] operands`
    fn assignment(&mut self, c: &mut Cursor<'_>) -> Result<Op, ParseError> {
        let (dst, dty) = self.def_value(c)?;
        let eq = c.next("`=`")?;
        if eq.text != "=" {
            return Err(c.err_at(eq.col, format!("expected `=`, found `{}`", eq.text)));
        }
        let t = c.next("op")?;
        let mut parts = t.text.split('.');
        let base = parts.next().unwrap_or("");
        let mut sfx = Vec::new();
        for s in parts {
            sfx.push(
                lookup(&TYPES, s).ok_or_else(|| c.err_at(t.col, format!("unknown type `{s}`")))?,
            );
        }
        // `.ty` overrides the op type, which otherwise is the destination's.
        let op_ty = |max: usize| -> Result<Type, ParseError> {
            if sfx.len() > max {
                return Err(c.err_at(t.col, format!("too many type suffixes on `{}`", t.text)));
            }
            Ok(sfx.first().copied().unwrap_or(dty))
        };
        Ok(match base {
            "const" => Op::Const {
                dst,
                ty: op_ty(1)?,
                imm: c.number("immediate")?,
            },
            "mov" => Op::Mov {
                dst,
                ty: op_ty(1)?,
                src: self.use_value(c)?,
            },
            "load_global" => {
                let ty = op_ty(1)?;
                let o = c.next("offset")?;
                let offset = parse_u64(o.text)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| c.err_at(o.col, format!("bad offset `{}`", o.text)))?;
                Op::LoadGlobal { dst, ty, offset }
            }
            "setcond" => {
                let ty = sfx
                    .first()
                    .copied()
                    .filter(|_| sfx.len() == 1)
                    .ok_or_else(|| c.err_at(t.col, "`setcond` needs one type suffix"))?;
                let cond = c.keyword(&CONDS, "condition")?;
                let a = self.use_value(c)?;
                let b = self.use_value(c)?;
                Op::SetCond {
                    cond,
                    ty,
                    dst,
                    a,
                    b,
                }
            }
            "select" => {
                let ty = op_ty(1)?;
                let cond_val = self.use_value(c)?;
                let a = self.use_value(c)?;
                let b = self.use_value(c)?;
                Op::Select {
                    ty,
                    dst,
                    cond_val,
                    a,
                    b,
                }
            }
            "load" => {
                let ty = op_ty(1)?;
                let (mem, mmu_idx) = self.memop(c)?;
                let addr = self.use_value(c)?;
                Op::Load {
                    ty,
                    mem,
                    mmu_idx,
                    dst,
                    addr,
                }
            }
            "call" => return self.call(c, Some(dst)),
            _ => {
                if let Some(kind) = lookup(&EXTS, base) {
                    let (from, to) = match sfx.as_slice() {
                        [from] => (*from, dty),
                        [from, to] => (*from, *to),
                        _ => return Err(c.err_at(t.col, format!("`{base}` needs `.from` type"))),
                    };
                    Op::Ext {
                        kind,
                        from,
                        to,
                        dst,
                        src: self.use_value(c)?,
                    }
                } else if let Some(op) = lookup(&UNOPS, base) {
                    Op::Unary {
                        op,
                        ty: op_ty(1)?,
                        dst,
                        src: self.use_value(c)?,
                    }
                } else if let Some(op) = lookup(&BINOPS, base) {
                    let ty = op_ty(1)?;
                    let a = self.use_value(c)?;
                    let b = self.use_value(c)?;
                    Op::Binary { op, ty, dst, a, b }
                } else {
                    return Err(c.err_at(t.col, format!("unknown op `{}`", t.text)));
                }
            }
        })
    }

    fn header(&mut self, c: &mut Cursor<'_>) -> Result<(), ParseError> {
        let mut h = Header {
            insns: None,
            labels: None,
        };
        while let Some(t) = c.peek() {
            c.pos += 1;
            let (k, v) = t.text.split_once('=').ok_or_else(|| {
                c.err_at(t.col, format!("expected key=value, found `{}`", t.text))
            })?;
            let n = parse_u64(v).ok_or_else(|| c.err_at(t.col, format!("bad number `{v}`")))?;
            let n32 =
                || u32::try_from(n).map_err(|_| c.err_at(t.col, format!("`{k}` too large: {v}")));
            match k {
                "pc" => self.block.start_pc = n,
                "insns" => h.insns = Some(n32()?),
                "size" => self.block.guest_size = n32()?,
                "labels" => h.labels = Some(n32()?.min(MAX_INDEX)),
                _ => return Err(c.err_at(t.col, format!("unknown header key `{k}`"))),
            }
        }
        self.header = Some(h);
        Ok(())
    }

    fn finish(mut self, last_line: usize) -> Result<IrBlock, ParseError> {
        let Some(h) = self.header else {
            return Err(ParseError {
                line: last_line,
                col: 1,
                msg: "empty block: expected a `block` header line".into(),
            });
        };
        let mut values = Vec::with_capacity(self.types.len());
        for (i, t) in self.types.iter().enumerate() {
            match t {
                Some(t) => values.push(*t),
                None => {
                    return Err(match self.first_use.get(i).copied().flatten() {
                        Some((line, col)) => ParseError {
                            line,
                            col,
                            msg: format!(
                                "v{i} has no type: no op defines it and no `decl` gives one"
                            ),
                        },
                        None => ParseError {
                            line: last_line,
                            col: 1,
                            msg: format!(
                                "v{i} is never mentioned, but values are numbered densely up to v{}",
                                self.types.len() - 1
                            ),
                        },
                    });
                }
            }
        }
        self.block.values = values;
        self.block.insn_count = h.insns.unwrap_or_else(|| {
            let n = self
                .block
                .ops
                .iter()
                .filter(|o| matches!(o, Op::InsnStart { .. }))
                .count();
            n as u32
        });
        self.block.labels = h
            .labels
            .unwrap_or_else(|| self.max_label.map_or(0, |m| m + 1));
        Ok(self.block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_helpers, ADD3, RAISE_IF};

    fn same(a: &IrBlock, b: &IrBlock) -> bool {
        a.values == b.values
            && a.labels == b.labels
            && a.ops == b.ops
            && a.start_pc == b.start_pc
            && a.insn_count == b.insn_count
            && a.guest_size == b.guest_size
            && a.helpers.len() == b.helpers.len()
            && a.helpers
                .iter()
                .zip(&b.helpers)
                .all(|(x, y)| std::ptr::eq(*x, *y))
    }

    fn sample() -> IrBlock {
        let mut b = Builder::new(0x8000_0000);
        b.set_guest_size(12);
        b.insn_start(0x8000_0000, 0x00a0_0093);
        let x = b.iconst(Type::I64, u64::MAX);
        let y = b.load_global(Type::I32, 0x108);
        let z = b.sext(Type::I32, Type::I64, y);
        let t = b.trunc(Type::I64, Type::I8, z);
        let s = b.binary(BinOp::MaxU, Type::I64, x, z);
        b.unary(UnOp::Bitcast, Type::F64, s);
        let c = b.set_cond(Cond::Geu, Type::I8, t, t);
        let sel = b.select(Type::I64, c, x, s);
        b.iconst(Type::I128, 7);
        let l = b.new_label();
        let l2 = b.new_label();
        b.br_cond(Cond::Lt, Type::I64, x, sel, l);
        b.insn_start(0x8000_0004, 0x1234);
        let ld = b.load(
            Type::I64,
            MemOp::new(2, true, true).with_store_intent(),
            3,
            sel,
        );
        b.store(Type::I64, MemOp::new(1, false, false), 0, ld, sel);
        b.call(&ADD3, &[x, ld, sel]);
        b.call(&RAISE_IF, &[x]);
        b.store_global(Type::I64, 0x110, s);
        b.br(l2);
        b.label(l);
        b.exit(Terminal::Exit {
            reason: ExitReason::Yield,
            pc: 0x8000_0008,
        });
        b.label(l2);
        b.insn_start(0x8000_0008, 0);
        b.exit(Terminal::ExitDynamic {
            reason: ExitReason::Halt,
            pc: sel,
        });
        let mut blk = b.finish();
        blk.values.push(Type::F32); // an undefined value keeps its type
        blk
    }

    #[test]
    fn round_trips_exactly() {
        let blk = sample();
        let text = blk.to_string();
        let back = parse_block(&text, &test_helpers()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(same(&blk, &back), "{text}\n---\n{back}");
        assert_eq!(back.to_string(), text);
    }

    #[test]
    fn hand_written_defaults_and_comments() {
        let text = "block pc=0x1000 ; comment\n  insn 0x1000 0x13\n  v0:i64 = const -1\n  \
                    v1:i64 = call test.add3 v0, v0, v0\n  brcond.i64 eq v0, v1, L2\n  goto 0x1004\nL2:\n  indirect v1\n";
        let b = parse_block(text, &test_helpers()).unwrap();
        assert_eq!(b.insn_count, 1);
        assert_eq!(b.labels, 3);
        assert_eq!(b.values, vec![Type::I64, Type::I64]);
        assert_eq!(
            b.ops[1],
            Op::Const {
                dst: Value(0),
                ty: Type::I64,
                imm: u64::MAX
            }
        );
        assert_eq!(b.helpers.len(), 1);
    }

    #[test]
    fn errors_have_positions() {
        let h = test_helpers();
        let e = parse_block("block\n  v0:i64 = frob v1\n", &h).unwrap_err();
        assert_eq!((e.line, e.col), (2, 12));
        let e = parse_block("block\n  v0:i64 = call nope\n", &h).unwrap_err();
        assert!(e.msg.contains("unknown helper"), "{e}");
        let e = parse_block("block\n  v0:i64 = add v1, v2\n", &h).unwrap_err();
        assert!(e.msg.contains("v1 has no type"), "{e}");
        assert_eq!((e.line, e.col), (2, 16));
        let e = parse_block("  goto 0\n", &h).unwrap_err();
        assert!(e.msg.contains("header"), "{e}");
        let e = parse_block("block\n  v0:i64 = const 1 2\n", &h).unwrap_err();
        assert_eq!(e.col, 20);
        let e = parse_block("block\n  v0:i64 = load u24 v0\n", &h).unwrap_err();
        assert!(e.msg.contains("bad memory access"), "{e}");
        let e = parse_block("block\n  v99999999:i64 = const 1\n", &h).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse_block("block\n  v0:i64 = const 1\n  v0:i32 = const 1\n", &h).unwrap_err();
        assert!(e.msg.contains("already has type"), "{e}");
    }

    /// IR files are input: mangled text must give an error or a block, never a panic, and
    /// whatever parses must not make the verifier panic either.
    #[test]
    fn mangled_text_never_panics() {
        use rand::{Rng, SeedableRng};
        let text = sample().to_string();
        let pieces = [
            "",
            " ",
            ",",
            ";",
            ":",
            "=",
            "v",
            "L",
            ".",
            "0x",
            "-",
            "9",
            "v99",
            "i128",
            "é",
            "mmu=",
            "\n",
            "decl v1:i64\n",
            "br L7\n",
            "call test.add3",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let helpers = test_helpers();
        for _ in 0..3000 {
            let mut t: Vec<char> = text.chars().collect();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..=t.len());
                let cut = rng.gen_range(0..4).min(t.len() - at);
                let piece = pieces[rng.gen_range(0..pieces.len())];
                t.splice(at..at + cut, piece.chars());
            }
            let t: String = t.into_iter().collect();
            if let Ok(b) = parse_block(&t, &helpers) {
                let _ = crate::ir::verify::verify(&b);
            }
        }
    }
}
