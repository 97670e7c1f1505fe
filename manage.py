#!/usr/bin/env python
import gc
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_site.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    finally:
        # The command is done: spare the interpreter's exit the cycle collections over
        # the whole heap (Django, DRF, numpy...), a third of a second or more of CPU at
        # every stop of a worker. Exit handlers, flushes and reference-counted
        # finalizers still run; only garbage cycles are left to the process's end.
        gc.freeze()
