# Interrupts (privileged spec 3.1.9, 3.1.6.1, 3.3.3): machine timer through the CLINT
# (mtimecmp 0x0200_4000, mtime 0x0200_bff8) waited for with wfi, machine software interrupt
# (msip 0x0200_0000), wfi waking on a pending-but-disabled interrupt without trapping, global
# enables by privilege (M interrupts always enabled below M; S interrupts never taken in M),
# mideleg delegation to S, and the priority orders MSI > MTI and SSI > STI.
#include "test_macros.h"

#define INTR(code) (INTERRUPT_BIT | (code))

#define CLEAR_IRQ_LOG                                                           \
        la t5, trap_save; sd zero, TS_IRQ_FIRST(t5); sd zero, TS_IRQ_LAST(t5);  \
        la t5, strap_save; sd zero, TS_IRQ_FIRST(t5); sd zero, TS_IRQ_LAST(t5);

/* Waits (wfi, bounded) until the handler whose record is `save` has logged an interrupt. */
#define WAIT_IRQ(save)                                                          \
        li x20, 1000000;                                                        \
1:      la t5, save; ld t6, TS_IRQ_LAST(t5); bnez t6, 2f;                       \
        wfi;                                                                    \
        addi x20, x20, -1; bnez x20, 1b;                                        \
        j fail;                                                                 \
2:

#define CHECK_IRQ(testnum, save, field, value)                                  \
        TEST_CASE(testnum, x14, value, la t5, save; ld x14, field(t5))

/* mtimecmp = mtime + delta */
#define ARM_TIMER(delta) li t0, CLINT_MTIME; ld t1, 0(t0); li t2, delta; add t1, t1, t2; li t0, CLINT_MTIMECMP; sd t1, 0(t0)
#define DISARM_TIMER li t0, CLINT_MTIMECMP; li t1, -1; sd t1, 0(t0)

RVTEST_CODE_BEGIN
        DISARM_TIMER
        TEST_CASE(2, x14, 0, csrr x14, mip; andi x14, x14, 1 << IRQ_M_TIMER)
        # mtime advances
        TEST_CASE(3, x14, 1, li t0, CLINT_MTIME; ld x1, 0(t0); li x2, 1000; 1: addi x2, x2, -1; bnez x2, 1b; ld x2, 0(t0); sltu x14, x1, x2)

        # machine timer interrupt, waited for with wfi
        CLEAR_IRQ_LOG
        ARM_TIMER(10000)
        li t0, 1 << IRQ_M_TIMER; csrs mie, t0
        csrsi mstatus, MSTATUS_MIE
        li TESTNUM, 10
        WAIT_IRQ(trap_save)
        csrci mstatus, MSTATUS_MIE
        CHECK_IRQ(11, trap_save, TS_IRQ_FIRST, INTR(IRQ_M_TIMER))
        # mtime has passed mtimecmp, so MTIP is still pending until mtimecmp moves
        TEST_CASE(12, x14, 1 << IRQ_M_TIMER, csrr x14, mip; andi x14, x14, 1 << IRQ_M_TIMER)
        DISARM_TIMER
        TEST_CASE(13, x14, 0, csrr x14, mip; andi x14, x14, 1 << IRQ_M_TIMER)

        # wfi wakes on a pending enabled interrupt even with mstatus.MIE = 0, and takes no trap
        CLEAR_IRQ_LOG
        ARM_TIMER(10000)
        li t0, 1 << IRQ_M_TIMER; csrs mie, t0
        li TESTNUM, 14
        li x20, 1000000
1:      csrr t6, mip; andi t6, t6, 1 << IRQ_M_TIMER; bnez t6, 2f
        wfi
        addi x20, x20, -1; bnez x20, 1b
        j fail
