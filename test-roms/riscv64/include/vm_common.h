/*
 * Virtual-memory checks shared by vm-sv39.S, vm-sv48.S and vm-sv57.S (privileged spec 4.3-4.5).
 * The including file defines VM_LEVELS (3, 4 or 5) before including this file.
 *
 * Page tables are built at run time in M-mode:
 *  - 0x8000_0000 is identity-mapped by a 1 GiB leaf (level 2), supervisor RWX, A and D set;
 *  - VA_TEST (0x4000_0000) is a level-1 table whose entry 0 points to a level-0 table of 4 KiB
 *    pages with the permission mixes listed at PG(n) below; entries 5 and 6 of the level-1 table
 *    are a misaligned and an aligned 2 MiB leaf;
 *  - level-2 entry 4 (VA 0x1_0000_0000) is a misaligned 1 GiB leaf;
 *  - every other entry is invalid, giving a page fault at each level of the walk.
 */
#include "test_macros.h"

#if VM_LEVELS == 3
#define SATP_MODE SATP_MODE_SV39
#elif VM_LEVELS == 4
#define SATP_MODE SATP_MODE_SV48
#else
#define SATP_MODE SATP_MODE_SV57
#endif
#define VA_BITS (12 + 9 * VM_LEVELS)

#define VA_TEST 0x40000000
#define PG(i) (VA_TEST + (i) * 4096)
#define MEGA(i) (VA_TEST + (i) * 0x200000)
#define PG_DATA_A 0   /* RW, A = D = 0: A/D updates */
#define PG_RO 1       /* R */
#define PG_XO 2       /* X only: loads need MXR */
#define PG_USER 3     /* U RW */
#define PG_INVALID 4  /* V = 0 */
#define PG_WO 5       /* W without R: reserved encoding */
#define PG_UCODE 6    /* U RX: the user program */
#define PG_SCODE 7    /* the user program's page without U */
#define PG_CLEAN 8    /* RW, A = 1, D = 0 */
#define PG_UNACC 9    /* RW, A = 0, D = 1 */
#define PG_REMAP 10   /* remapped between checks, with sfence.vma */
#define PG_LEAFPTR 11 /* a pointer (no R/W/X) at level 0: no more levels to walk */
#define PG_FRESH 12   /* RW, A = D = 0, first touched by a store */
#define PG_UALIAS 13  /* the user program's page again, supervisor RW: code patched through it */

/* entry points inside the user program page */
#define USER_TOUCH_S 0x100
#define USER_JUMP_S 0x200
#define USER_SMC 0x300
/* addi a0, zero, imm */
#define ADDI_A0(imm) ((((imm) & 0xfff) << 20) | (10 << 7) | 0x13)

#define DATA_B_VALUE 0x1111222233334444
#define DATA_C_VALUE 0x5555666677778888

/* dst = non-leaf PTE pointing at the table whose address is in reg */
#define MAKE_PTR(dst, reg) srli dst, reg, 12; slli dst, dst, 10; ori dst, dst, PTE_V
/* dst = leaf PTE for the physical address in reg with `flags` */
#define MAKE_LEAF(dst, reg, flags) srli dst, reg, 12; slli dst, dst, 10; ori dst, dst, flags
/* T0[i] = leaf(pa of `label`, flags) */
#define SET_PAGE(i, label, flags) la a5, label; MAKE_LEAF(a6, a5, flags); sd a6, (i) * 8(s4)

/* A user program check: runs from virtual address `va` in U-mode; `cause` as TEST_TRAP_IN_MODE. */
#define TEST_USER_VA(testnum, va, cause)                                        \
        li TESTNUM, testnum;                                                    \
        la t5, trap_save;                                                       \
        li t6, CAUSE_NONE;                                                      \
        sd t6, TS_CAUSE(t5);                                                    \
        la t6, 9f;                                                              \
        sd t6, TS_RESUME(t5);                                                   \
        li t6, MSTATUS_MPP;                                                     \
        csrc mstatus, t6;                                                       \
        li t6, va;                                                              \
        csrw mepc, t6;                                                          \
        mret;                                                                   \
