/*
 * Shared macros for the emu RV64 bare-metal test programs.
 *
 * Conventions (riscv-tests style, written for emu):
 *  - gp (x3) holds the number of the current check (TESTNUM). A failing check ends the program
 *    through HTIF with tohost = (TESTNUM << 1) | 1; success writes tohost = 1.
 *  - x31 (t6) holds the expected value inside a check; x30 (t5) is scratch for the checks.
 *  - Every program runs from _start in M-mode with mtvec = trap_vector (direct mode), a PMP entry
 *    granting S/U access to everything (so mode-switch tests work), and mstatus.FS = Initial.
 *  - trap_vector records mcause, mtval, mepc, mstatus and a trap count into trap_save (offsets
 *    TS_*). If TS_RESUME is non-zero it resumes there in M-mode with MPRV clear, and clears
 *    TS_RESUME (mret leaves MPP = U, so a left-over MPRV would translate the check's own accesses
 *    as U-mode ones); otherwise it skips the trapping instruction (2 or 4 bytes). An interrupt
 *    is logged (TS_IRQ_FIRST / TS_IRQ_LAST), masked in mie, and returned from. strap_vector
 *    (stvec at reset) does the same for traps delegated to S, into strap_save, resuming in S.
 *  - HTIF console: tohost = (1 << 56) | (1 << 48) | byte (device 1 = console, command 1 = putchar).
 */
#ifndef EMU_TEST_MACROS_H
#define EMU_TEST_MACROS_H

#define TESTNUM gp

#define MSTATUS_SIE (1 << 1)
#define MSTATUS_MIE (1 << 3)
#define MSTATUS_SPIE (1 << 5)
#define MSTATUS_MPIE (1 << 7)
#define MSTATUS_SPP (1 << 8)
#define MSTATUS_MPP (3 << 11)
#define MSTATUS_MPP_S (1 << 11)
#define MSTATUS_FS (3 << 13)
#define MSTATUS_FS_INITIAL (1 << 13)
#define MSTATUS_MPRV (1 << 17)
#define MSTATUS_SUM (1 << 18)
#define MSTATUS_MXR (1 << 19)
#define MSTATUS_TVM (1 << 20)
#define MSTATUS_TW (1 << 21)
#define MSTATUS_TSR (1 << 22)

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_USER_ECALL 8
#define CAUSE_SUPERVISOR_ECALL 9
#define CAUSE_MACHINE_ECALL 11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT 13
#define CAUSE_STORE_PAGE_FAULT 15
#define CAUSE_NONE (-1)

#define IRQ_S_SOFT 1
#define IRQ_M_SOFT 3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7
#define IRQ_S_EXT 9
#define IRQ_M_EXT 11
#define INTERRUPT_BIT (1 << 63)

#define CLINT_MSIP 0x02000000
#define CLINT_MTIMECMP 0x02004000
#define CLINT_MTIME 0x0200bff8

/* Sv39/48/57 page-table entry bits (privileged spec 4.3.1). */
#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_G 0x20
#define PTE_A 0x40
#define PTE_D 0x80
#define SATP_MODE_SV39 (8 << 60)
#define SATP_MODE_SV48 (9 << 60)
#define SATP_MODE_SV57 (10 << 60)

/* Trap record layout (offsets into trap_save). */
#define TS_T1 0
#define TS_T2 8
#define TS_CAUSE 16
#define TS_TVAL 24
#define TS_EPC 32
#define TS_COUNT 40
#define TS_RESUME 48
#define TS_STATUS 56 /* mstatus (sstatus) as the trap left it */
#define TS_IRQ_FIRST 64 /* cause of the first interrupt since the field was zeroed */
#define TS_IRQ_LAST 72 /* cause of the latest interrupt */

/* ------------------------------------------------------------------------------------------ */
/* Program frame                                                                              */
/* ------------------------------------------------------------------------------------------ */

#define RVTEST_CODE_BEGIN                                                       \
        .section .text.init;                                                    \
        .align 6;                                                               \
        .globl _start;                                                          \
