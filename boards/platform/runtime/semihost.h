/*
 * semihost.h - the few ARM semihosting calls tinycabac's QEMU boards need.
 *
 * Semihosting traps to the debugger/emulator with `bkpt 0xAB`; QEMU serves it
 * when started with `-semihosting-config enable=on,target=native`.  It is far
 * lighter than newlib's printf/rdimon (the microbit board has 16 KiB RAM).
 * Under QEMU, SYS_WRITE0 text goes to the semihosting chardev: pass
 * `-chardev stdio,id=sh0 -semihosting-config enable=on,target=native,chardev=sh0`
 * to get it on stdout (otherwise it lands on stderr).
 */
#ifndef TINYCABAC_SEMIHOST_H
#define TINYCABAC_SEMIHOST_H

#ifdef __cplusplus
extern "C" {
#endif

/* Write a NUL-terminated string to the host console. */
void semihost_write0(const char *text);

/* Stop the emulator; the host process exits with `status`.  Never returns. */
void semihost_exit(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TINYCABAC_SEMIHOST_H */
