/* hammer.c with a tenth of the rounds: tests/resource_bounds.rs compares the two, so memory
 * that grows with the number of device accesses shows. */
#define ROUNDS 40000UL
#include "hammer.c"