_start:                                                                         \
        la t0, trap_vector;                                                     \
        csrw mtvec, t0;                                                         \
        la t0, trap_save;                                                       \
        csrw mscratch, t0;                                                      \
        la t0, strap_save;                                                      \
        csrw sscratch, t0;                                                      \
        la t0, strap_vector;                                                    \
        csrw stvec, t0;                                                         \
        /* PMP entry 0: NAPOT over the whole address space, RWX, so S/U may run. */ \
        li t0, -1;                                                              \
        csrw pmpaddr0, t0;                                                      \
        li t0, 0x1f;                                                            \
        csrw pmpcfg0, t0;                                                       \
        csrw medeleg, zero;                                                     \
        csrw mideleg, zero;                                                     \
        csrw mie, zero;                                                         \
        csrw satp, zero;                                                        \
        li t0, MSTATUS_FS_INITIAL;                                              \
        csrs mstatus, t0;                                                       \
        csrwi fcsr, 0;                                                          \
        li TESTNUM, 0;                                                          \
        li x1, 0; li x2, 0; li x4, 0; li x5, 0; li x6, 0; li x7, 0;             \
        li x8, 0; li x9, 0; li x10, 0; li x11, 0; li x12, 0; li x13, 0;         \
        li x14, 0; li x15, 0; li x16, 0; li x17, 0; li x18, 0; li x19, 0;       \
        li x20, 0; li x21, 0; li x22, 0; li x23, 0; li x24, 0; li x25, 0;       \
        li x26, 0; li x27, 0; li x28, 0; li x29, 0; li x30, 0; li x31, 0;       \
        la sp, stack_top;                                                       \
        j test_main;                                                            \
        TRAP_VECTORS;                                                           \
        .text;                                                                  \
test_main:

/* A trap that arrives while the handler has already taken this many traps is a runaway: fail. */
#define TRAP_LIMIT 1000

#define TRAP_VECTORS                                                            \
        .align 4;                                                               \
        .globl trap_vector;                                                     \
trap_vector:                                                                    \
        csrrw t0, mscratch, t0;                                                 \
        sd t1, TS_T1(t0);                                                       \
        sd t2, TS_T2(t0);                                                       \
        csrr t1, mcause; sd t1, TS_CAUSE(t0);                                   \
        csrr t2, mtval; sd t2, TS_TVAL(t0);                                     \
        csrr t2, mepc; sd t2, TS_EPC(t0);                                       \
        csrr t2, mstatus; sd t2, TS_STATUS(t0);                                 \
        ld t2, TS_COUNT(t0); addi t2, t2, 1; sd t2, TS_COUNT(t0);               \
        li t1, TRAP_LIMIT; bgeu t2, t1, fail;                                   \
        csrr t1, mcause;                                                        \
        bgez t1, 1f;                                                            \
        /* Interrupt: log it, mask its source in mie, return to the interrupted code. */ \
        sd t1, TS_IRQ_LAST(t0);                                                 \
        ld t2, TS_IRQ_FIRST(t0); bnez t2, 5f; sd t1, TS_IRQ_FIRST(t0);          \
5:      li t2, 1; sll t2, t2, t1; csrc mie, t2;                                 \
        j 3f;                                                                   \
1:      ld t1, TS_RESUME(t0);                                                   \
        beqz t1, 2f;                                                            \
        sd zero, TS_RESUME(t0);                                                 \
        csrw mepc, t1;                                                          \
        /* back to plain M-mode: MPP = M, and no MPRV left over from the check */ \
        li t2, MSTATUS_MPP; csrs mstatus, t2;                                   \
        li t2, MSTATUS_MPRV; csrc mstatus, t2;                                  \
        j 3f;                                                                   \
        /* Skip the trapping instruction: 4 bytes unless its low bits say RVC. */ \
2:      li t1, MSTATUS_MPRV; csrc mstatus, t1;                                  \
        csrr t1, mepc;                                                          \
        lhu t2, 0(t1);                                                          \
        andi t2, t2, 3; addi t2, t2, -3;                                        \
        addi t1, t1, 2;                                                         \
        bnez t2, 4f;                                                            \
        addi t1, t1, 2;                                                         \
4:      csrw mepc, t1;                                                          \
3:      ld t1, TS_T1(t0);                                                       \
        ld t2, TS_T2(t0);                                                       \
        csrrw t0, mscratch, t0;                                                 \
        mret;                                                                   \
                                                                                \
        .align 4;                                                               \
        .globl strap_vector;                                                    \
