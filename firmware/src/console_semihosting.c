/* console_semihosting.c - console for the QEMU boards (boards/platform). */
#ifdef TC_PORT_SEMIHOSTING

#include "console.h"
#include "semihost.h"

void console_write(const char *text)
{
    semihost_write0(text);
}

void console_finish(int status)
{
    semihost_exit(status);
}

int main(void)
{
    console_finish(tinycabac_demo());
    return 0;
}

#endif /* TC_PORT_SEMIHOSTING */
