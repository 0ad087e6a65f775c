//! The IR verifier: the rules of `ir/mod.rs` checked on one block. Executors and passes may
//! assume a verified block; a failure is a bug in whoever built the block (a lifter or a pass),
//! never a guest fault.

use super::print::op_to_string;
use super::*;

/// A rule the block breaks, at op `index` (`index == ops.len()` for whole-block rules).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("IR verifier: op {index} `{op}`: {msg}")]
pub struct VerifyError {
    pub index: usize,
    /// The op in the text form (empty for whole-block rules).
    pub op: String,
    pub msg: String,
}

/// Check every rule of the IR on `block`.
pub fn verify(block: &IrBlock) -> Result<(), VerifyError> {
    let mut v = Verifier {
        block,
        defined: vec![false; block.values.len()],
        label_defined: vec![false; block.labels as usize],
        index: 0,
    };
    let mut pending_targets: Vec<(Label, usize)> = Vec::new();
    let mut insns = 0u32;
    for (i, op) in block.ops.iter().enumerate() {
        v.index = i;
        v.op(op, &mut pending_targets, &mut insns)?;
    }
    let end = block.ops.len();
    let whole = |msg: String| VerifyError {
        index: end,
        op: String::new(),
        msg,
    };
    match block.ops.last() {
        Some(Op::Exit(_)) | Some(Op::Br(_)) => {}
        _ => return Err(whole("the block does not end in an exit or branch".into())),
    }
    if let Some((l, i)) = pending_targets.first() {
        return Err(VerifyError {
            index: *i,
            op: block
                .ops
                .get(*i)
                .map(|o| op_to_string(block, o))
                .unwrap_or_default(),
            msg: format!("branch target {l} is never defined after the branch"),
        });
    }
    if insns != block.insn_count {
        return Err(whole(format!(
            "insn_count is {} but the block has {insns} insn ops",
            block.insn_count
        )));
    }
    Ok(())
}

struct Verifier<'a> {
    block: &'a IrBlock,
    defined: Vec<bool>,
    label_defined: Vec<bool>,
    index: usize,
}

