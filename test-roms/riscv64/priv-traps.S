# Exceptions and privilege transitions (privileged spec 3.1.6.1, 3.1.15, 3.3.2, Table 3.6):
# illegal instruction (mtval = the instruction bits, as QEMU does), breakpoint, ecall from U/S/M
# with mepc at the ecall, load/store/fetch access faults on unmapped physical addresses
# (mtval = address), mret/sret stacking of xIE/xPIE/xPP, MPRV cleared by mret to a lower mode,
# sret/wfi/mret from the wrong mode, TSR and TW, medeleg delegation to S (scause/sepc/stval,
# spp) and that traps from M are never delegated. (AMO access faults: priv-spec.S.)
#include "test_macros.h"

#define UNMAPPED 0x40000000

RVTEST_CODE_BEGIN
        # illegal instruction: mtval holds the faulting instruction
        TEST_TRAP(2, CAUSE_ILLEGAL_INSTRUCTION, 1: .word 0xffffffff)
        CHECK_TVAL(3, 0xffffffff)
        CHECK_EPC_LABEL(4, 1b)
        TEST_TRAP(5, CAUSE_ILLEGAL_INSTRUCTION, .word 0)
        TEST_TRAP(6, CAUSE_ILLEGAL_INSTRUCTION, csrw cycle, x0)
        CHECK_TVAL(7, 0xc0001073)
        # opcode space that RV64GC does not define
        TEST_TRAP(8, CAUSE_ILLEGAL_INSTRUCTION, .word 0x0000007f)
        TEST_TRAP(9, CAUSE_ILLEGAL_INSTRUCTION, .word 0x0200000b)
        # breakpoint, ecall from M
        TEST_TRAP(10, CAUSE_BREAKPOINT, 1: ebreak)
        CHECK_EPC_LABEL(11, 1b)
        TEST_TRAP(12, CAUSE_MACHINE_ECALL, 1: ecall)
        CHECK_EPC_LABEL(13, 1b)
        # ecall from S and U
        TEST_TRAP_IN_MODE(14, PRV_S, CAUSE_SUPERVISOR_ECALL, nop)
        TEST_TRAP_IN_MODE(15, PRV_U, CAUSE_USER_ECALL, nop)
        TEST_TRAP_IN_MODE(16, PRV_U, CAUSE_BREAKPOINT, ebreak)
        # access faults: loads, stores, AMOs, fetch from an address with nothing behind it
        TEST_TRAP(20, CAUSE_LOAD_ACCESS, li x1, UNMAPPED; ld x14, 0(x1))
        CHECK_TVAL(21, UNMAPPED)
        TEST_TRAP(22, CAUSE_STORE_ACCESS, li x1, UNMAPPED + 8; sw x14, 0(x1))
        CHECK_TVAL(23, UNMAPPED + 8)
        TEST_TRAP(25, CAUSE_LOAD_ACCESS, li x1, 0x100000000; lbu x14, 0(x1))
        TEST_TRAP(26, CAUSE_FETCH_ACCESS, li x1, UNMAPPED; jr x1)
        CHECK_TVAL(27, UNMAPPED)
        TEST_TRAP(28, CAUSE_FETCH_ACCESS, li x1, UNMAPPED + 0x100; jalr x1, 0(x1))
        CHECK_TVAL(29, UNMAPPED + 0x100)
        # the end of RAM (128 MiB at 0x8000_0000 on spike) is the end of memory
        TEST_TRAP(30, CAUSE_LOAD_ACCESS, li x1, 0x88000000; lw x14, 0(x1))
        TEST_TRAP(31, CAUSE_NONE, li x1, 0x87fffff8; ld x14, 0(x1))
        # a misaligned access straddling the end of RAM faults (and does not write rd)
        TEST_TRAP(33, CAUSE_LOAD_ACCESS, li x14, 0x55; li x1, 0x87fffffc; ld x14, 0(x1))
        TEST_CASE(34, x14, 0x55, nop)
        TEST_TRAP(35, CAUSE_STORE_ACCESS, li x1, 0x87fffffe; sw x0, 0(x1))
        # misaligned accesses whose low address bits look like TLB flag bits: page 0 (an empty
        # TLB entry) faults, the CLINT page (an MMIO entry) is read through the bus, never
        # through a host pointer (found by fuzzing: emu read host address 1)
        TEST_TRAP(36, CAUSE_LOAD_ACCESS, li x1, 1; lh x14, 0(x1))
        TEST_TRAP(37, CAUSE_LOAD_ACCESS, li x1, 3; lw x14, 0(x1))
        TEST_TRAP(38, CAUSE_STORE_ACCESS, li x1, 5; sd x0, 0(x1))
        TEST_CASE(39, x14, 0, li x1, CLINT_MSIP + 2; lw x14, 0(x1))
        # a faulting load does not write rd
        TEST_CASE(32, x14, 0x1234, li x14, 0x1234; li x1, UNMAPPED; la t5, trap_save; la t6, 1f; sd t6, TS_RESUME(t5); ld x14, 0(x1); 1: nop)

        # mret: MIE <- MPIE, MPIE <- 1, MPP <- U, privilege <- old MPP
        li x1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; csrc mstatus, x1
        li x1, MSTATUS_MPIE | MSTATUS_MPP; csrs mstatus, x1
        la x1, 1f; csrw mepc, x1
        mret
