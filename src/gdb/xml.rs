//! The target description sent to GDB (`qXfer:features:read:target.xml`): GDB's standard
//! RISC-V features (gdb/features/riscv/64bit-cpu.xml, 64bit-fpu.xml, and a csr feature as
//! QEMU generates it), with GDB's register numbering: x0..x31 = 0..31, pc = 32,
//! f0..f31 = 33..64, CSR `n` = 65 + n (fflags, frm and fcsr are in the csr feature).

use std::fmt::Write as _;

use emu_frontends::riscv::cpu::RiscvCpu;
use emu_frontends::riscv::debug::{GDB_REG_CSR0, GDB_REG_F0, GDB_REG_PC};

const XREG_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

const FREG_NAMES: [&str; 32] = [
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2",
    "fa3", "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9",
    "fs10", "fs11", "ft8", "ft9", "ft10", "ft11",
];

/// The whole `target.xml`.
pub fn target_xml() -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n\
         <target version=\"1.0\">\n<architecture>riscv:rv64</architecture>\n",
    );
    s.push_str("<feature name=\"org.gnu.gdb.riscv.cpu\">\n");
    for (i, name) in XREG_NAMES.iter().enumerate() {
        let ty = match i {
            1 => "code_ptr",
            2 | 8 => "data_ptr",
            _ => "int",
        };
        let _ = writeln!(
            s,
            "  <reg name=\"{name}\" bitsize=\"64\" type=\"{ty}\" regnum=\"{i}\"/>"
        );
    }
    let _ = writeln!(
        s,
        "  <reg name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"{GDB_REG_PC}\"/>"
    );
    s.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.fpu\">\n");
    s.push_str(
        "  <union id=\"riscv_double\">\n    <field name=\"float\" type=\"ieee_single\"/>\n    \
         <field name=\"double\" type=\"ieee_double\"/>\n  </union>\n",
    );
    for (i, name) in FREG_NAMES.iter().enumerate() {
        let _ = writeln!(
            s,
            "  <reg name=\"{name}\" bitsize=\"64\" type=\"riscv_double\" regnum=\"{}\"/>",
            GDB_REG_F0 + i
        );
    }
    s.push_str("</feature>\n<feature name=\"org.gnu.gdb.riscv.csr\">\n");
    for (num, name) in RiscvCpu::csr_names() {
        let _ = writeln!(
            s,
            "  <reg name=\"{name}\" bitsize=\"64\" type=\"int\" regnum=\"{}\" group=\"{}\"/>",
            GDB_REG_CSR0 + usize::from(num),
            if num <= 3 { "float" } else { "system" },
        );
    }
    s.push_str("</feature>\n</target>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_follows_gdb() {
        let x = target_xml();
        assert!(x.contains("name=\"zero\" bitsize=\"64\" type=\"int\" regnum=\"0\""));
        assert!(x.contains("name=\"pc\" bitsize=\"64\" type=\"code_ptr\" regnum=\"32\""));
        assert!(x.contains("name=\"ft0\" bitsize=\"64\" type=\"riscv_double\" regnum=\"33\""));
        assert!(x.contains("name=\"ft11\" bitsize=\"64\" type=\"riscv_double\" regnum=\"64\""));
        assert!(x.contains("name=\"fa0\" bitsize=\"64\" type=\"riscv_double\" regnum=\"43\""));
        assert!(x.contains("name=\"fflags\" bitsize=\"64\" type=\"int\" regnum=\"66\""));
        assert!(x.contains("name=\"fcsr\" bitsize=\"64\" type=\"int\" regnum=\"68\""));
        // mstatus = 0x300.
        assert!(x.contains(&format!(
            "name=\"mstatus\" bitsize=\"64\" type=\"int\" regnum=\"{}\"",
            65 + 0x300
        )));
        assert!(x.contains("name=\"pmpaddr63\""));
        assert_eq!(x.matches("<feature").count(), 3);
    }
}
