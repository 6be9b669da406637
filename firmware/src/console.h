/*
 * console.h - where the demo's report goes, per board family.
 *
 * console_semihosting.c serves the QEMU boards (text to the host through
 * semihosting, exit status to the emulator); console_arduino.cpp serves the
 * real boards (Serial at 115200 baud).
 */
#ifndef CONSOLE_H
#define CONSOLE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Write a NUL-terminated string. */
void console_write(const char *text);

/* The report is complete; `status` is 0 on success.  On an emulator this
 * ends the run with that exit status. */
void console_finish(int status);

/* The demo: decode every embedded stream, report, return the exit status. */
int tinycabac_demo(void);

#ifdef __cplusplus
}
#endif

#endif /* CONSOLE_H */
