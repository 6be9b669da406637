"""SCons build script of the tinycabac QEMU platform (PlatformIO runs it).

It compiles with Debian's arm-none-eabi-gcc found on PATH, so the platform
needs no registry package.  The board JSON gives the CPU, the FPU (empty for
none), the linker script (in ../ldscripts) and the QEMU machine.  Every
program gets this platform's runtime (vector table, reset and fault handlers,
semihosting), and `pio run -t upload` runs the ELF in QEMU.
"""
import os

from SCons.Script import AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
board = env.BoardConfig()
platform_dir = env.PioPlatform().get_dir()
runtime_dir = os.path.join(platform_dir, "runtime")
ldscripts_dir = os.path.join(platform_dir, "ldscripts")


def machine_flags():
    """CPU and float ABI: the same for compiling, assembling and linking."""
    flags = ["-mthumb", "-mcpu=%s" % board.get("build.cpu")]
    fpu = board.get("build.fpu", "")
    if fpu:
        flags += ["-mfpu=%s" % fpu, "-mfloat-abi=hard"]
    else:
        flags += ["-mfloat-abi=soft"]
    return flags


def qemu_command():
    """Run the ELF with semihosting text on stdout and its exit status kept."""
    return " ".join(
        [
            "timeout 60 qemu-system-arm",
            "-M %s" % board.get("build.qemu_machine"),
            "-cpu %s" % board.get("build.qemu_cpu"),
            "-display none -serial none -monitor none",
            "-chardev stdio,id=semihost",
            "-semihosting-config enable=on,target=native,chardev=semihost",
            "-kernel $SOURCE",
        ]
    )


env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-gcc",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    # Link as C: Debian's libnewlib-arm-none-eabi has no libstdc++, and the
    # g++ driver would ask for it as soon as a .cpp file is in the build.
    LINK="arm-none-eabi-gcc",
    GDB="gdb-multiarch",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    PROGSUFFIX=".elf",
    # Feed PlatformIO's "RAM/Flash used" summary.
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.ARM\.exidx|\.init_array|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    LDSCRIPT_PATH=os.path.join(ldscripts_dir, board.get("build.ldscript")),
)

env.Append(
    ASFLAGS=machine_flags() + ["-x", "assembler-with-cpp"],
    CCFLAGS=machine_flags()
    + ["-Os", "-g", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra"],
    CFLAGS=["-std=c99"],
    CPPDEFINES=["TC_PORT_SEMIHOSTING", ("F_CPU", board.get("build.f_cpu"))],
    CPPPATH=[runtime_dir],
    LIBPATH=[ldscripts_dir],  # board scripts INCLUDE cortex_m_sections.ld
    LINKFLAGS=machine_flags()
    + [
        "-nostartfiles",  # runtime/startup.c is the startup code
        "--specs=nano.specs",  # newlib-nano only for memcpy/memset and friends
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/${PROGNAME}.map",
    ],
    LIBS=["c", "gcc"],
)

env.BuildSources(os.path.join("$BUILD_DIR", "runtime"), runtime_dir)

program = env.BuildProgram()
AlwaysBuild(env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Program size")))
AlwaysBuild(env.Alias("upload", program, env.VerboseAction(qemu_command(), "Running $SOURCE in QEMU")))
Default([env.Alias("buildprog", program)])