strap_vector:                                                                   \
        csrrw t0, sscratch, t0;                                                 \
        sd t1, TS_T1(t0);                                                       \
        sd t2, TS_T2(t0);                                                       \
        csrr t1, scause; sd t1, TS_CAUSE(t0);                                   \
        csrr t2, stval; sd t2, TS_TVAL(t0);                                     \
        csrr t2, sepc; sd t2, TS_EPC(t0);                                       \
        csrr t2, sstatus; sd t2, TS_STATUS(t0);                                 \
        ld t2, TS_COUNT(t0); addi t2, t2, 1; sd t2, TS_COUNT(t0);               \
        li t1, TRAP_LIMIT; bgeu t2, t1, fail;                                   \
        csrr t1, scause;                                                        \
        bgez t1, 1f;                                                            \
        sd t1, TS_IRQ_LAST(t0);                                                 \
        ld t2, TS_IRQ_FIRST(t0); bnez t2, 5f; sd t1, TS_IRQ_FIRST(t0);          \
5:      li t2, 1; sll t2, t2, t1; csrc sie, t2;                                 \
        j 3f;                                                                   \
1:      ld t1, TS_RESUME(t0);                                                   \
        beqz t1, 2f;                                                            \
        sd zero, TS_RESUME(t0);                                                 \
        csrw sepc, t1;                                                          \
        li t2, MSTATUS_SPP; csrs sstatus, t2;                                   \
        j 3f;                                                                   \
2:      csrr t1, sepc;                                                          \
        lhu t2, 0(t1);                                                          \
        andi t2, t2, 3; addi t2, t2, -3;                                        \
        addi t1, t1, 2;                                                         \
        bnez t2, 4f;                                                            \
        addi t1, t1, 2;                                                         \
4:      csrw sepc, t1;                                                          \
3:      ld t1, TS_T1(t0);                                                       \
        ld t2, TS_T2(t0);                                                       \
        csrrw t0, sscratch, t0;                                                 \
        sret;

#define HTIF_EXIT_FROM(reg)                                                     \
        la t5, tohost;                                                          \
1:      sd reg, 0(t5);                                                          \
        j 1b;

#define RVTEST_CODE_END                                                         \
        .globl pass;                                                            \
pass:                                                                           \
        fence;                                                                  \
        li t6, 1;                                                               \
        HTIF_EXIT_FROM(t6)                                                      \
        .globl fail;                                                            \
fail:                                                                           \
        fence;                                                                  \
        slli t6, TESTNUM, 1;                                                    \
        ori t6, t6, 1;                                                          \
        /* Test 0 cannot fail with exit code 0. */                              \
        li t5, 1; bne t6, t5, 2f; li t6, 3;                                     \
2:      HTIF_EXIT_FROM(t6)                                                      \
        .globl htif_putchar;                                                    \
        /* a0 = byte. Clobbers t5, t6. */                                       \
htif_putchar:                                                                   \
        la t5, tohost;                                                          \
        li t6, (1 << 56) | (1 << 48);                                           \
        andi a0, a0, 0xff;                                                      \
        or t6, t6, a0;                                                          \
        sd t6, 0(t5);                                                           \
        /* Wait for the host to consume it (QEMU does so on the store). */      \
1:      ld t6, 0(t5);                                                           \
        bnez t6, 1b;                                                            \
        la t5, fromhost;                                                        \
        sd zero, 0(t5);                                                         \
        ret;                                                                    \
        .globl htif_puthex;                                                     \
        /* a0 = value, printed as 16 lower-case hex digits. Clobbers a0-a2, t5, t6, s10. */ \
htif_puthex:                                                                    \
        mv s10, ra;                                                             \
        mv a1, a0;                                                              \
        li a2, 60;                                                              \
1:      srl a0, a1, a2;                                                         \
        andi a0, a0, 15;                                                        \
        addi a0, a0, 48;                                                        \
        li t6, 58;                                                              \
        blt a0, t6, 2f;                                                         \
        addi a0, a0, 39;                                                        \
2:      call htif_putchar;                                                      \
        addi a2, a2, -4;                                                        \
        bgez a2, 1b;                                                            \
        mv ra, s10;                                                             \
        ret;                                                                    \
        .globl htif_puts;                                                       \
        /* a0 = NUL-terminated string. Clobbers a0, a1, t5, t6, and uses s11 for ra. */ \
htif_puts:                                                                      \
        mv s11, ra;                                                             \
        mv a1, a0;                                                              \
1:      lbu a0, 0(a1);                                                          \
        beqz a0, 2f;                                                            \
        call htif_putchar;                                                      \
        addi a1, a1, 1;                                                         \
        j 1b;                                                                   \
