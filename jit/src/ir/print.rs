//! The IR text form: printing. The grammar (parsed back by [`super::parse`]) is line based:
//!
//! ```text
//! block pc=0x80000000 insns=2 size=8 labels=1     ; header, first line
//! helper test.add3                                ; helper table, in HelperId order
//! decl v9:i64                                     ; a value no op defines (keeps its type)
//!   insn 0x80000000 0x00a00093                    ; InsnStart { pc, insn }
//!   v0:i64 = const 0x5
//!   v1:i64 = load_global 0x108
//!   v2:i64 = add v0, v1                           ; op type = dst type unless `.ty` is given
//!   v3:i8 = setcond.i64 ltu v0, v1
//!   v4:i64 = sext.i32 v5                          ; `from` type; `to` is the dst type
//!   v6:i64 = load s32 aligned intent mmu=1 v2     ; MemOp: [su]{8,16,32,64}, flags, MMU index
//!   store.i64 u32 v6, v2                          ; src, addr
//!   store_global.i64 0x108, v2
//!   v7:i64 = call test.add3 v0, v1, v2
//!   brcond.i64 eq v0, v1, L0
//! L0:
//!   goto 0x80000008                               ; or: indirect v2 / exit yield 0x80000008 /
//!                                                 ;     exit_dynamic halt v2 / br L0
//! ```
//!
//! A `;` starts a comment. Printing then parsing gives back an equal block (types, labels,
//! header fields and helper table included).

use super::*;
use std::fmt;

pub const BINOPS: [(BinOp, &str); 25] = [
    (BinOp::Add, "add"),
    (BinOp::Sub, "sub"),
    (BinOp::Mul, "mul"),
    (BinOp::MulHs, "mulhs"),
    (BinOp::MulHu, "mulhu"),
    (BinOp::MulHsu, "mulhsu"),
    (BinOp::DivS, "divs"),
    (BinOp::DivU, "divu"),
    (BinOp::RemS, "rems"),
    (BinOp::RemU, "remu"),
    (BinOp::And, "and"),
    (BinOp::Or, "or"),
    (BinOp::Xor, "xor"),
    (BinOp::AndNot, "andnot"),
    (BinOp::OrNot, "ornot"),
    (BinOp::XorNot, "xornot"),
    (BinOp::Shl, "shl"),
    (BinOp::Shr, "shr"),
    (BinOp::Sar, "sar"),
    (BinOp::Rotl, "rotl"),
    (BinOp::Rotr, "rotr"),
    (BinOp::MinS, "mins"),
    (BinOp::MaxS, "maxs"),
    (BinOp::MinU, "minu"),
    (BinOp::MaxU, "maxu"),
];

pub const UNOPS: [(UnOp, &str); 7] = [
    (UnOp::Not, "not"),
    (UnOp::Neg, "neg"),
    (UnOp::Clz, "clz"),
    (UnOp::Ctz, "ctz"),
    (UnOp::Popcnt, "popcnt"),
    (UnOp::Bswap, "bswap"),
    (UnOp::Bitcast, "bitcast"),
];

pub const EXTS: [(ExtKind, &str); 3] = [
    (ExtKind::Zext, "zext"),
    (ExtKind::Sext, "sext"),
    (ExtKind::Trunc, "trunc"),
];

pub const CONDS: [(Cond, &str); 10] = [
    (Cond::Eq, "eq"),
    (Cond::Ne, "ne"),
    (Cond::Lt, "lt"),
    (Cond::Ge, "ge"),
    (Cond::Ltu, "ltu"),
    (Cond::Geu, "geu"),
    (Cond::Gt, "gt"),
    (Cond::Le, "le"),
    (Cond::Gtu, "gtu"),
    (Cond::Leu, "leu"),
];

pub const TYPES: [(Type, &str); 7] = [
    (Type::I8, "i8"),
    (Type::I16, "i16"),
    (Type::I32, "i32"),
    (Type::I64, "i64"),
    (Type::I128, "i128"),
    (Type::F32, "f32"),
    (Type::F64, "f64"),
];

pub const REASONS: [(ExitReason, &str); 3] = [
    (ExitReason::Exception, "exception"),
    (ExitReason::Yield, "yield"),
    (ExitReason::Halt, "halt"),
];

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], x: T) -> &'static str {
    table.iter().find(|(t, _)| *t == x).map_or("?", |(_, n)| n)
}

