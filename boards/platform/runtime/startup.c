/*
 * startup.c - reset and fault handling for tinycabac's QEMU Cortex-M boards.
 *
 * The vector table goes first in flash (linker script section .isr_vector):
 * the core loads the initial stack pointer and the reset vector from it.
 * Reset_Handler prepares C's memory (copy .data from flash, zero .bss),
 * enables the FPU where the build uses one, runs main() and reports its
 * return value as the emulator's exit status.  Every fault ends the run with
 * a message and exit status FAULT_EXIT_STATUS instead of a QEMU lockup.
 */
#include <stdint.h>

#include "semihost.h"

#define FAULT_EXIT_STATUS 3

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void Reset_Handler(void) __attribute__((noreturn));
void Fault_Handler(void) __attribute__((noreturn));

static void enable_fpu(void)
{
#if defined(__ARM_FP)
    /* CPACR: full access to coprocessors 10 and 11 (the FPU).  Must happen
     * before the first floating-point instruction. */
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

static void init_memory(void)
{
    const uint32_t *source = &_sidata;
    for (uint32_t *target = &_sdata; target < &_edata;) {
        *target++ = *source++;
    }
    for (uint32_t *target = &_sbss; target < &_ebss;) {
        *target++ = 0;
    }
}

void Reset_Handler(void)
{
    enable_fpu();
    init_memory();
    semihost_exit(main());
}

void Fault_Handler(void)
{
    semihost_write0("FAIL hard fault\n");
    semihost_exit(FAULT_EXIT_STATUS);
}

/* Cortex-M system exceptions only: the demo enables no peripheral IRQs. */
__attribute__((section(".isr_vector"), used))
void (*const vector_table[16])(void) = {
    (void (*)(void))&_estack, /* initial stack pointer */
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage (ARMv7-M) */
    Fault_Handler, /* BusFault (ARMv7-M) */
    Fault_Handler, /* UsageFault (ARMv7-M) */
    0, 0, 0, 0,    /* reserved */
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,             /* reserved */
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