2:      mv ra, s11;                                                             \
        ret;

#define RVTEST_DATA_BEGIN                                                       \
        .section .tohost, "aw", @progbits;                                      \
        .align 6; .globl tohost; tohost: .dword 0; .size tohost, 8;             \
        .align 6; .globl fromhost; fromhost: .dword 0; .size fromhost, 8;       \
        .data;                                                                  \
        .align 6;                                                               \
        .globl trap_save;                                                       \
trap_save: .dword 0, 0, 0, 0, 0, 0, 0, 0, 0, 0;                                 \
        .globl strap_save;                                                      \
strap_save: .dword 0, 0, 0, 0, 0, 0, 0, 0, 0, 0;                                \
        .bss;                                                                   \
        .align 4;                                                               \
stack_bottom: .skip 4096;                                                       \
stack_top:                                                                      \
        .data;

#define RVTEST_DATA_END

/* ------------------------------------------------------------------------------------------ */
/* Checks                                                                                     */
/* ------------------------------------------------------------------------------------------ */

#define MASK_XLEN(x) ((x) & 0xffffffffffffffff)
#define SEXT_IMM(x) ((x) | (-(((x) >> 11) & 1) << 11))

/* Runs `code`, then fails check `testnum` unless `testreg` == `correctval`. */
#define TEST_CASE(testnum, testreg, correctval, code...)                        \
        li TESTNUM, testnum;                                                    \
        code;                                                                   \
        li x31, MASK_XLEN(correctval);                                          \
        bne testreg, x31, fail;

#define TEST_RR_OP(testnum, inst, result, val1, val2)                           \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(val1);                                               \
          li x2, MASK_XLEN(val2);                                               \
          inst x14, x1, x2;                                                     \
        )

/* Same registers for source and destination. */
#define TEST_RR_SRC1_EQ_DEST(testnum, inst, result, val1, val2)                 \
        TEST_CASE(testnum, x1, result,                                          \
          li x1, MASK_XLEN(val1);                                               \
          li x2, MASK_XLEN(val2);                                               \
          inst x1, x1, x2;                                                      \
        )

#define TEST_RR_ZERODEST(testnum, inst, val1, val2)                             \
        TEST_CASE(testnum, x0, 0,                                               \
          li x1, MASK_XLEN(val1);                                               \
          li x2, MASK_XLEN(val2);                                               \
          inst x0, x1, x2;                                                      \
        )

#define TEST_R_OP(testnum, inst, result, val1)                                  \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(val1);                                               \
          inst x14, x1;                                                         \
        )

#define TEST_IMM_OP(testnum, inst, result, val1, imm)                           \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(val1);                                               \
          inst x14, x1, imm;                                                    \
        )

/* Load `inst` from base+offset, where base points at `label`. */
#define TEST_LD_OP(testnum, inst, result, offset, label)                        \
        TEST_CASE(testnum, x14, result,                                         \
          la x1, label;                                                         \
          inst x14, offset(x1);                                                 \
        )

/* Store `val` with `st`, load back with `ld`. */
#define TEST_ST_OP(testnum, ld, st, result, val, offset, label)                 \
        TEST_CASE(testnum, x14, result,                                         \
          la x1, label;                                                         \
          li x2, MASK_XLEN(val);                                                \
          st x2, offset(x1);                                                    \
          ld x14, offset(x1);                                                   \
        )

/* Branch that must be taken. */
#define TEST_BR2_TAKEN(testnum, inst, val1, val2)                               \
        li TESTNUM, testnum;                                                    \
        li x1, MASK_XLEN(val1);                                                 \
        li x2, MASK_XLEN(val2);                                                 \
        inst x1, x2, 2f;                                                        \
        j fail;                                                                 \
1:      j 3f;                                                                   \
2:      inst x1, x2, 1b;                                                        \
        j fail;                                                                 \
3:

/* Branch that must fall through. */
#define TEST_BR2_NOT_TAKEN(testnum, inst, val1, val2)                           \
        li TESTNUM, testnum;                                                    \
        li x1, MASK_XLEN(val1);                                                 \
        li x2, MASK_XLEN(val2);                                                 \
        inst x1, x2, 1f;                                                        \
        j 2f;                                                                   \
1:      j fail;                                                                 \
2:      inst x1, x2, 1b;                                                        \
3:

