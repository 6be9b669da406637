// Run a test script on MicroPython's webassembly port under Node.js: a real
// 32-bit MicroPython without the native code emitter, so tcdec meets a port
// that refuses tcdec_viper.py and must decode on its plain path.
//
//   node run_wasm.mjs PORT_MJS SCRIPT MODULE_DIR ARG...
//
// The port sees only its own in-memory file system: the .py/.mpy files of
// MODULE_DIR go to /lib, SCRIPT runs as __main__ with sys.argv =
// [SCRIPT, "/lib", ARG...], and an ARG naming an existing host file is
// copied in under /work (its results written beside it are not copied back).
import fs from "fs";
import path from "path";
import url from "url";

const [portModule, script, moduleDir, ...args] = process.argv.slice(2);
const { loadMicroPython } = await import(url.pathToFileURL(path.resolve(portModule)).href);
const mp = await loadMicroPython({
  heapsize: 64 * 1024 * 1024,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
mp.FS.mkdir("/lib");
mp.FS.mkdir("/work");
for (const name of fs.readdirSync(moduleDir)) {
  if (/\.m?py$/.test(name)) mp.FS.writeFile("/lib/" + name, fs.readFileSync(path.join(moduleDir, name)));
}
const argv = [script, "/lib"];
for (const arg of args) {
  if (fs.existsSync(arg) && fs.statSync(arg).isFile()) {
    const inside = "/work/" + path.basename(arg);
    mp.FS.writeFile(inside, fs.readFileSync(arg));
    argv.push(inside);
  } else {
    argv.push(arg);
  }
}
try {
  mp.runPython("import sys\nsys.argv[:] = " + JSON.stringify(argv));
  mp.runPython(fs.readFileSync(script, "utf8"));
} catch (error) {
  process.stderr.write((error.message || String(error)) + "\n");
  process.exit(1);
}