9:      la t5, trap_save;                                                       \
        sd zero, TS_RESUME(t5);                                                 \
        ld t6, TS_CAUSE(t5);                                                    \
        li t5, cause;                                                           \
        bne t5, t6, fail;

/* x14 = the level-0 PTE of page i (read in M-mode, physical) */
#define READ_PTE(i) la x14, tbl_l0; ld x14, (i) * 8(x14)

RVTEST_CODE_BEGIN
        # ---- build the tables ----
        la s0, tbl_l4
        la s1, tbl_l3
        la s2, tbl_l2
        la s3, tbl_l1
        la s4, tbl_l0
#if VM_LEVELS == 5
        MAKE_PTR(a6, s1); sd a6, 0(s0)
#endif
#if VM_LEVELS >= 4
        MAKE_PTR(a6, s2); sd a6, 0(s1)
#endif
        li a5, 0x80000000; MAKE_LEAF(a6, a5, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D); sd a6, 2 * 8(s2)
        MAKE_PTR(a6, s3); sd a6, 1 * 8(s2)
        # level-2 entry 4 (VA 0x1_0000_0000): a 1 GiB leaf whose PPN[1] is not zero: misaligned
        li a5, 0x80200000; MAKE_LEAF(a6, a5, PTE_V | PTE_R | PTE_A | PTE_D); sd a6, 4 * 8(s2)
        MAKE_PTR(a6, s4); sd a6, 0(s3)
        # 2 MiB leaves: entry 5 misaligned (PPN[0] = 1), entry 6 aligned at 0x8000_0000
        li a5, 0x80001000; MAKE_LEAF(a6, a5, PTE_V | PTE_R | PTE_A | PTE_D); sd a6, 5 * 8(s3)
        li a5, 0x80000000; MAKE_LEAF(a6, a5, PTE_V | PTE_R | PTE_A | PTE_D); sd a6, 6 * 8(s3)
        SET_PAGE(PG_DATA_A, data_a, PTE_V | PTE_R | PTE_W)
        SET_PAGE(PG_RO, data_b, PTE_V | PTE_R | PTE_A)
        SET_PAGE(PG_XO, data_b, PTE_V | PTE_X | PTE_A)
        SET_PAGE(PG_USER, data_b, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D)
        SET_PAGE(PG_WO, data_b, PTE_V | PTE_W | PTE_A | PTE_D)
        SET_PAGE(PG_UCODE, user_code, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A)
        SET_PAGE(PG_SCODE, user_code, PTE_V | PTE_R | PTE_X | PTE_A)
        SET_PAGE(PG_CLEAN, data_b, PTE_V | PTE_R | PTE_W | PTE_A)
        SET_PAGE(PG_UNACC, data_b, PTE_V | PTE_R | PTE_W | PTE_D)
        SET_PAGE(PG_REMAP, data_b, PTE_V | PTE_R | PTE_A)
        SET_PAGE(PG_LEAFPTR, data_b, PTE_V)
        SET_PAGE(PG_FRESH, data_a, PTE_V | PTE_R | PTE_W)
        SET_PAGE(PG_UALIAS, user_code, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#if VM_LEVELS == 3
        mv a5, s2
#elif VM_LEVELS == 4
        mv a5, s1
#else
        mv a5, s0
#endif
        srli a5, a5, 12
        li a6, SATP_MODE
        or a5, a5, a6
        csrw satp, a5
        TEST_CASE(2, x14, 1, csrr x14, satp; srli x14, x14, 60; li x15, SATP_MODE >> 60; sub x14, x14, x15; seqz x14, x14)
        # M-mode is not translated
        TEST_CASE(3, x14, DATA_B_VALUE, la x1, data_b; ld x14, 0(x1))

        # ---- supervisor accesses ----
        TEST_TRAP_IN_MODE(10, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_RO); ld x14, 0(x1); li x15, DATA_B_VALUE; bne x14, x15, fail)
        TEST_TRAP_IN_MODE(11, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, PG(PG_RO) + 8; sd x0, 0(x1))
        CHECK_TVAL(12, PG(PG_RO) + 8)
        TEST_TRAP_IN_MODE(13, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, PG(PG_RO); amoadd.d x14, x0, (x1))
        # execute-only page: loads fault unless MXR
        TEST_TRAP_IN_MODE(14, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, PG(PG_XO); ld x14, 0(x1))
        li x1, MSTATUS_MXR; csrs mstatus, x1
        TEST_TRAP_IN_MODE(15, PRV_S, CAUSE_NONE, li x1, PG(PG_XO); ld x14, 0(x1); li x15, DATA_B_VALUE; bne x14, x15, fail)
        li x1, MSTATUS_MXR; csrc mstatus, x1
        # MXR does not make a read-only page writable or an RO page executable
        TEST_TRAP_IN_MODE(16, PRV_S, CAUSE_FETCH_PAGE_FAULT, li x1, PG(PG_RO); jr x1)
        CHECK_TVAL(17, PG(PG_RO))
        # user pages from S: faults without SUM, allowed with SUM, never executable
        TEST_TRAP_IN_MODE(20, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, PG(PG_USER); ld x14, 0(x1))
        TEST_TRAP_IN_MODE(21, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, PG(PG_USER); sd x0, 16(x1))
        li x1, MSTATUS_SUM; csrs mstatus, x1
        TEST_TRAP_IN_MODE(22, PRV_S, CAUSE_NONE, li x1, PG(PG_USER); ld x14, 0(x1); li x15, DATA_B_VALUE; bne x14, x15, fail; sd x14, 16(x1))
        TEST_TRAP_IN_MODE(23, PRV_S, CAUSE_FETCH_PAGE_FAULT, li x1, PG(PG_UCODE); jr x1)
        li x1, MSTATUS_SUM; csrc mstatus, x1
        # invalid leaf and reserved W-without-R encoding
        TEST_TRAP_IN_MODE(24, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, PG(PG_INVALID) + 0x10; lw x14, 0(x1))
        CHECK_TVAL(25, PG(PG_INVALID) + 0x10)
        TEST_TRAP_IN_MODE(26, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, PG(PG_INVALID); sb x0, 0(x1))
        TEST_TRAP_IN_MODE(27, PRV_S, CAUSE_FETCH_PAGE_FAULT, li x1, PG(PG_INVALID); jalr x1)
        TEST_TRAP_IN_MODE(28, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, PG(PG_WO); ld x14, 0(x1))
        TEST_TRAP_IN_MODE(29, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, PG(PG_WO); sd x14, 0(x1))
        # a non-leaf PTE at level 0 is a page fault (4.3.2 step 4)
        TEST_TRAP_IN_MODE(18, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, PG(PG_LEAFPTR); ld x14, 0(x1))
        TEST_TRAP_IN_MODE(19, PRV_S, CAUSE_FETCH_PAGE_FAULT, li x1, PG(PG_LEAFPTR); jr x1)

        # ---- a page fault at every level of the walk ----
        # level 1: entry 2 of the level-1 table is invalid
        TEST_TRAP_IN_MODE(30, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, MEGA(2); ld x14, 0(x1))
        CHECK_TVAL(31, MEGA(2))
        # level 2: entry 3 of the level-2 table is invalid
        TEST_TRAP_IN_MODE(32, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, 0xc0000000; ld x14, 0(x1))
        TEST_TRAP_IN_MODE(33, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, 0xc0000008; sd x14, 0(x1))