1:      TEST_CASE(40, x14, MSTATUS_MIE | MSTATUS_MPIE, csrr x14, mstatus; li x1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP; and x14, x14, x1)
        csrci mstatus, MSTATUS_MIE
        # a trap stacks: MPIE <- MIE, MIE <- 0, MPP <- previous privilege
        TEST_TRAP_IN_MODE(41, PRV_S, CAUSE_SUPERVISOR_ECALL, nop)
        TEST_CASE(42, x14, MSTATUS_MPP_S, la t5, trap_save; ld x14, TS_STATUS(t5); li x1, MSTATUS_MPP; and x14, x14, x1)
        TEST_TRAP_IN_MODE(43, PRV_U, CAUSE_USER_ECALL, nop)
        TEST_CASE(44, x14, 0, la t5, trap_save; ld x14, TS_STATUS(t5); li x1, MSTATUS_MPP; and x14, x14, x1)
        # (mret to a lower privilege clearing MPRV is checked in priv-spec.S: QEMU 7.2 lacks it)
        # mret from S and U is illegal; sret from U is illegal; wfi from U is illegal
        TEST_TRAP_IN_MODE(47, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, mret)
        TEST_TRAP_IN_MODE(48, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, sret)
        TEST_TRAP_IN_MODE(49, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, wfi)
        TEST_TRAP_IN_MODE(50, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, sfence.vma)
        # TSR: sret from S illegal; TW: wfi from S illegal
        li x1, MSTATUS_TSR; csrs mstatus, x1
        TEST_TRAP_IN_MODE(51, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, sret)
        li x1, MSTATUS_TSR; csrc mstatus, x1
        li x1, MSTATUS_TW; csrs mstatus, x1
        TEST_TRAP_IN_MODE(52, PRV_S, CAUSE_ILLEGAL_INSTRUCTION, wfi)
        li x1, MSTATUS_TW; csrc mstatus, x1
        # sret in S: SIE <- SPIE, SPIE <- 1, SPP <- U, privilege <- old SPP (here U: ecall is 8)
        li x1, MSTATUS_SPP | MSTATUS_SIE; csrc mstatus, x1
        li x1, MSTATUS_SPIE; csrs mstatus, x1
        TEST_TRAP_IN_MODE(53, PRV_S, CAUSE_USER_ECALL, la x1, 1f; csrw sepc, x1; sret; 1: nop)
        TEST_CASE(54, x14, MSTATUS_SIE | MSTATUS_SPIE, csrr x14, mstatus; li x1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP; and x14, x14, x1)
        csrci mstatus, MSTATUS_SIE
        # sret with SPP = S stays in S (ecall is 9)
        TEST_TRAP_IN_MODE(55, PRV_S, CAUSE_SUPERVISOR_ECALL, li x1, MSTATUS_SPP; csrs sstatus, x1; la x1, 1f; csrw sepc, x1; sret; 1: nop)

        # medeleg: a delegated U ecall goes to stvec; S records it and resumes in S, whose own
        # ecall then goes to M (cause 9, not delegated)
        li x1, 1 << CAUSE_USER_ECALL; csrw medeleg, x1
        STRAP_RESUME_AT(70f)
        TEST_TRAP_IN_MODE(60, PRV_U, CAUSE_SUPERVISOR_ECALL, 1: ecall; j fail; 70: nop)
        TEST_CASE(61, x14, CAUSE_USER_ECALL, la t5, strap_save; ld x14, TS_CAUSE(t5))
        TEST_CASE(62, x14, 0, la t5, strap_save; ld x14, TS_EPC(t5); la x1, 1b; sub x14, x14, x1)
        # the delegated trap set SPP = U and left mcause alone (it now holds the S ecall)
        TEST_CASE(63, x14, CAUSE_SUPERVISOR_ECALL, csrr x14, mcause)
        TEST_CASE(80, x14, 0, la t5, strap_save; ld x14, TS_STATUS(t5); andi x14, x14, MSTATUS_SPP)
        # delegated illegal instruction and load access fault, with stval
        li x1, (1 << CAUSE_ILLEGAL_INSTRUCTION) | (1 << CAUSE_LOAD_ACCESS); csrw medeleg, x1
        STRAP_RESUME_AT(71f)
        TEST_TRAP_IN_MODE(64, PRV_U, CAUSE_SUPERVISOR_ECALL, .word 0xffffffff; j fail; 71: nop)
        TEST_CASE(65, x14, CAUSE_ILLEGAL_INSTRUCTION, la t5, strap_save; ld x14, TS_CAUSE(t5))
        TEST_CASE(66, x14, 0xffffffff, la t5, strap_save; ld x14, TS_TVAL(t5))
        STRAP_RESUME_AT(72f)
        TEST_TRAP_IN_MODE(67, PRV_S, CAUSE_SUPERVISOR_ECALL, li x1, UNMAPPED; ld x14, 0(x1); j fail; 72: nop)
        TEST_CASE(68, x14, CAUSE_LOAD_ACCESS, la t5, strap_save; ld x14, TS_CAUSE(t5))
        TEST_CASE(69, x14, UNMAPPED, la t5, strap_save; ld x14, TS_TVAL(t5))
        TEST_CASE(81, x14, MSTATUS_SPP, la t5, strap_save; ld x14, TS_STATUS(t5); andi x14, x14, MSTATUS_SPP)
        # delegation never applies to traps taken in M-mode
        TEST_TRAP(73, CAUSE_ILLEGAL_INSTRUCTION, .word 0xffffffff)
        csrw medeleg, zero
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