/*
 * Runs `code`, which must trap with mcause == `cause` (resuming at the end of the check in
 * M-mode). CAUSE_NONE means it must not trap.
 */
#define TEST_TRAP(testnum, cause, code...)                                      \
        li TESTNUM, testnum;                                                    \
        la t5, trap_save;                                                       \
        li t6, CAUSE_NONE;                                                      \
        sd t6, TS_CAUSE(t5);                                                    \
        la t6, 9f;                                                              \
        sd t6, TS_RESUME(t5);                                                   \
        code;                                                                   \
9:      la t5, trap_save;                                                       \
        sd zero, TS_RESUME(t5);                                                 \
        ld t6, TS_CAUSE(t5);                                                    \
        li t5, MASK_XLEN(cause);                                                \
        bne t5, t6, fail;

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/*
 * Runs `code` in privilege `prv` (PRV_U/S/M, entered with mret) and checks the cause of the first
 * trap taken to M-mode, which resumes after the check in M-mode. Code that does not trap ends with
 * an ecall, so CAUSE_NONE expects the ecall cause of that mode (8 + prv).
 */
#define TEST_TRAP_IN_MODE(testnum, prv, cause, code...)                         \
        li TESTNUM, testnum;                                                    \
        la t5, trap_save;                                                       \
        li t6, CAUSE_NONE;                                                      \
        sd t6, TS_CAUSE(t5);                                                    \
        la t6, 9f;                                                              \
        sd t6, TS_RESUME(t5);                                                   \
        li t6, MSTATUS_MPP;                                                     \
        csrc mstatus, t6;                                                       \
        li t6, (prv) << 11;                                                     \
        csrs mstatus, t6;                                                       \
        la t6, 8f;                                                              \
        csrw mepc, t6;                                                          \
        mret;                                                                   \
8:      code;                                                                   \
        ecall;                                                                  \
9:      la t5, trap_save;                                                       \
        sd zero, TS_RESUME(t5);                                                 \
        ld t6, TS_CAUSE(t5);                                                    \
        /* gas: (a == b) is -1 when true, 0 when false */                        \
        li t5, ((cause) + (((8 + (prv)) - (cause)) & ((cause) == CAUSE_NONE))); \
        bne t5, t6, fail;

/* Arms the S-mode handler: the next trap taken to S resumes at `label` in S-mode. */
#define STRAP_RESUME_AT(label)                                                  \
        la t5, strap_save; li t6, CAUSE_NONE; sd t6, TS_CAUSE(t5);              \
        la t6, label; sd t6, TS_RESUME(t5);

/* Fails check `testnum` if any trap was taken so far (e.g. an instruction was illegal). */
#define CHECK_NO_TRAPS(testnum)                                                 \
        TEST_CASE(testnum, x14, 0, la t5, trap_save; ld x14, TS_COUNT(t5))

/* Check the mtval/mepc recorded by the last trap. */
#define CHECK_TVAL(testnum, val)                                                \
        TEST_CASE(testnum, x14, val, la t5, trap_save; ld x14, TS_TVAL(t5))
#define CHECK_TVAL_REG(testnum, reg)                                            \
        li TESTNUM, testnum; la t5, trap_save; ld t6, TS_TVAL(t5); bne t6, reg, fail;
#define CHECK_EPC_LABEL(testnum, label)                                         \
        li TESTNUM, testnum; la t5, trap_save; ld t6, TS_EPC(t5); la t5, label; bne t6, t5, fail;

/* ------------------------------------------------------------------------------------------ */
/* Floating point                                                                             */
/* ------------------------------------------------------------------------------------------ */

#define FFLAGS_NX 0x01
#define FFLAGS_UF 0x02
#define FFLAGS_OF 0x04
#define FFLAGS_DZ 0x08
#define FFLAGS_NV 0x10

#define RM_RNE 0
#define RM_RTZ 1
#define RM_RDN 2
#define RM_RUP 3
#define RM_RMM 4
#define RM_DYN 7

/* Bit patterns. */
#define F32_QNAN 0x7fc00000
#define F32_SNAN 0x7f800001
#define F32_INF 0x7f800000
#define F32_NINF 0xff800000
#define F64_QNAN 0x7ff8000000000000
#define F64_SNAN 0x7ff0000000000001
#define F64_INF 0x7ff0000000000000
#define F64_NINF 0xfff0000000000000
#define BOX32(x) (0xffffffff00000000 | (x))

