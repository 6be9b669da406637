/* console_arduino.cpp - console for real boards built with the Arduino
 * framework: the report goes to Serial, then the board idles. */
#ifdef ARDUINO

#include <Arduino.h>

#include "console.h"

extern "C" void console_write(const char *text)
{
    Serial.print(text);
}

extern "C" void console_finish(int status)
{
    Serial.print(status == 0 ? "exit 0\n" : "exit 1\n");
    Serial.flush();
}

void setup()
{
    Serial.begin(115200);
    while (!Serial) {
        /* native-USB boards (Pico): wait for the host to open the port */
    }
    console_finish(tinycabac_demo());
}

void loop()
{
    delay(1000);
}

#endif /* ARDUINO */