#if VM_LEVELS >= 4
        # level 3: entry 1 of the level-3 table is invalid
        TEST_TRAP_IN_MODE(34, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, 1 << 39; ld x14, 0(x1))
        CHECK_TVAL(35, 1 << 39)
#endif
#if VM_LEVELS >= 5
        # level 4: entry 1 of the level-4 table is invalid
        TEST_TRAP_IN_MODE(36, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, 1 << 48; ld x14, 0(x1))
        CHECK_TVAL(37, 1 << 48)
#endif
        # a virtual address that is not sign-extended from bit VA_BITS - 1
        TEST_TRAP_IN_MODE(38, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, (1 << (VA_BITS - 1)) | 0x80000000; ld x14, 0(x1))
        TEST_TRAP_IN_MODE(39, PRV_S, CAUSE_FETCH_PAGE_FAULT, li x1, (1 << (VA_BITS - 1)) | 0x80000000; jr x1)
        # superpages: a misaligned 2 MiB leaf faults, an aligned one translates
        TEST_TRAP_IN_MODE(40, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, MEGA(5) + 8; ld x14, 0(x1))
        TEST_TRAP_IN_MODE(42, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, 0x100000000; ld x14, 0(x1))
        la x1, _start; ld x20, 0(x1); la x1, data_b; li x2, 0x80000000; sub x21, x1, x2
        TEST_TRAP_IN_MODE(41, PRV_S, CAUSE_NONE, li x1, MEGA(6); ld x14, 0(x1); bne x14, x20, fail; add x1, x1, x21; ld x14, 0(x1); li x15, DATA_B_VALUE; bne x14, x15, fail)

        # ---- accessed and dirty bits (4.3.1: QEMU sets them in the PTE) ----
        TEST_CASE(50, x14, 0, READ_PTE(PG_DATA_A); andi x14, x14, PTE_A | PTE_D)
        TEST_TRAP_IN_MODE(51, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_DATA_A); ld x14, 0(x1))
        TEST_CASE(52, x14, PTE_A, READ_PTE(PG_DATA_A); andi x14, x14, PTE_A | PTE_D)
        TEST_TRAP_IN_MODE(53, PRV_S, CAUSE_NONE, li x1, PG(PG_DATA_A); li x2, 0x77; sd x2, 8(x1))
        TEST_CASE(54, x14, PTE_A | PTE_D, READ_PTE(PG_DATA_A); andi x14, x14, PTE_A | PTE_D)
        TEST_CASE(55, x14, 0x77, la x1, data_a; ld x14, 8(x1))
        TEST_TRAP_IN_MODE(56, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_CLEAN); ld x14, 0(x1))
        TEST_CASE(57, x14, PTE_A, READ_PTE(PG_CLEAN); andi x14, x14, PTE_A | PTE_D)
        TEST_TRAP_IN_MODE(58, PRV_S, CAUSE_NONE, li x1, PG(PG_CLEAN); sd x14, 24(x1))
        TEST_CASE(59, x14, PTE_A | PTE_D, READ_PTE(PG_CLEAN); andi x14, x14, PTE_A | PTE_D)
        TEST_TRAP_IN_MODE(60, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_UNACC); ld x14, 0(x1))
        TEST_CASE(61, x14, PTE_A | PTE_D, READ_PTE(PG_UNACC); andi x14, x14, PTE_A | PTE_D)
        # a first access that is a store sets A and D together
        TEST_TRAP_IN_MODE(64, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_FRESH); sd x0, 32(x1))
        TEST_CASE(65, x14, PTE_A | PTE_D, READ_PTE(PG_FRESH); andi x14, x14, PTE_A | PTE_D)
        # a faulting access sets neither bit
        TEST_TRAP_IN_MODE(62, PRV_S, CAUSE_STORE_PAGE_FAULT, sfence.vma; li x1, PG(PG_RO); sd x0, 0(x1))
        TEST_CASE(63, x14, PTE_A, READ_PTE(PG_RO); andi x14, x14, PTE_A | PTE_D)

        # ---- misaligned accesses that cross a page boundary ----
        # both pages readable (different physical pages): the access completes
        TEST_TRAP_IN_MODE(66, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_RO) - 4; ld x14, 0(x1); li x15, (DATA_B_VALUE << 32) & 0xffffffffffffffff; bne x14, x15, fail)
        # the second page is not readable: a load page fault
        TEST_TRAP_IN_MODE(67, PRV_S, CAUSE_LOAD_PAGE_FAULT, li x1, PG(PG_XO) - 2; lw x14, 0(x1))
        # the second page is not writable: a store page fault, and the first page is untouched
        TEST_TRAP_IN_MODE(68, PRV_S, CAUSE_STORE_PAGE_FAULT, li x1, PG(PG_RO) - 4; li x2, -1; sd x2, 0(x1))
        TEST_CASE(69, x14, 0, la x1, data_a + 4092; lwu x14, 0(x1))

        # ---- sfence.vma after a PTE change ----
        TEST_TRAP_IN_MODE(70, PRV_S, CAUSE_NONE, sfence.vma; li x1, PG(PG_REMAP); ld x14, 0(x1); li x15, DATA_B_VALUE; bne x14, x15, fail)
        la s4, tbl_l0
        SET_PAGE(PG_REMAP, data_c, PTE_V | PTE_R | PTE_A)
        TEST_TRAP_IN_MODE(71, PRV_S, CAUSE_NONE, li x1, PG(PG_REMAP); sfence.vma x1; ld x14, 0(x1); li x15, DATA_C_VALUE; bne x14, x15, fail)
        SET_PAGE(PG_REMAP, data_c, PTE_R | PTE_A)
        TEST_TRAP_IN_MODE(72, PRV_S, CAUSE_LOAD_PAGE_FAULT, sfence.vma; li x1, PG(PG_REMAP); ld x14, 0(x1))

        # ---- MPRV: M-mode loads and stores translated as MPP ----
        li x1, MSTATUS_MPP; csrc mstatus, x1
        li x1, MSTATUS_MPP_S; csrs mstatus, x1
        TEST_TRAP(80, CAUSE_NONE, li x1, MSTATUS_MPRV; li x2, PG(PG_RO); csrs mstatus, x1; ld x14, 0(x2); csrc mstatus, x1; li x15, DATA_B_VALUE; bne x14, x15, fail)
        li x1, MSTATUS_MPP; csrc mstatus, x1
        li x1, MSTATUS_MPP_S; csrs mstatus, x1
        TEST_TRAP(81, CAUSE_LOAD_PAGE_FAULT, li x1, MSTATUS_MPRV; li x2, PG(PG_USER); csrs mstatus, x1; ld x14, 0(x2); csrc mstatus, x1)
        li x1, MSTATUS_MPRV; csrc mstatus, x1
        li x1, MSTATUS_MPP; csrc mstatus, x1
        TEST_TRAP(82, CAUSE_NONE, li x1, MSTATUS_MPRV; li x2, PG(PG_USER); csrs mstatus, x1; ld x14, 0(x2); csrc mstatus, x1; li x15, DATA_B_VALUE; bne x14, x15, fail)
        TEST_TRAP(83, CAUSE_STORE_PAGE_FAULT, li x1, MSTATUS_MPRV; li x2, PG(PG_RO); csrs mstatus, x1; sd x14, 0(x2); csrc mstatus, x1)
        li x1, MSTATUS_MPRV; csrc mstatus, x1
        # MPRV does not affect instruction fetch: M-mode code keeps running untranslated
        TEST_TRAP(84, CAUSE_NONE, li x1, MSTATUS_MPRV; csrs mstatus, x1; nop; nop; csrc mstatus, x1)

        # ---- PMP checks the page-table walk itself (3.7.2: implicit accesses use S-mode
        # permissions and fault as an access fault of the original type) ----
        li t0, -1; csrw pmpaddr1, t0
        la t0, tbl_l0; srli t0, t0, 2; ori t0, t0, (4096 / 8) - 1; csrw pmpaddr0, t0
        li t0, (0x1f << 8) | 0x18; csrw pmpcfg0, t0
        sfence.vma
        TEST_TRAP_IN_MODE(85, PRV_S, CAUSE_LOAD_ACCESS, sfence.vma; li x1, PG(PG_RO); ld x14, 0(x1))
        TEST_TRAP_IN_MODE(86, PRV_S, CAUSE_STORE_ACCESS, li x1, PG(PG_CLEAN); sd x14, 0(x1))
        TEST_TRAP_IN_MODE(87, PRV_S, CAUSE_FETCH_ACCESS, li x1, PG(PG_SCODE); jr x1)
        # pages whose walk does not touch the denied table still translate
        TEST_TRAP_IN_MODE(88, PRV_S, CAUSE_NONE, li x1, MEGA(6); ld x14, 0(x1))
        li t0, 0x1f; csrw pmpcfg0, t0
        li t0, -1; csrw pmpaddr0, t0
        sfence.vma

        # ---- a user program ----
        la x1, data_b; li x2, DATA_B_VALUE; sd x2, 0(x1)
        TEST_USER_VA(90, PG(PG_UCODE), CAUSE_USER_ECALL)
        TEST_CASE(91, x14, DATA_B_VALUE + 1, la x1, data_b; ld x14, 8(x1))
        TEST_USER_VA(92, PG(PG_UCODE) + USER_TOUCH_S, CAUSE_LOAD_PAGE_FAULT)
        CHECK_TVAL(93, PG(PG_RO))
        TEST_USER_VA(94, PG(PG_UCODE) + USER_JUMP_S, CAUSE_FETCH_PAGE_FAULT)
        CHECK_TVAL(95, PG(PG_SCODE))
        TEST_USER_VA(96, PG(PG_SCODE), CAUSE_FETCH_PAGE_FAULT)
        # a 32-bit instruction whose second half lies on a page U may not execute: the fault
        # names that half (mtval = its page), mepc the instruction (3.1.16)
        TEST_USER_VA(98, PG(PG_UCODE) + 4094, CAUSE_FETCH_PAGE_FAULT)
        CHECK_TVAL(99, PG(PG_SCODE))
        TEST_CASE(100, x14, PG(PG_UCODE) + 4094, la t5, trap_save; ld x14, TS_EPC(t5))
        # self-modifying code through other mappings: the user code at USER_SMC returns its a0
        TEST_USER_VA(101, PG(PG_UCODE) + USER_SMC, CAUSE_USER_ECALL)
        TEST_CASE(102, a0, 1, nop)
        # patched by M-mode through the physical address, then run through the U mapping
        la x1, user_code + USER_SMC; li x2, ADDI_A0(2); sw x2, 0(x1); fence.i
        TEST_USER_VA(103, PG(PG_UCODE) + USER_SMC, CAUSE_USER_ECALL)
        TEST_CASE(104, a0, 2, nop)
        # patched by S-mode through a supervisor alias of the same physical page
        TEST_TRAP_IN_MODE(105, PRV_S, CAUSE_NONE, li x1, PG(PG_UALIAS) + USER_SMC; li x2, ADDI_A0(3); sw x2, 0(x1); fence.i)
        TEST_USER_VA(106, PG(PG_UCODE) + USER_SMC, CAUSE_USER_ECALL)
        TEST_CASE(107, a0, 3, nop)
        # SUM does not open supervisor pages to U
        li x1, MSTATUS_SUM; csrs mstatus, x1
        TEST_USER_VA(97, PG(PG_UCODE) + USER_TOUCH_S, CAUSE_LOAD_PAGE_FAULT)
        li x1, MSTATUS_SUM; csrc mstatus, x1
        csrw satp, zero
        j pass
