# Sv39 translation (3 levels): permissions, SUM, MXR, MPRV, A/D updates, superpages, a page
# fault at every level of the walk, non-canonical addresses, sfence.vma, and a user program under
# supervisor page tables. The checks are shared with the other Sv* programs: include/vm_common.h.
#define VM_LEVELS 3
#include "vm_common.h"