pub fn binop_name(op: BinOp) -> &'static str {
    name_of(&BINOPS, op)
}

pub fn unop_name(op: UnOp) -> &'static str {
    name_of(&UNOPS, op)
}

pub fn ext_name(k: ExtKind) -> &'static str {
    name_of(&EXTS, k)
}

pub fn cond_name(c: Cond) -> &'static str {
    name_of(&CONDS, c)
}

pub fn type_name(t: Type) -> &'static str {
    name_of(&TYPES, t)
}

pub fn reason_name(r: ExitReason) -> &'static str {
    name_of(&REASONS, r)
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(type_name(*self))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// Writes the whole block in the text form.
pub fn write_block(f: &mut fmt::Formatter<'_>, block: &IrBlock) -> fmt::Result {
    writeln!(
        f,
        "block pc={:#x} insns={} size={} labels={}",
        block.start_pc, block.insn_count, block.guest_size, block.labels
    )?;
    for h in &block.helpers {
        writeln!(f, "helper {}", h.name)?;
    }
    let mut defined = vec![false; block.values.len()];
    for op in &block.ops {
        if let Some(d) = op_dst(op) {
            if let Some(slot) = defined.get_mut(d.0 as usize) {
                *slot = true;
            }
        }
    }
    for (i, ty) in block.values.iter().enumerate() {
        if !defined.get(i).copied().unwrap_or(false) {
            writeln!(f, "decl v{i}:{ty}")?;
        }
    }
    for op in &block.ops {
        write_op(f, block, op)?;
        writeln!(f)?;
    }
    Ok(())
}

/// The value an op defines, if any.
pub fn op_dst(op: &Op) -> Option<Value> {
    match *op {
        Op::Const { dst, .. }
        | Op::Mov { dst, .. }
        | Op::LoadGlobal { dst, .. }
        | Op::Unary { dst, .. }
        | Op::Binary { dst, .. }
        | Op::Ext { dst, .. }
        | Op::SetCond { dst, .. }
        | Op::Select { dst, .. }
        | Op::Load { dst, .. } => Some(dst),
        Op::Call { dst, .. } => dst,
        _ => None,
    }
}

/// `vN:ty = ` for a defined value (its type from the value table).
fn write_dst(f: &mut fmt::Formatter<'_>, block: &IrBlock, dst: Value) -> fmt::Result {
    match block.value_type(dst) {
        Some(t) => write!(f, "  {dst}:{t} = "),
        None => write!(f, "  {dst}:? = "),
    }
}

/// `.ty` if the op's type differs from its destination's table type.
fn suffix(block: &IrBlock, dst: Value, ty: Type) -> String {
    if block.value_type(dst) == Some(ty) {
        String::new()
    } else {
        format!(".{ty}")
    }
}

fn write_memop(f: &mut fmt::Formatter<'_>, mem: MemOp, mmu_idx: u8) -> fmt::Result {
    let sign = if mem.signed { 's' } else { 'u' };
    write!(f, " {sign}{}", 8u32 << mem.size_log2)?;
    if mem.aligned {
        f.write_str(" aligned")?;
    }
    if mem.store_intent {
        f.write_str(" intent")?;
    }
    if mmu_idx != 0 {
        write!(f, " mmu={mmu_idx}")?;
    }
    Ok(())
}