RVTEST_CODE_END

        /* The user program: position-independent, run at PG(PG_UCODE). */
        .section .text.user, "ax", @progbits
        /* no linker relaxation: the entry points sit at fixed offsets (.org) */
        .option push
        .option norelax
        .align 12
user_code:
        li t0, PG(PG_USER)
        ld a0, 0(t0)
        addi a0, a0, 1
        sd a0, 8(t0)
        ecall
        .org user_code + USER_TOUCH_S
user_touch_s:
        li t0, PG(PG_RO)
        ld a0, 0(t0)
        ecall
        .org user_code + USER_JUMP_S
user_jump_s:
        li t0, PG(PG_SCODE)
        jr t0
        .org user_code + USER_SMC
user_smc:
        .option norvc
        addi a0, zero, 1
        ecall
        /* the first half of a 32-bit instruction (addi a0, zero, 0) at the very end of the page */
        .org user_code + 4094
        .2byte 0x0513
        .option pop

RVTEST_DATA_BEGIN
        .align 12
data_a: .dword 0, 0
        .align 12
data_b: .dword DATA_B_VALUE, 0, 0, 0
        .align 12
data_c: .dword DATA_C_VALUE
        .bss
        .align 12
tbl_l4: .skip 4096
tbl_l3: .skip 4096
tbl_l2: .skip 4096
tbl_l1: .skip 4096
tbl_l0: .skip 4096
RVTEST_DATA_END