2:      CHECK_IRQ(15, trap_save, TS_IRQ_LAST, 0)
        csrw mie, zero
        DISARM_TIMER

        # machine software interrupt through msip
        CLEAR_IRQ_LOG
        li t0, CLINT_MSIP; li t1, 1; sw t1, 0(t0)
        TEST_CASE(20, x14, 1 << IRQ_M_SOFT, csrr x14, mip; andi x14, x14, 1 << IRQ_M_SOFT)
        li t0, 1 << IRQ_M_SOFT; csrs mie, t0
        CHECK_IRQ(21, trap_save, TS_IRQ_LAST, 0)
        csrsi mstatus, MSTATUS_MIE
        nop
        csrci mstatus, MSTATUS_MIE
        CHECK_IRQ(22, trap_save, TS_IRQ_FIRST, INTR(IRQ_M_SOFT))
        li t0, CLINT_MSIP; sw zero, 0(t0)
        TEST_CASE(23, x14, 0, csrr x14, mip; andi x14, x14, 1 << IRQ_M_SOFT)
        TEST_CASE(24, x14, 0, li t0, CLINT_MSIP; lw x14, 0(t0))

        # M-level interrupts are taken in S and U whatever mstatus.MIE says
        CLEAR_IRQ_LOG
        li t0, CLINT_MSIP; li t1, 1; sw t1, 0(t0)
        li t0, 1 << IRQ_M_SOFT; csrs mie, t0
        TEST_TRAP_IN_MODE(30, PRV_U, CAUSE_USER_ECALL, nop; nop)
        CHECK_IRQ(31, trap_save, TS_IRQ_FIRST, INTR(IRQ_M_SOFT))
        li t0, CLINT_MSIP; sw zero, 0(t0)

        # priority among machine interrupts: MSI before MTI
        CLEAR_IRQ_LOG
        li t0, CLINT_MTIMECMP; sd zero, 0(t0)
        li t0, CLINT_MSIP; li t1, 1; sw t1, 0(t0)
        li t0, (1 << IRQ_M_SOFT) | (1 << IRQ_M_TIMER); csrs mie, t0
        csrsi mstatus, MSTATUS_MIE
        nop
        nop
        csrci mstatus, MSTATUS_MIE
        CHECK_IRQ(32, trap_save, TS_IRQ_FIRST, INTR(IRQ_M_SOFT))
        CHECK_IRQ(33, trap_save, TS_IRQ_LAST, INTR(IRQ_M_TIMER))
        li t0, CLINT_MSIP; sw zero, 0(t0)
        DISARM_TIMER

        # an undelegated S interrupt (SSIP set through mip) is taken to M
        CLEAR_IRQ_LOG
        csrw mideleg, zero
        li t0, 1 << IRQ_S_SOFT; csrs mip, t0; csrs mie, t0
        TEST_TRAP_IN_MODE(40, PRV_S, CAUSE_SUPERVISOR_ECALL, nop)
        CHECK_IRQ(41, trap_save, TS_IRQ_FIRST, INTR(IRQ_S_SOFT))
        li t0, 1 << IRQ_S_SOFT; csrc mip, t0

        # delegated S interrupts: taken to S in S-mode when SIE = 1, never in M-mode
        CLEAR_IRQ_LOG
        li t0, (1 << IRQ_S_SOFT) | (1 << IRQ_S_TIMER); csrw mideleg, t0
        csrs mie, t0
        csrs mip, t0
        csrsi mstatus, MSTATUS_SIE | MSTATUS_MIE
        nop
        csrci mstatus, MSTATUS_SIE | MSTATUS_MIE
        CHECK_IRQ(50, strap_save, TS_IRQ_LAST, 0)
        CHECK_IRQ(51, trap_save, TS_IRQ_LAST, 0)
        # in S with SIE = 0 nothing happens
        TEST_TRAP_IN_MODE(52, PRV_S, CAUSE_SUPERVISOR_ECALL, nop)
        CHECK_IRQ(53, strap_save, TS_IRQ_LAST, 0)
        # in S with SIE = 1: SSI before STI
        TEST_TRAP_IN_MODE(54, PRV_S, CAUSE_SUPERVISOR_ECALL, csrsi sstatus, MSTATUS_SIE; nop; nop; csrci sstatus, MSTATUS_SIE)
        CHECK_IRQ(55, strap_save, TS_IRQ_FIRST, INTR(IRQ_S_SOFT))
        CHECK_IRQ(56, strap_save, TS_IRQ_LAST, INTR(IRQ_S_TIMER))
        CHECK_IRQ(57, trap_save, TS_IRQ_LAST, 0)
        # in U, delegated S interrupts are taken even with SIE = 0
        CLEAR_IRQ_LOG
        li t0, 1 << IRQ_S_TIMER; csrs mie, t0
        TEST_TRAP_IN_MODE(58, PRV_U, CAUSE_USER_ECALL, nop)
        CHECK_IRQ(59, strap_save, TS_IRQ_FIRST, INTR(IRQ_S_TIMER))
        # sip/sie show the delegated bits
        TEST_CASE(60, x14, (1 << IRQ_S_SOFT) | (1 << IRQ_S_TIMER), csrr x14, sip)
        # (SEI before SSI: priv-spec.S, QEMU 7.2 takes SSI first)
        li t0, (1 << IRQ_S_SOFT) | (1 << IRQ_S_TIMER); csrc mip, t0
        csrw mideleg, zero
        csrw mie, zero
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