impl Verifier<'_> {
    fn err(&self, msg: String) -> VerifyError {
        let op = self
            .block
            .ops
            .get(self.index)
            .map(|o| op_to_string(self.block, o))
            .unwrap_or_default();
        VerifyError {
            index: self.index,
            op,
            msg,
        }
    }

    /// `v` is defined earlier and has type `ty`.
    fn use_(&self, v: Value, ty: Type) -> Result<(), VerifyError> {
        match self.block.value_type(v) {
            None => Err(self.err(format!("{v} is not in the value table"))),
            Some(_) if !self.defined.get(v.0 as usize).copied().unwrap_or(false) => {
                Err(self.err(format!("{v} is used before it is defined")))
            }
            Some(t) if t != ty => Err(self.err(format!("{v} has type {t}, expected {ty}"))),
            Some(_) => Ok(()),
        }
    }

    fn use_any(&self, v: Value) -> Result<Type, VerifyError> {
        let t = self
            .block
            .value_type(v)
            .ok_or_else(|| self.err(format!("{v} is not in the value table")))?;
        self.use_(v, t)?;
        Ok(t)
    }

    /// `v` is defined here, once, with type `ty`.
    fn def(&mut self, v: Value, ty: Type) -> Result<(), VerifyError> {
        match self.block.value_type(v) {
            None => return Err(self.err(format!("{v} is not in the value table"))),
            Some(t) if t != ty => {
                return Err(self.err(format!("{v} has type {t} but the op defines a {ty}")))
            }
            Some(_) => {}
        }
        match self.defined.get_mut(v.0 as usize) {
            Some(d) if *d => Err(self.err(format!("{v} is defined twice"))),
            Some(d) => {
                *d = true;
                Ok(())
            }
            None => Err(self.err(format!("{v} is not in the value table"))),
        }
    }

    fn int(&self, ty: Type) -> Result<(), VerifyError> {
        if ty.is_int() {
            Ok(())
        } else {
            Err(self.err(format!("{ty} is not an integer type")))
        }
    }

    fn mem(&self, ty: Type, mem: MemOp, mmu_idx: u8) -> Result<(), VerifyError> {
        if mem.size_log2 > 3 {
            return Err(self.err("memory access larger than 8 bytes".into()));
        }
        let fits = if ty.is_int() {
            mem.size() <= ty.bytes()
        } else {
            mem.size() == ty.bytes()
        };
        if !fits {
            return Err(self.err(format!("a {}-byte access does not fit {ty}", mem.size())));
        }
        if usize::from(mmu_idx) >= crate::env::NB_MMU_MODES {
            return Err(self.err(format!("MMU index {mmu_idx} out of range")));
        }
        Ok(())
    }

    fn label_ok(&self, l: Label) -> Result<(), VerifyError> {
        if l.0 >= self.block.labels {
            return Err(self.err(format!(
                "{l} out of range (the block has {} labels)",
                self.block.labels
            )));
        }
        Ok(())
    }

    fn branch(&self, l: Label, pending: &mut Vec<(Label, usize)>) -> Result<(), VerifyError> {
        self.label_ok(l)?;
        if self
            .label_defined
            .get(l.0 as usize)
            .copied()
            .unwrap_or(false)
        {
            return Err(self.err(format!("branch to {l} goes backwards")));
        }
        pending.push((l, self.index));
        Ok(())
    }

    fn op(
        &mut self,
        op: &Op,
        pending: &mut Vec<(Label, usize)>,
        insns: &mut u32,
    ) -> Result<(), VerifyError> {
        match *op {
            Op::InsnStart { .. } => *insns += 1,
            Op::Const { dst, ty, .. } => self.def(dst, ty)?,
            Op::Mov { dst, ty, src } => {
                self.use_(src, ty)?;
                self.def(dst, ty)?;
            }
            Op::LoadGlobal { dst, ty, .. } => self.def(dst, ty)?,
            Op::StoreGlobal { src, ty, .. } => self.use_(src, ty)?,
            Op::Unary { op, ty, dst, src } => {
                if op == UnOp::Bitcast {
                    let st = self.use_any(src)?;
                    if st.bits() != ty.bits() {
                        return Err(self.err(format!("bitcast from {st} to {ty} changes width")));
                    }
                } else {
                    self.int(ty)?;
                    self.use_(src, ty)?;
                }
                self.def(dst, ty)?;
            }
            Op::Binary { ty, dst, a, b, .. } => {
                self.int(ty)?;
                self.use_(a, ty)?;
                self.use_(b, ty)?;
                self.def(dst, ty)?;
            }
            Op::Ext {
                kind,
                from,
                to,
                dst,
                src,
            } => {
                self.int(from)?;
                self.int(to)?;
                let ok = match kind {
                    ExtKind::Zext | ExtKind::Sext => from.bits() < to.bits(),
                    ExtKind::Trunc => from.bits() > to.bits(),
                };
                if !ok {
                    return Err(self.err(format!("cannot {kind:?} from {from} to {to}")));
                }
                self.use_(src, from)?;
                self.def(dst, to)?;
            }
            Op::SetCond { ty, dst, a, b, .. } => {
                self.int(ty)?;
                self.use_(a, ty)?;
                self.use_(b, ty)?;
                self.def(dst, Type::I8)?;
            }
            Op::Select {
                ty,
                dst,
                cond_val,
                a,
                b,
            } => {
                self.use_(cond_val, Type::I8)?;
                self.use_(a, ty)?;
                self.use_(b, ty)?;
                self.def(dst, ty)?;
            }
            Op::Load {
                ty,
                mem,
                mmu_idx,
                dst,
                addr,
            } => {
                self.mem(ty, mem, mmu_idx)?;
                self.use_(addr, Type::I64)?;
                self.def(dst, ty)?;
            }
            Op::Store {
                ty,
                mem,
                mmu_idx,
                src,
                addr,
            } => {
                self.mem(ty, mem, mmu_idx)?;
                self.use_(src, ty)?;
                self.use_(addr, Type::I64)?;
            }
            Op::Call {
                helper,
                ref args,
                dst,
            } => {
                let def = self.block.helper(helper).ok_or_else(|| {
                    self.err(format!(
                        "helper #{} out of range (the block has {})",
                        helper.0,
                        self.block.helpers.len()
                    ))
                })?;
                if args.len() != usize::from(def.args) || args.len() > 4 {
                    return Err(self.err(format!(
                        "{} takes {} arguments, given {}",
                        def.name,
                        def.args,
                        args.len()
                    )));
                }
                for a in args {
                    self.use_(*a, Type::I64)?;
                }
                match (dst, def.ret) {
                    (Some(d), true) => self.def(d, Type::I64)?,
                    (None, false) => {}
                    (Some(_), false) => {
                        return Err(self.err(format!("{} returns nothing", def.name)))
                    }
                    (None, true) => {
                        return Err(self.err(format!("{} returns a value: dst missing", def.name)))
                    }
                }
            }
            Op::Label(l) => {
                self.label_ok(l)?;
                match self.label_defined.get_mut(l.0 as usize) {
                    Some(d) if *d => return Err(self.err(format!("{l} defined twice"))),
                    Some(d) => *d = true,
                    None => {}
                }
                pending.retain(|(p, _)| *p != l);
            }
            Op::Br(l) => self.branch(l, pending)?,
            Op::BrCond {
                ty, a, b, label, ..
            } => {
                self.int(ty)?;
                self.use_(a, ty)?;
                self.use_(b, ty)?;
                self.branch(label, pending)?;
            }
            Op::Exit(t) => match t {
                Terminal::Goto { .. } | Terminal::Exit { .. } => {}
                Terminal::Indirect { pc } | Terminal::ExitDynamic { pc, .. } => {
                    self.use_(pc, Type::I64)?
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::parse::parse_block;
    use crate::testing::test_helpers;

    fn check(body: &str) -> Result<(), VerifyError> {
        let text = format!("block pc=0x1000\n{body}");
        let b = parse_block(&text, &test_helpers()).unwrap_or_else(|e| panic!("{e}"));
        verify(&b)
    }

    fn fails(body: &str, what: &str, index: usize) {
        let e = check(body).expect_err(body);
        assert!(e.msg.contains(what), "{e}");
        assert_eq!(e.index, index, "{e}");
    }

    #[test]
    fn accepts_a_diamond() {
        check(
            "insn 0x1000 0\n v0:i64 = const 1\n v1:i64 = load_global 0x100\n \
             brcond.i64 ltu v0, v1, L0\n v2:i64 = add v0, v1\n goto 0x1004\nL0:\n \
             v3:i8 = setcond.i64 eq v0, v1\n v4:i64 = select v3, v0, v1\n \
             v5:i64 = call test.add3 v0, v1, v4\n call test.raise_if v5\n indirect v5\n",
        )
        .unwrap();
    }

    #[test]
    fn rejects_broken_blocks() {
        fails(
            " v0:i64 = add v1, v1\n decl v1:i64\n goto 0\n",
            "before it is defined",
            0,
        );
        fails(
            " v0:i64 = const 1\n v0:i64 = const 2\n goto 0\n",
            "defined twice",
            1,
        );
        fails(
            " v0:i64 = const 1\n v1:i32 = const 1\n v2:i64 = add v0, v1\n goto 0\n",
            "expected i64",
            2,
        );
        fails(" v0:i64 = const 1\n", "does not end", 1);
        fails(" v0:i64 = const 1\n br L0\nL0:\n", "does not end", 3);
        fails("L0:\n br L0\n", "backwards", 1);
        fails(" br L1\nL0:\n goto 0\n", "never defined", 0);
        fails("L0:\nL0:\n goto 0\n", "defined twice", 1);
        fails(
            " v0:i64 = const 1\n v1:i64 = zext.i64 v0\n goto 0\n",
            "cannot Zext",
            1,
        );
        fails(
            " v0:i64 = const 1\n v1:i8 = trunc.i16 v0\n goto 0\n",
            "has type i64",
            1,
        );
        fails(
            " v0:i64 = const 1\n v1:i8 = load u16 v0\n goto 0\n",
            "does not fit",
            1,
        );
        fails(
            " v0:i32 = const 1\n v1:i32 = load u16 v0\n goto 0\n",
            "expected i64",
            1,
        );
        fails(
            " v0:i64 = const 1\n call test.add3 v0, v0, v0\n goto 0\n",
            "dst missing",
            1,
        );
        fails(
            " v0:i64 = const 1\n call test.raise_if v0, v0\n goto 0\n",
            "takes 1",
            1,
        );
        fails(" v0:i32 = const 1\n indirect v0\n", "expected i64", 1);
        fails(
            " v0:f64 = const 1\n v1:f64 = add v0, v0\n goto 0\n",
            "not an integer",
            1,
        );
        fails(
            " v0:i64 = const 1\n v1:f32 = bitcast v0\n goto 0\n",
            "changes width",
            1,
        );
        fails(
            " v0:i64 = const 1\n v1:i64 = select v0, v0, v0\n goto 0\n",
            "expected i8",
            1,
        );
        let b = parse_block("block insns=2\n insn 0 0\n goto 0\n", &test_helpers()).unwrap();
        let e = verify(&b).unwrap_err();
        assert!(e.msg.contains("insn_count is 2"), "{e}");
    }
}