/// Writes one op (without the newline).
pub fn write_op(f: &mut fmt::Formatter<'_>, block: &IrBlock, op: &Op) -> fmt::Result {
    match op {
        Op::InsnStart { pc, insn } => write!(f, "  insn {pc:#x} {insn:#010x}"),
        Op::Const { dst, ty, imm } => {
            write_dst(f, block, *dst)?;
            write!(f, "const{} {imm:#x}", suffix(block, *dst, *ty))
        }
        Op::Mov { dst, ty, src } => {
            write_dst(f, block, *dst)?;
            write!(f, "mov{} {src}", suffix(block, *dst, *ty))
        }
        Op::LoadGlobal { dst, ty, offset } => {
            write_dst(f, block, *dst)?;
            write!(f, "load_global{} {offset:#x}", suffix(block, *dst, *ty))
        }
        Op::StoreGlobal { src, ty, offset } => {
            write!(f, "  store_global.{ty} {offset:#x}, {src}")
        }
        Op::Unary { op, ty, dst, src } => {
            write_dst(f, block, *dst)?;
            write!(f, "{}{} {src}", unop_name(*op), suffix(block, *dst, *ty))
        }
        Op::Binary { op, ty, dst, a, b } => {
            write_dst(f, block, *dst)?;
            write!(
                f,
                "{}{} {a}, {b}",
                binop_name(*op),
                suffix(block, *dst, *ty)
            )
        }
        Op::Ext {
            kind,
            from,
            to,
            dst,
            src,
        } => {
            write_dst(f, block, *dst)?;
            write!(
                f,
                "{}.{from}{} {src}",
                ext_name(*kind),
                suffix(block, *dst, *to)
            )
        }
        Op::SetCond {
            cond,
            ty,
            dst,
            a,
            b,
        } => {
            write_dst(f, block, *dst)?;
            write!(f, "setcond.{ty} {} {a}, {b}", cond_name(*cond))
        }
        Op::Select {
            ty,
            dst,
            cond_val,
            a,
            b,
        } => {
            write_dst(f, block, *dst)?;
            write!(f, "select{} {cond_val}, {a}, {b}", suffix(block, *dst, *ty))
        }
        Op::Load {
            ty,
            mem,
            mmu_idx,
            dst,
            addr,
        } => {
            write_dst(f, block, *dst)?;
            write!(f, "load{}", suffix(block, *dst, *ty))?;
            write_memop(f, *mem, *mmu_idx)?;
            write!(f, " {addr}")
        }
        Op::Store {
            ty,
            mem,
            mmu_idx,
            src,
            addr,
        } => {
            write!(f, "  store.{ty}")?;
            write_memop(f, *mem, *mmu_idx)?;
            write!(f, " {src}, {addr}")
        }
        Op::Call { helper, args, dst } => {
            match dst {
                Some(d) => write_dst(f, block, *d)?,
                None => f.write_str("  ")?,
            }
            match block.helper(*helper) {
                Some(h) => write!(f, "call {}", h.name)?,
                None => write!(f, "call #{}", helper.0)?,
            }
            for (i, a) in args.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(f, "{sep}{a}")?;
            }
            Ok(())
        }
        Op::Label(l) => write!(f, "{l}:"),
        Op::Br(l) => write!(f, "  br {l}"),
        Op::BrCond {
            cond,
            ty,
            a,
            b,
            label,
        } => write!(f, "  brcond.{ty} {} {a}, {b}, {label}", cond_name(*cond)),
        Op::Exit(t) => match t {
            Terminal::Goto { pc } => write!(f, "  goto {pc:#x}"),
            Terminal::Indirect { pc } => write!(f, "  indirect {pc}"),
            Terminal::Exit { reason, pc } => write!(f, "  exit {} {pc:#x}", reason_name(*reason)),
            Terminal::ExitDynamic { reason, pc } => {
                write!(f, "  exit_dynamic {} {pc}", reason_name(*reason))
            }
        },
    }
}

/// One op as text, e.g. for verifier and pass messages.
pub fn op_to_string(block: &IrBlock, op: &Op) -> String {
    struct OpDisplay<'a>(&'a IrBlock, &'a Op);
    impl fmt::Display for OpDisplay<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_op(f, self.0, self.1)
        }
    }
    OpDisplay(block, op).to_string().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_header_ops_and_types() {
        let mut b = Builder::new(0x8000_0000);
        b.insn_start(0x8000_0000, 0x13);
        let x = b.iconst(Type::I64, 5);
        let y = b.load_global(Type::I32, 0x108);
        let z = b.sext(Type::I32, Type::I64, y);
        let s = b.binary(BinOp::Add, Type::I64, x, z);
        b.store_global(Type::I64, 0x110, s);
        b.goto(0x8000_0004);
        let text = b.finish().to_string();
        assert!(text.starts_with("block pc=0x80000000 insns=1 size=0 labels=0\n"));
        assert!(text.contains("  v1:i32 = load_global 0x108\n"));
        assert!(text.contains("  v2:i64 = sext.i32 v1\n"));
        assert!(text.contains("  v3:i64 = add v0, v2\n"));
        assert!(text.contains("  store_global.i64 0x110, v3\n"));
        assert!(text.ends_with("  goto 0x80000004\n"));
    }

    #[test]
    fn every_binop_has_a_distinct_name() {
        let mut names: Vec<&str> = BINOPS.iter().map(|(_, n)| *n).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(binop_name(BinOp::MaxU), "maxu");
    }
}
