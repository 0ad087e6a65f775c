# Zicsr and machine/supervisor CSR behaviour (privileged spec chapters 3 and 4), as QEMU 7.2
# implements the WARL fields: misa, mhartid, mstatus fields and the sstatus view, mtvec modes
# (reserved modes leave the register unchanged), medeleg/mideleg/mie/mip writable masks, satp
# with unsupported modes (write ignored, 4.1.11), counters (not the time CSR: QEMU spike traps it), CSR instruction forms (csrrw/s/c and
# immediates, rd = x0 / rs1 = x0 rules), and CSR access faults by privilege and read-only-ness.
#include "test_macros.h"

#define MASKED(n, csr, mask, expect)                                            \
        TEST_CASE(n, x14, expect, csrr x14, csr; li x1, mask; and x14, x14, x1)

RVTEST_CODE_BEGIN
        # misa: RV64 (MXL = 2) with I, M, A, F, D, C, S, U (QEMU 7.2 also sets H: not checked)
        TEST_CASE(2, x14, 2, csrr x14, misa; srli x14, x14, 62)
        MASKED(3, misa, 0x14112d, 0x14112d)
        TEST_CASE(4, x14, 0, csrr x14, mhartid)
        # mstatus: SXL = UXL = 2 (64-bit), read-only
        TEST_CASE(5, x14, 0xa, csrr x14, mstatus; srli x14, x14, 32; andi x14, x14, 0xf)
        # single-bit fields read back what was written
        TEST_CASE(6, x14, 0x7e01aa, li x1, 0x7e01aa; csrs mstatus, x1; csrr x14, mstatus; and x14, x14, x1)
        TEST_CASE(7, x14, 0, li x1, 0x7e01aa; csrc mstatus, x1; csrr x14, mstatus; and x14, x14, x1)
        # MPP holds M, S and U
        TEST_CASE(8, x14, MSTATUS_MPP, li x1, MSTATUS_MPP; csrs mstatus, x1; csrr x14, mstatus; and x14, x14, x1)
        TEST_CASE(9, x14, MSTATUS_MPP_S, li x1, MSTATUS_MPP; csrc mstatus, x1; li x1, MSTATUS_MPP_S; csrs mstatus, x1; csrr x14, mstatus; li x1, MSTATUS_MPP; and x14, x14, x1)
        TEST_CASE(10, x14, 0, li x1, MSTATUS_MPP; csrc mstatus, x1; csrr x14, mstatus; and x14, x14, x1)
        # sstatus is a view of mstatus: SIE/SPIE/SPP/SUM/MXR only; MIE/MPP/MPRV/TVM invisible
        TEST_CASE(11, x14, MSTATUS_SIE, csrsi sstatus, MSTATUS_SIE; csrr x14, mstatus; andi x14, x14, MSTATUS_SIE)
        TEST_CASE(12, x14, 0, li x1, MSTATUS_MIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM; csrs mstatus, x1; csrr x14, sstatus; and x14, x14, x1)
        TEST_CASE(13, x14, MSTATUS_SUM | MSTATUS_MXR | MSTATUS_SPP, li x1, MSTATUS_SUM | MSTATUS_MXR | MSTATUS_SPP; csrs sstatus, x1; csrr x14, mstatus; and x14, x14, x1)
        TEST_CASE(14, x14, MSTATUS_MIE, li x1, -1; csrc sstatus, x1; csrr x14, mstatus; li x1, MSTATUS_MIE | MSTATUS_SUM | MSTATUS_SIE; and x14, x14, x1)
        li x1, MSTATUS_MIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM; csrc mstatus, x1
        # mtvec: direct and vectored round-trip; reserved modes 2/3 leave it unchanged
        TEST_CASE(20, x14, 0x80001000, li x1, 0x80001000; csrw mtvec, x1; csrr x14, mtvec)
        TEST_CASE(21, x14, 0x80001001, li x1, 0x80001001; csrw mtvec, x1; csrr x14, mtvec)
        TEST_CASE(22, x14, 0x80001001, li x1, 0x80002003; csrw mtvec, x1; csrr x14, mtvec)
        TEST_CASE(23, x14, 0x80001001, li x1, 0x80002002; csrw mtvec, x1; csrr x14, mtvec)
        la x1, trap_vector; csrw mtvec, x1
        TEST_CASE(24, x14, 0x80003000, li x1, 0x80003000; csrw stvec, x1; csrr x14, stvec)
        TEST_CASE(25, x14, 0x80003001, li x1, 0x80003001; csrw stvec, x1; csrr x14, stvec)
        la x1, strap_vector; csrw stvec, x1
        # medeleg: synchronous exceptions 0-9, 12, 13, 15 delegable
        li x1, -1; csrw medeleg, x1
        MASKED(30, medeleg, 0xb3ff, 0xb3ff)
        # (medeleg[11] "should" be read-only zero; QEMU 7.2 keeps it writable, so it is not checked)
        csrw medeleg, zero
        MASKED(32, medeleg, -1, 0)
        # mideleg: S-level interrupts delegable, M-level ones not
        li x1, -1; csrw mideleg, x1
        MASKED(33, mideleg, 0x888, 0)
        MASKED(34, mideleg, 0x222, 0x222)
        csrw mideleg, zero
        # mie: all six standard enables writable; sie is the delegated subset
        li x1, -1; csrw mie, x1
        MASKED(35, mie, 0xaaa, 0xaaa)
        MASKED(36, sie, 0xaaa, 0)
        csrw mie, zero
        # mip: SSIP/STIP/SEIP writable from M, MSIP/MEIP not through mip
        li x1, 0x222; csrs mip, x1
        MASKED(37, mip, 0x222, 0x222)
        li x1, 0x808; csrs mip, x1
        MASKED(38, mip, 0x808, 0)
        li x1, 0x222; csrc mip, x1
        MASKED(39, mip, 0x222, 0)
        # satp: Bare, Sv39, Sv48, Sv57 accepted; an unsupported mode leaves satp unchanged (4.1.11)
        TEST_CASE(40, x14, SATP_MODE_SV39 | 0x80001, li x1, SATP_MODE_SV39 | 0x80001; csrw satp, x1; csrr x14, satp)
        TEST_CASE(41, x14, SATP_MODE_SV48 | 0x80001, li x1, SATP_MODE_SV48 | 0x80001; csrw satp, x1; csrr x14, satp)
        TEST_CASE(42, x14, SATP_MODE_SV57 | 0x80001, li x1, SATP_MODE_SV57 | 0x80001; csrw satp, x1; csrr x14, satp)
        TEST_CASE(43, x14, SATP_MODE_SV57 | 0x80001, li x1, (11 << 60) | 0x80002; csrw satp, x1; csrr x14, satp)
        TEST_CASE(44, x14, SATP_MODE_SV57 | 0x80001, li x1, (1 << 60) | 0x80002; csrw satp, x1; csrr x14, satp)
        TEST_CASE(45, x14, 0, csrw satp, zero; csrr x14, satp)
        # scratch registers hold all 64 bits
        TEST_CASE(46, x14, 0x0123456789abcdef, li x1, 0x0123456789abcdef; csrw sscratch, x1; csrr x14, sscratch)
        la x1, strap_save; csrw sscratch, x1
        # CSR instruction forms: csrrw returns the old value; csrrs/csrrc with x0 do not write
        TEST_CASE(50, x14, 0x11, li x1, 0x11; csrw mscratch, x1; li x1, 0x22; csrrw x14, mscratch, x1)
        TEST_CASE(51, x14, 0x33, li x1, 0x11; csrrs x15, mscratch, x1; csrr x14, mscratch)
        TEST_CASE(52, x14, 0x22, li x1, 0x11; csrrc x15, mscratch, x1; csrr x14, mscratch)
        TEST_CASE(53, x14, 0x3f, csrrsi x15, mscratch, 0x1d; csrr x14, mscratch)
        TEST_CASE(54, x14, 0x30, csrrci x15, mscratch, 0xf; csrr x14, mscratch)
        TEST_CASE(55, x14, 0x1f, csrrwi x15, mscratch, 0x1f; csrr x14, mscratch)
        TEST_CASE(56, x15, 0x1f, csrrwi x15, mscratch, 0; mv x15, x15)
        la x1, trap_save; csrw mscratch, x1
        # counters: instret counts retired instructions; mcycle/minstret are writable
        TEST_CASE(60, x14, 1, csrr x1, instret; nop; nop; nop; nop; nop; nop; nop; nop; csrr x2, instret; sub x14, x2, x1; sltiu x14, x14, 9; xori x14, x14, 1)
        TEST_CASE(61, x14, 1, li x1, 0x100000; csrw minstret, x1; csrr x2, minstret; sltu x14, x2, x1; xori x14, x14, 1)
        TEST_CASE(62, x14, 1, csrr x1, cycle; csrr x2, cycle; sltu x14, x1, x2; csrr x1, mcycle; snez x15, x1; and x14, x14, x15)
        TEST_CASE(63, x14, 1, li x4, CLINT_MTIME; ld x1, 0(x4); nop; ld x2, 0(x4); sltu x14, x2, x1; xori x14, x14, 1)
        # writing a read-only CSR is illegal; reading it with csrrs x0 / csrrc x0 is fine
        TEST_TRAP(70, CAUSE_ILLEGAL_INSTRUCTION, csrw cycle, x0)
        TEST_TRAP(71, CAUSE_ILLEGAL_INSTRUCTION, csrw mvendorid, x0)
        TEST_TRAP(72, CAUSE_ILLEGAL_INSTRUCTION, csrsi mhartid, 1)
        TEST_TRAP(73, CAUSE_NONE, csrrs x14, mhartid, x0; csrrc x14, mvendorid, x0; csrrsi x14, cycle, 0)
        # a non-existent CSR is illegal
        TEST_TRAP(75, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, 0x7ff)
        # privilege: M-level CSRs from S and U, S-level CSRs from U
        TEST_TRAP_IN_MODE(80, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, mstatus)
        TEST_TRAP_IN_MODE(81, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, csrw mscratch, x0)
        TEST_TRAP_IN_MODE(82, PRV_S, CAUSE_NONE, csrr x14, sstatus; csrw sscratch, x14)
        TEST_TRAP_IN_MODE(83, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, sstatus)
        TEST_TRAP_IN_MODE(84, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, mhartid)
        la x1, strap_save; csrw sscratch, x1
        # counter access from S and U is gated by mcounteren (and scounteren for U)
        csrw mcounteren, zero
        csrw scounteren, zero
        TEST_TRAP_IN_MODE(90, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, cycle)
        TEST_TRAP_IN_MODE(91, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, instret)
        csrwi mcounteren, 7
        TEST_TRAP_IN_MODE(92, PRV_S, CAUSE_NONE, csrr x14, cycle; csrr x14, instret)
        TEST_TRAP_IN_MODE(93, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, cycle)
        csrwi scounteren, 5
        TEST_TRAP_IN_MODE(94, PRV_U, CAUSE_NONE, csrr x14, cycle; csrr x14, instret)
        TEST_TRAP_IN_MODE(95, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, time)
        # TVM makes satp and sfence.vma illegal in S
        li x1, MSTATUS_TVM; csrs mstatus, x1
        TEST_TRAP_IN_MODE(100, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, satp)
        TEST_TRAP_IN_MODE(101, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, sfence.vma)
        li x1, MSTATUS_TVM; csrc mstatus, x1
        TEST_TRAP_IN_MODE(102, PRV_S, CAUSE_NONE, csrr x14, satp; sfence.vma)
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
