/* semihost.c - ARM semihosting calls (see semihost.h). */
#include "semihost.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int semihost_call(unsigned operation, const void *argument)
{
    register unsigned r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

void semihost_write0(const char *text)
{
    semihost_call(SYS_WRITE0, text);
}

void semihost_exit(int status)
{
    /* SYS_EXIT_EXTENDED carries an exit code; plain SYS_EXIT on 32-bit ARM
     * can only say "success" or "failure", so it is the fallback. */
    const unsigned block[2] = {ADP_STOPPED_APPLICATION_EXIT, (unsigned)status};
    semihost_call(SYS_EXIT_EXTENDED, block);
    semihost_call(SYS_EXIT, (const void *)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT : 0u));
    for (;;) {
        /* Not under a semihosting host: nowhere to go. */
    }
}
