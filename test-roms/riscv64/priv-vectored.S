# Vectored trap vectors (privileged spec 3.1.7, 4.1.2): with xtvec.MODE = 1, interrupts go to
# BASE + 4 * cause and synchronous exceptions to BASE; for M (mtvec) and S (stvec). Each slot
# jumps to a stub that logs its slot number (vec_slot for M, s_vec_slot for S) and then
# enters the ordinary handler.
#include "test_macros.h"

#define INTR(code) (INTERRUPT_BIT | (code))

/* A stub for slot `k` of the M table: vec_slot = k, then the usual handler. */
#define M_SLOT(k)                                                               \
        csrrw t0, mscratch, t0;                                                 \
        sd t1, TS_T1(t0);                                                       \
        sd t2, TS_T2(t0);                                                       \
        la t1, vec_slot; li t2, k; sd t2, 0(t1);                                \
        ld t1, TS_T1(t0);                                                       \
        ld t2, TS_T2(t0);                                                       \
        csrrw t0, mscratch, t0;                                                 \
        j trap_vector;

/* The same for slot `k` of the S table, logged in s_vec_slot. */
#define S_STUB(k)                                                               \
        csrrw t0, sscratch, t0;                                                 \
        sd t1, TS_T1(t0);                                                       \
        sd t2, TS_T2(t0);                                                       \
        la t1, s_vec_slot; li t2, k; sd t2, 0(t1);                              \
        ld t1, TS_T1(t0);                                                       \
        ld t2, TS_T2(t0);                                                       \
        csrrw t0, sscratch, t0;                                                 \
        j strap_vector;

RVTEST_CODE_BEGIN
        # M: vectored table
        la t0, m_table; ori t0, t0, 1; csrw mtvec, t0
        TEST_CASE(2, x14, 1, csrr x14, mtvec; andi x14, x14, 3)
        # an exception goes to BASE (slot 0)
        TEST_TRAP(3, CAUSE_MACHINE_ECALL, ecall)
        TEST_CASE(4, x14, 0, la x1, vec_slot; ld x14, 0(x1))
        TEST_TRAP_IN_MODE(5, PRV_U, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, mstatus)
        TEST_CASE(6, x14, 0, la x1, vec_slot; ld x14, 0(x1))
        # the machine software interrupt goes to BASE + 4 * 3
        li x1, -1; la x2, vec_slot; sd x1, 0(x2)
        la t5, trap_save; sd zero, TS_IRQ_FIRST(t5); sd zero, TS_IRQ_LAST(t5)
        li t0, CLINT_MSIP; li t1, 1; sw t1, 0(t0)
        li t0, 1 << IRQ_M_SOFT; csrs mie, t0
        csrsi mstatus, MSTATUS_MIE
        nop
        csrci mstatus, MSTATUS_MIE
        li t0, CLINT_MSIP; sw zero, 0(t0)
        TEST_CASE(7, x14, 3, la x1, vec_slot; ld x14, 0(x1))
        TEST_CASE(8, x14, INTR(IRQ_M_SOFT), la t5, trap_save; ld x14, TS_IRQ_FIRST(t5))
        # the machine timer interrupt goes to BASE + 4 * 7
        li x1, -1; la x2, vec_slot; sd x1, 0(x2)
        li t0, CLINT_MTIMECMP; sd zero, 0(t0)
        li t0, 1 << IRQ_M_TIMER; csrs mie, t0
        csrsi mstatus, MSTATUS_MIE
        nop
        csrci mstatus, MSTATUS_MIE
        li t0, CLINT_MTIMECMP; li t1, -1; sd t1, 0(t0)
        TEST_CASE(9, x14, 7, la x1, vec_slot; ld x14, 0(x1))
        # S: a vectored stvec; a delegated STI taken in U goes to BASE + 4 * 5
        la t0, s_table; ori t0, t0, 1; csrw stvec, t0
        li x1, -1; la x2, s_vec_slot; sd x1, 0(x2)
        la t5, strap_save; sd zero, TS_IRQ_FIRST(t5); sd zero, TS_IRQ_LAST(t5)
        li t0, 1 << IRQ_S_TIMER; csrw mideleg, t0; csrs mie, t0; csrs mip, t0
        TEST_TRAP_IN_MODE(10, PRV_U, CAUSE_USER_ECALL, nop; nop)
        TEST_CASE(11, x14, 5, la x1, s_vec_slot; ld x14, 0(x1))
        TEST_CASE(12, x14, INTR(IRQ_S_TIMER), la t5, strap_save; ld x14, TS_IRQ_FIRST(t5))
        li t0, 1 << IRQ_S_TIMER; csrc mip, t0; csrw mideleg, zero; csrw mie, zero
        # a delegated exception goes to the S BASE
        li t0, 1 << CAUSE_ILLEGAL_INSTRUCTION; csrw medeleg, t0
        li x1, -1; la x2, s_vec_slot; sd x1, 0(x2)
        STRAP_RESUME_AT(70f)
        TEST_TRAP_IN_MODE(13, PRV_U, CAUSE_SUPERVISOR_ECALL, .word 0xffffffff; j fail; 70: nop)
        TEST_CASE(14, x14, 0, la x1, s_vec_slot; ld x14, 0(x1))
        csrw medeleg, zero
        la t0, trap_vector; csrw mtvec, t0
        la t0, strap_vector; csrw stvec, t0
        j pass

        # the tables: 4-byte slots (norvc); 64-byte aligned, more than the 4 bytes the spec asks
        .option push
        .option norvc
        .align 6
m_table:
        j m_slot_0; j m_slot_x; j m_slot_x; j m_slot_3; j m_slot_x; j m_slot_x; j m_slot_x; j m_slot_7
        j m_slot_x; j m_slot_x; j m_slot_x; j m_slot_x; j m_slot_x; j m_slot_x; j m_slot_x; j m_slot_x
        .align 6
s_table:
        j s_slot_0; j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_5; j s_slot_x; j s_slot_x
        j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_x; j s_slot_x
        .option pop
m_slot_x:
        j fail
s_slot_x:
        j fail
m_slot_0: M_SLOT(0)
m_slot_3: M_SLOT(3)
m_slot_7: M_SLOT(7)
s_slot_0: S_STUB(0)
s_slot_5: S_STUB(5)
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 3
vec_slot: .dword -1
s_vec_slot: .dword -1
RVTEST_DATA_END
