# Physical memory protection (privileged spec 3.7): TOR, NA4 and NAPOT regions, priority by
# entry number, S/U denied where no entry matches, M-mode bypassing unlocked entries, locked
# entries binding M-mode and ignoring writes to their pmpcfg/pmpaddr (checked last: a lock holds
# until reset). Access faults carry the address in mtval. The catch-all RWX entry lives in
# entry 7 here so that entries 0-6 take priority.
#include "test_macros.h"

#define PMP_R 0x01
#define PMP_W 0x02
#define PMP_X 0x04
#define PMP_TOR 0x08
#define PMP_NA4 0x10
#define PMP_NAPOT 0x18
#define PMP_L 0x80
#define CFG(entry, v) ((v) << ((entry) * 8))
#define CATCH_ALL CFG(7, PMP_NAPOT | PMP_R | PMP_W | PMP_X)

/* Sets pmpcfg0 to `value` (entries 0-7) and flushes address translation caches. */
#define SET_PMPCFG0(value) li t0, value; csrw pmpcfg0, t0; sfence.vma
/* pmpaddr for a NAPOT region of `size` bytes at the address in `reg` */
#define NAPOT_ADDR(dst, reg, size) srli dst, reg, 2; ori dst, dst, ((size) / 8) - 1

RVTEST_CODE_BEGIN
        # catch-all moves to entry 7
        li t0, -1; csrw pmpaddr7, t0
        SET_PMPCFG0(CATCH_ALL)
        TEST_TRAP_IN_MODE(2, PRV_S, CAUSE_NONE, la x1, region; ld x14, 0(x1))
        # U/S are denied when no entry matches: one active NA4 entry elsewhere, no catch-all, so
        # not even the fetch after mret succeeds (QEMU 7.2 allows all when no entry is active)
        la t0, region2; srli t0, t0, 2; csrw pmpaddr0, t0
        SET_PMPCFG0(CFG(0, PMP_NA4 | PMP_R | PMP_W | PMP_X))
        TEST_TRAP_IN_MODE(3, PRV_U, CAUSE_FETCH_ACCESS, nop)
        TEST_TRAP_IN_MODE(4, PRV_S, CAUSE_FETCH_ACCESS, nop)
        # ... while M-mode still has full access
        TEST_CASE(5, x14, 0x1234, la x1, region; li x2, 0x1234; sd x2, 0(x1); ld x14, 0(x1))

        # TOR: entry 1 covers [pmpaddr0, pmpaddr1) = the 4 KiB at `region`, read-only
        la t0, region; srli t0, t0, 2; csrw pmpaddr0, t0
        la t0, region + 4096; srli t0, t0, 2; csrw pmpaddr1, t0
        SET_PMPCFG0(CATCH_ALL | CFG(1, PMP_TOR | PMP_R))
        TEST_TRAP_IN_MODE(10, PRV_S, CAUSE_NONE, la x1, region; ld x14, 0(x1); li x2, 4088; add x1, x1, x2; ld x14, 0(x1))
        TEST_TRAP_IN_MODE(11, PRV_S, CAUSE_STORE_ACCESS, la x1, region; sd x14, 8(x1))
        la x15, region + 8
        CHECK_TVAL_REG(12, x15)
        TEST_TRAP_IN_MODE(13, PRV_U, CAUSE_STORE_ACCESS, la x1, region + 4088; sd x14, 0(x1))
        # just past the top is outside the region (the catch-all allows it)
        TEST_TRAP_IN_MODE(14, PRV_S, CAUSE_NONE, la x1, region + 4096; sd x14, 0(x1))
        # just below the bottom likewise
        TEST_TRAP_IN_MODE(15, PRV_S, CAUSE_NONE, la x1, region - 8; sd x14, 0(x1))
        # M-mode ignores the unlocked entry
        TEST_TRAP(16, CAUSE_NONE, la x1, region; sd x14, 0(x1))
        # AMOs need write permission
        TEST_TRAP_IN_MODE(17, PRV_S, CAUSE_STORE_ACCESS, la x1, region; amoor.d x14, x0, (x1))

        # NA4: entry 2 denies the 4 bytes at region2 + 16; its neighbours are fine
        la t0, region2 + 16; srli t0, t0, 2; csrw pmpaddr2, t0
        SET_PMPCFG0(CATCH_ALL | CFG(2, PMP_NA4))
        TEST_TRAP_IN_MODE(20, PRV_S, CAUSE_LOAD_ACCESS, la x1, region2 + 16; lw x14, 0(x1))
        TEST_TRAP_IN_MODE(21, PRV_S, CAUSE_LOAD_ACCESS, la x1, region2 + 18; lbu x14, 0(x1))
        TEST_TRAP_IN_MODE(22, PRV_S, CAUSE_NONE, la x1, region2 + 12; lw x14, 0(x1); lw x14, 8(x1))
        # an access straddling the edge of a region fails (it must lie wholly inside one entry)
        TEST_TRAP_IN_MODE(23, PRV_S, CAUSE_LOAD_ACCESS, la x1, region2 + 12; ld x14, 0(x1))

        # NAPOT: entry 3 makes the 4 KiB code page `pmp_code` readable but not executable
        la t0, pmp_code; NAPOT_ADDR(t1, t0, 4096); csrw pmpaddr3, t1
        SET_PMPCFG0(CATCH_ALL | CFG(3, PMP_NAPOT | PMP_R))
        TEST_TRAP_IN_MODE(30, PRV_S, CAUSE_FETCH_ACCESS, la x1, pmp_code; jalr x1)
        la x15, pmp_code
        CHECK_TVAL_REG(31, x15)
        TEST_TRAP_IN_MODE(32, PRV_S, CAUSE_NONE, la x1, pmp_code; lw x14, 0(x1))
        SET_PMPCFG0(CATCH_ALL | CFG(3, PMP_NAPOT | PMP_X))
        TEST_TRAP_IN_MODE(33, PRV_U, CAUSE_USER_ECALL, la x1, pmp_code; jalr x1)
        TEST_TRAP_IN_MODE(34, PRV_U, CAUSE_LOAD_ACCESS, la x1, pmp_code; lw x14, 0(x1))
        # priority: a lower-numbered entry wins even if a higher one would allow the access
        csrw pmpaddr2, t1
        SET_PMPCFG0(CATCH_ALL | CFG(2, PMP_NAPOT) | CFG(3, PMP_NAPOT | PMP_R | PMP_W | PMP_X))
        TEST_TRAP_IN_MODE(35, PRV_S, CAUSE_LOAD_ACCESS, la x1, pmp_code; lw x14, 0(x1))
        SET_PMPCFG0(CATCH_ALL | CFG(2, PMP_NAPOT | PMP_R) | CFG(3, PMP_NAPOT))
        TEST_TRAP_IN_MODE(36, PRV_S, CAUSE_NONE, la x1, pmp_code; lw x14, 0(x1))
        # pmpcfg/pmpaddr round-trip while unlocked (with the W-without-R encoding reserved)
        TEST_CASE(37, x14, 0x1234, li x1, 0x1234; csrw pmpaddr5, x1; csrr x14, pmpaddr5)

        # locked NAPOT entry 4 over `region`: read-only for M-mode too, and frozen
        la t0, region; NAPOT_ADDR(t1, t0, 4096); csrw pmpaddr4, t1
        SET_PMPCFG0(CATCH_ALL | CFG(4, PMP_L | PMP_NAPOT | PMP_R))
        TEST_TRAP(40, CAUSE_STORE_ACCESS, la x1, region; sd x14, 0(x1))
        TEST_TRAP(41, CAUSE_NONE, la x1, region; ld x14, 0(x1))
        TEST_TRAP_IN_MODE(42, PRV_S, CAUSE_STORE_ACCESS, la x1, region; sd x14, 0(x1))
        # writes to a locked entry's address and configuration are ignored
        TEST_CASE(43, x14, 1, csrr x2, pmpaddr4; li x1, 0x1234; csrw pmpaddr4, x1; csrr x14, pmpaddr4; sub x14, x14, x2; seqz x14, x14)
        SET_PMPCFG0(CATCH_ALL)
        TEST_CASE(44, x14, PMP_L | PMP_NAPOT | PMP_R, csrr x14, pmpcfg0; srli x14, x14, 32; andi x14, x14, 0xff)
        TEST_TRAP(45, CAUSE_STORE_ACCESS, la x1, region; sd x14, 0(x1))
        j pass
RVTEST_CODE_END

        .section .text.pmp, "ax", @progbits
        .align 12
pmp_code:
        ecall
        .align 12

RVTEST_DATA_BEGIN
        .align 12
        .dword 0
        .align 12
region: .fill 512, 8, 0
region2: .fill 16, 8, 0
RVTEST_DATA_END