/*
 * Binary FP op on raw bit patterns: result bits into x14 and fflags into x15; checks both.
 * `rm` is a static rounding-mode operand name (rne, rtz, rdn, rup, rmm, dyn).
 */
#define TEST_FP_OP2_S(testnum, inst, rm, flags, result, a, b)                   \
        TEST_CASE(testnum, x14, BOX32(result),                                  \
          li x1, BOX32(a); fmv.d.x f1, x1;                                      \
          li x2, BOX32(b); fmv.d.x f2, x2;                                      \
          csrwi fflags, 0;                                                      \
          inst f3, f1, f2, rm;                                                  \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_OP2_D(testnum, inst, rm, flags, result, a, b)                   \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(a); fmv.d.x f1, x1;                                  \
          li x2, MASK_XLEN(b); fmv.d.x f2, x2;                                  \
          csrwi fflags, 0;                                                      \
          inst f3, f1, f2, rm;                                                  \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

/* Ops without a rounding-mode operand (fmin, fmax, fsgnj*). */
#define TEST_FP_OP2NR_S(testnum, inst, flags, result, a, b)                     \
        TEST_CASE(testnum, x14, BOX32(result),                                  \
          li x1, BOX32(a); fmv.d.x f1, x1;                                      \
          li x2, BOX32(b); fmv.d.x f2, x2;                                      \
          csrwi fflags, 0;                                                      \
          inst f3, f1, f2;                                                      \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_OP2NR_D(testnum, inst, flags, result, a, b)                     \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(a); fmv.d.x f1, x1;                                  \
          li x2, MASK_XLEN(b); fmv.d.x f2, x2;                                  \
          csrwi fflags, 0;                                                      \
          inst f3, f1, f2;                                                      \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_OP1_S(testnum, inst, rm, flags, result, a)                      \
        TEST_CASE(testnum, x14, BOX32(result),                                  \
          li x1, BOX32(a); fmv.d.x f1, x1;                                      \
          csrwi fflags, 0;                                                      \
          inst f3, f1, rm;                                                      \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_OP1_D(testnum, inst, rm, flags, result, a)                      \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(a); fmv.d.x f1, x1;                                  \
          csrwi fflags, 0;                                                      \
          inst f3, f1, rm;                                                      \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_OP3_S(testnum, inst, rm, flags, result, a, b, c)                \
        TEST_CASE(testnum, x14, BOX32(result),                                  \
          li x1, BOX32(a); fmv.d.x f1, x1;                                      \
          li x2, BOX32(b); fmv.d.x f2, x2;                                      \
          li x4, BOX32(c); fmv.d.x f4, x4;                                      \
          csrwi fflags, 0;                                                      \
          inst f3, f1, f2, f4, rm;                                              \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_OP3_D(testnum, inst, rm, flags, result, a, b, c)                \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(a); fmv.d.x f1, x1;                                  \
          li x2, MASK_XLEN(b); fmv.d.x f2, x2;                                  \
          li x4, MASK_XLEN(c); fmv.d.x f4, x4;                                  \
          csrwi fflags, 0;                                                      \
          inst f3, f1, f2, f4, rm;                                              \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

/* FP source (raw bits, boxed for .s) -> integer register result (compare, class, convert). */
#define TEST_FP_INT_S(testnum, inst, flags, result, a, b)                       \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, BOX32(a); fmv.d.x f1, x1;                                      \
          li x2, BOX32(b); fmv.d.x f2, x2;                                      \
          csrwi fflags, 0;                                                      \
          inst;                                                                 \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#define TEST_FP_INT_D(testnum, inst, flags, result, a, b)                       \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(a); fmv.d.x f1, x1;                                  \
          li x2, MASK_XLEN(b); fmv.d.x f2, x2;                                  \
          csrwi fflags, 0;                                                      \
          inst;                                                                 \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

/* Integer source x1 -> FP result bits in x14 (fcvt.s.*, fcvt.d.*). */
#define TEST_INT_FP(testnum, inst, rm, flags, result, a)                        \
        TEST_CASE(testnum, x14, result,                                         \
          li x1, MASK_XLEN(a);                                                  \
          csrwi fflags, 0;                                                      \
          inst f3, x1, rm;                                                      \
          fmv.x.d x14, f3;                                                      \
          frflags x15;                                                          \
        )                                                                       \
        li x31, flags; bne x15, x31, fail;

#endif /* EMU_TEST_MACROS_H */
